"""The hierarchical RL agent (torch) and its fixed-propensity ablation."""

from __future__ import annotations

import numpy as np
import pytest
from agents_synthetic import K, run_toy, synthetic_obs

torch = pytest.importorskip("torch")

from recoworld.agents import make_agent  # noqa: E402
from recoworld.agents.base import ObsSpec  # noqa: E402
from recoworld.agents.hrl import HRLAgent  # noqa: E402


def test_fixed_propensity_is_constant_and_shifts_novel_candidates():
    obs = synthetic_obs(8, seed=0)
    low = make_agent("hrl_fixed", seed=0, propensity=0.0, diversity=0.0)
    high = make_agent("hrl_fixed", seed=0, propensity=5.0, diversity=0.0)
    low.act(obs)
    high.act(obs)
    np.testing.assert_array_equal(high.propensity(), 5.0)
    nov = obs["candidate_novelty"].astype(bool)
    s_low, s_high = low.score(obs), high.score(obs)
    assert np.all(s_high[nov] > s_low[nov]) and np.allclose(s_high[~nov], s_low[~nov])
    slate = high.act(obs)
    assert np.take_along_axis(obs["candidate_novelty"], slate, 1).mean() > 0.9


def test_high_level_decides_only_at_session_start():
    agent = HRLAgent(seed=0)
    obs = synthetic_obs(32, seed=1)
    obs["context"][:, 4] = 1.0
    agent.act(obs)
    first = agent.level.copy()
    obs2 = synthetic_obs(32, seed=2)
    obs2["context"][:, 4] = 0.0
    agent.act(obs2)
    np.testing.assert_array_equal(agent.level, first)
    replan = HRLAgent(seed=0, replan_every=1)
    replan.act(obs)
    replan.update(
        obs,
        replan.act(obs),
        np.ones(32),
        {"clicked": np.zeros((32, K), bool), "examined": np.ones((32, K), bool)},
    )
    n_before = sum(len(d) for d in replan.decisions)
    replan.act(obs2)
    assert sum(len(d) for d in replan.decisions) == n_before + 32


def test_reinforce_learns_the_rewarded_level():
    agent = HRLAgent(seed=0, spec=ObsSpec(50, 20, 16, 10), neutral_bias=0.0, lr=3e-3)
    rng = np.random.default_rng(0)
    d = agent.state_dim(agent.spec)
    for _ in range(40):
        s = rng.random((256, d))
        a = rng.integers(0, 5, 256)
        agent._buffer = [
            (s[i], int(a[i]), float(100 + 5 * (a[i] == 3) + rng.normal(0, 5))) for i in range(256)
        ]
        agent._train_high_level()
    probs = agent._policy_probs(rng.random((4, d)))
    assert (probs.argmax(axis=1) == 3).all()


def test_hrl_learns_on_toy_world_and_trains_high_level():
    agent = make_agent("hrl", seed=0, batch_options=32)
    random = run_toy(make_agent("random", seed=0), n=64, steps=40)
    assert run_toy(agent, n=64, steps=40) > 1.5 * random
    assert agent.stats["high_level_updates"] > 0


def test_mlp_relevance_and_validation():
    agent = make_agent("hrl", seed=0, relevance="mlp")
    assert run_toy(agent, n=16, steps=10) > 0
    with pytest.raises(ValueError):
        HRLAgent(relevance="forest")
    with pytest.raises(ValueError):
        HRLAgent(replan_every=0)


def test_deterministic_high_level_takes_most_probable_level():
    agent = HRLAgent(seed=0, neutral_bias=5.0)
    agent.deterministic = True
    obs = synthetic_obs(16, seed=5)
    obs["context"][:, 4] = 1.0
    agent.act(obs)
    np.testing.assert_array_equal(agent.propensity(), 0.0)


def test_credit_session_or_option_splits_the_session_return():
    with pytest.raises(ValueError, match="credit"):
        HRLAgent(seed=0, credit="episode")
    state = np.zeros(3)
    for credit, expected in (("session", [10.0, 4.0]), ("option", [6.0, 4.0])):
        agent = HRLAgent(seed=0, spec=ObsSpec(50, 20, 16, 10), credit=credit, batch_options=10**6)
        agent._alloc(1)
        # two decisions in one session: at cumulative return 0 and 6; the session ends at 10
        agent.decisions[0] = [(state, 0, 0.0), (state, 1, 6.0)]
        agent.session_cum[0], agent.open[0] = 10.0, True
        agent._close(np.array([0]))
        assert [b[2] for b in agent._buffer] == expected
