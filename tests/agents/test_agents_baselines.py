"""Baselines: random, most-popular and the oracle."""

from __future__ import annotations

import numpy as np
from agents_synthetic import K, synthetic_obs

from recoworld.agents import OracleRecommender, make_agent


def test_popular_ranks_by_popularity():
    obs = synthetic_obs(6, seed=0)
    slate = make_agent("popular").act(obs)
    np.testing.assert_array_equal(slate, np.argsort(-obs["candidate_popularity"], 1, kind="stable")[:, :K])


def test_random_is_uniform_without_repeats():
    agent = make_agent("random", seed=0)
    counts = np.zeros(50)
    for t in range(50):
        s = agent.act(synthetic_obs(20, seed=t))
        np.add.at(counts, s.ravel(), 1)
    assert counts.min() > 0.6 * counts.mean()


def test_oracle_prefers_interesting_unbored_topics():
    obs = synthetic_obs(4, seed=1, latent=True)
    g = obs["topic_histogram"].shape[1]
    obs["latent"][:, :g] = 0.01
    obs["latent"][:, 7] = 0.9  # loves topic 7 ...
    obs["latent"][:, g : 2 * g] = 0.0
    obs["candidate_topic"][:, :3] = 7
    obs["candidate_topic"][:, 3:] = 1
    obs["candidate_novelty"][:] = 0
    slate = OracleRecommender(diversify=False).act(obs)
    assert set(slate[:, :3].ravel().tolist()) == {0, 1, 2}
    obs["latent"][:, g + 7] = 5.0  # ... but is very bored of it
    slate = OracleRecommender(diversify=False).act(obs)
    assert not np.isin(slate[:, :3], [0, 1, 2]).all()


def test_oracle_uses_a_utility_function():
    obs = synthetic_obs(3, seed=2)
    util = np.tile(np.arange(50.0), (3, 1))
    agent = OracleRecommender(utility_fn=lambda o: util, diversify=False)
    np.testing.assert_array_equal(agent.act(obs), np.tile(np.arange(49, 49 - K, -1), (3, 1)))
    assert agent.requires_latent is False and OracleRecommender().requires_latent is True
