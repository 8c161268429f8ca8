"""In-slate Thompson sampling: the rank-major / draw-minor fill, the Laplace posterior, and the agent."""

from __future__ import annotations

import numpy as np
import pytest
from agents_synthetic import C, K, run_toy, synthetic_info, synthetic_obs

from recoworld.agents import InSlateTS, SlateChoicePosterior, make_agent, rank_major_fill


def _naive_fill(rankings, k):
    out = []
    for row in rankings:
        slate = []
        for r in range(row.shape[1]):
            for d in range(row.shape[0]):
                c = int(row[d, r])
                if c not in slate and len(slate) < k:
                    slate.append(c)
        out.append(slate)
    return np.array(out)


@pytest.mark.parametrize("draws", [1, 3, 10])
def test_rank_major_fill_matches_definition(draws):
    rng = np.random.default_rng(draws)
    rankings = np.argsort(rng.random((20, draws, C)), axis=2)
    # make duplicates frequent: half the rows share one ranking across draws
    rankings[:10] = rankings[:10, :1]
    got = rank_major_fill(rankings, K)
    np.testing.assert_array_equal(got, _naive_fill(rankings, K))
    assert all(len(set(r)) == K for r in got.tolist())


def test_rank_major_fill_order_is_first_choices_first():
    rankings = np.array([[[3, 1, 2, 0, 4], [3, 4, 0, 1, 2], [2, 0, 1, 3, 4]]])
    # visiting order: 3, 3(dup), 2, 1, 4, 0, ...
    np.testing.assert_array_equal(rank_major_fill(rankings, 4), [[3, 2, 1, 4]])


def test_rank_major_fill_partial_lists_with_fallback():
    rankings = np.array([[[4, 3], [4, 2]]])
    fallback = np.array([[0, 1, 2, 3, 4]])  # candidate c has fallback rank c
    np.testing.assert_array_equal(
        rank_major_fill(rankings, 4, num_candidates=5, fallback=fallback), [[4, 3, 2, 0]]
    )


def _choice_data(seed=0, r=400, k=5, d=3):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((r, k, d))
    theta = np.array([1.0, -0.5, 0.3])
    shown = np.ones((r, k), dtype=bool)
    shown[: r // 2, 3:] = False  # shorter choice sets
    z = np.where(shown, X @ theta, -np.inf)
    z0 = np.full((r, 1), 0.5 - 0.2 * np.log(shown.sum(1, keepdims=True)))
    logits = np.concatenate([z0, z], axis=1)
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    choice = (p.cumsum(1) < rng.random((r, 1))).sum(1)
    clicks = np.zeros((r, k), dtype=bool)
    clicks[choice > 0, choice[choice > 0] - 1] = True
    return X, shown, clicks


def test_laplace_posterior_is_map_with_hessian_precision():
    X, shown, clicks = _choice_data()
    post = SlateChoicePosterior(3, prior_precision=1.0, posterior="laplace", newton_steps=8)
    prior_mean, prior_prec = post.mean.copy(), post.precision.copy()
    post.update(X, shown, clicks)
    opts = post.options(X, shown)
    avail = np.concatenate([np.ones((len(X), 1), bool), shown], axis=1)
    counts = np.concatenate([(~clicks.any(1))[:, None], clicks], axis=1).astype(float)
    g, h = post.grad_hess(post.mean, opts, avail, counts)
    # the mean is the MAP: the penalised gradient vanishes
    np.testing.assert_allclose(g + prior_prec @ (post.mean - prior_mean), 0.0, atol=1e-6)
    np.testing.assert_allclose(post.precision, prior_prec + h, rtol=1e-8)
    # gradient and Hessian agree with finite differences of the negative log-likelihood
    eps = 1e-5
    nll = lambda phi: post.neg_log_likelihood(phi, opts, avail, counts)  # noqa: E731
    num_g = np.array([(nll(post.mean + eps * e) - nll(post.mean - eps * e)) / (2 * eps) for e in np.eye(5)])
    np.testing.assert_allclose(num_g, g, rtol=1e-4, atol=1e-4)
    # MAP agrees with a direct optimiser
    scipy_opt = pytest.importorskip("scipy.optimize")
    obj = lambda phi: nll(phi) + 0.5 * (phi - prior_mean) @ prior_prec @ (phi - prior_mean)  # noqa: E731
    res = scipy_opt.minimize(obj, prior_mean, method="BFGS", options={"gtol": 1e-8})
    np.testing.assert_allclose(post.mean, res.x, atol=1e-4)
    assert abs(post.mean[0] - 1.0) < 0.5  # recovers the generating weight roughly


def test_diagonal_posterior_and_samples():
    X, shown, clicks = _choice_data(seed=1)
    post = SlateChoicePosterior(3, posterior="diagonal")
    post.update(X, shown, clicks)
    assert post.precision.shape == (5,) and np.all(post.precision > 1.0)
    draws = post.sample(np.random.default_rng(0), (20000,))
    np.testing.assert_allclose(draws.std(0), 1 / np.sqrt(post.precision), rtol=0.05)
    full = SlateChoicePosterior(3)
    full.update(X, shown, clicks)
    draws = full.sample(np.random.default_rng(0), (40000,))
    np.testing.assert_allclose(np.cov(draws.T), full.covariance(), atol=0.01)
    with pytest.raises(ValueError):
        SlateChoicePosterior(3, posterior="nope")


@pytest.mark.parametrize("diversity", [0.0, 1.0])
def test_ts_slates_have_no_duplicates_and_greedy_uses_mean(diversity):
    ts = InSlateTS(seed=0, diversity=diversity)
    for t in range(3):
        obs = synthetic_obs(16, seed=t)
        a = ts.act(obs)
        assert all(len(set(r)) == K for r in a.tolist())
        ts.update(obs, a, np.zeros(16), synthetic_info(16, seed=t))
    greedy = InSlateTS(seed=0, greedy=True, diversity=0.0)
    greedy.posterior = ts.posterior
    greedy.features = ts.features
    obs = synthetic_obs(16, seed=7)
    np.testing.assert_array_equal(greedy.act(obs), np.argsort(-greedy.score(obs), 1, kind="stable")[:, :K])
    # with a vanishing posterior spread, TS is greedy
    cold = InSlateTS(seed=0, scale=0.0, diversity=0.0)
    cold.posterior, cold.features = ts.posterior, ts.features
    np.testing.assert_array_equal(cold.act(obs), greedy.act(obs))


def test_ts_explores_within_the_slate_and_greedy_does_not():
    obs = synthetic_obs(64, seed=11)
    ts, greedy = InSlateTS(seed=0, diversity=0.0), InSlateTS(seed=0, greedy=True, diversity=0.0)
    assert not np.array_equal(ts.act(obs), ts.act(obs))
    np.testing.assert_array_equal(greedy.act(obs), greedy.act(obs))
    # a slate of K built from K different draws: its members are spread over the draws' top choices
    draws = ts.posterior.sample(np.random.default_rng(0), (64, K))[..., :-2]
    assert np.std(draws, axis=1).mean() > 0.5


def test_inslate_learns_on_toy_world():
    random = run_toy(make_agent("random", seed=0), n=64, steps=40)
    assert run_toy(make_agent("inslate_ts", seed=0), n=64, steps=40) > 1.5 * random
