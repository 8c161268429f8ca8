"""Bandits: the Bayesian linear model vs. batch least squares / the conjugate posterior; the agents."""

from __future__ import annotations

import numpy as np
import pytest
from agents_synthetic import K, run_toy, synthetic_info, synthetic_obs

from recoworld.agents import UCB1, BayesLinear, EpsilonGreedy, LinTS, LinUCB, make_agent
from recoworld.agents.features import Featurizer, feature_dim, pair_features


def _data(m=300, d=8, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((m, d))
    theta = rng.standard_normal(d)
    y = X @ theta + 0.3 * rng.standard_normal(m)
    return X, y


@pytest.mark.parametrize("chunk", [1, 5, 300])  # rank-one (Sherman–Morrison) steps and batch re-inversion
def test_bayes_linear_matches_batch_least_squares(chunk):
    X, y = _data()
    lam, s2 = 2.0, 0.09
    model = BayesLinear(X.shape[1], prior_precision=lam, noise_variance=s2)
    for i in range(0, len(y), chunk):
        model.update(X[i : i + chunk], y[i : i + chunk])
    A = lam * np.eye(X.shape[1]) + X.T @ X
    ridge = np.linalg.solve(A, X.T @ y)  # batch ridge regression = posterior mean
    np.testing.assert_allclose(model.theta, ridge, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(model.A_inv, np.linalg.inv(A), rtol=1e-8, atol=1e-12)
    # conjugate Gaussian posterior written the textbook way: prior N(0, s2/lam I), noise s2
    prior_cov = s2 / lam * np.eye(X.shape[1])
    post_cov = np.linalg.inv(np.linalg.inv(prior_cov) + X.T @ X / s2)
    post_mean = post_cov @ (X.T @ y / s2)
    np.testing.assert_allclose(model.covariance, post_cov, rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(model.theta, post_mean, rtol=1e-8, atol=1e-10)


def test_bayes_linear_weighted_and_sampling():
    X, y = _data(m=50, d=4, seed=1)
    w = np.linspace(0.5, 2.0, 50)
    model = BayesLinear(4, 1.0, 0.5)
    model.update(X, y, w)
    A = np.eye(4) + (X * w[:, None]).T @ X
    np.testing.assert_allclose(model.theta, np.linalg.solve(A, X.T @ (w * y)), rtol=1e-8)
    draws = model.sample(np.random.default_rng(0), 40000)
    np.testing.assert_allclose(draws.mean(0), model.theta, atol=0.02)
    np.testing.assert_allclose(np.cov(draws.T), model.covariance, atol=0.01)


def test_bayes_linear_validation():
    with pytest.raises(ValueError):
        BayesLinear(0)
    with pytest.raises(ValueError):
        BayesLinear(3, prior_precision=0.0)


def _learn(agent, steps=3, n=32):
    data = []
    for t in range(steps):
        obs = synthetic_obs(n, seed=100 + t)
        a = agent.act(obs)
        info = synthetic_info(n, seed=100 + t)
        agent.update(obs, a, np.zeros(n), info)
        data.append((obs, a, info))
    return data


@pytest.mark.parametrize("cls", [LinUCB, LinTS])
def test_agent_posterior_equals_batch_solution_on_its_data(cls):
    agent = cls(seed=0, use_exposure=False)
    data = _learn(agent)
    Xs, ys = [], []
    for obs, a, info in data:  # rebuild the design matrix from scratch: examined slots, positions 0..K-1
        n = a.shape[0]
        X = pair_features(obs, positions=np.broadcast_to(np.arange(K), (n, K)), candidates=a)
        m = info["examined"]
        Xs.append(X[m])
        ys.append(info["clicked"][m].astype(float))
    X, y = np.concatenate(Xs), np.concatenate(ys)
    A = agent.prior_precision * np.eye(X.shape[1]) + X.T @ X
    np.testing.assert_allclose(agent.model.theta, np.linalg.solve(A, X.T @ y), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(
        agent.model.covariance, agent.noise_variance * np.linalg.inv(A), rtol=1e-6, atol=1e-10
    )


def test_linucb_score_is_mean_plus_width():
    agent = LinUCB(seed=0, alpha=0.7, diversity=0.0)
    _learn(agent)
    obs = synthetic_obs(5, seed=9)
    X = agent.features.candidates(obs)
    expected = X @ agent.model.theta + 0.7 * np.sqrt(np.einsum("ncd,de,nce->nc", X, agent.model.A_inv, X))
    np.testing.assert_allclose(agent.score(obs), expected, rtol=1e-8)
    slate = agent.act(obs)
    np.testing.assert_array_equal(slate, np.argsort(-expected, axis=1, kind="stable")[:, :K])


def test_feature_dimension_and_exposure_tracking():
    obs = synthetic_obs(4, seed=2)
    assert pair_features(obs).shape == (4, 50, feature_dim(16))
    f = Featurizer()
    f.candidates(obs)
    action = np.tile(np.arange(K), (4, 1))
    clicked = np.zeros((4, K), dtype=bool)
    clicked[:, 0] = True
    f.record(obs, action, clicked, np.ones((4, K), dtype=bool))
    topics = obs["candidate_topic"]
    expo = f.exposure.values
    assert expo[0, topics[0, 0]] >= 1.0
    assert np.isclose(expo.sum(axis=1), 1.0 + 0.25 * (K - 1)).all()
    X = f.candidates(obs)
    np.testing.assert_allclose(X[:, :, feature_dim(16) - 3], np.take_along_axis(expo, topics, axis=1))


def test_topic_bandits():
    obs = synthetic_obs(8, seed=4)
    greedy = EpsilonGreedy(epsilon=0.0, seed=0)
    s = greedy.act(obs)
    np.testing.assert_array_equal(s, np.argsort(-greedy.score(obs), axis=1, kind="stable")[:, :K])
    explore = EpsilonGreedy(epsilon=1.0, seed=0).act(obs)
    assert explore.shape == (8, K) and all(len(set(r)) == K for r in explore.tolist())
    ucb = UCB1(seed=0, scope="global")
    _learn(ucb, steps=2, n=8)
    assert ucb.global_pulls.sum() > 0
    with pytest.raises(ValueError):
        UCB1(scope="nope")
    with pytest.raises(ValueError):
        EpsilonGreedy(epsilon=2.0)


@pytest.mark.parametrize("name", ["linucb", "lints", "egreedy"])
def test_learning_beats_random_on_toy_world(name):
    random = run_toy(make_agent("random", seed=0), n=64, steps=40)
    learned = run_toy(make_agent(name, seed=0), n=64, steps=40)
    assert learned > 1.5 * random
