"""The hierarchical RL agent (torch) and its fixed-propensity ablation."""

from __future__ import annotations

import numpy as np
import pytest
from agents_synthetic import K, run_toy, synthetic_obs

torch = pytest.importorskip("torch")

from recoworld.agents import make_agent  # noqa: E402
from recoworld.agents.base import ObsSpec  # noqa: E402
from recoworld.agents.hrl import HRLAgent, gae, novelty_evidence, probe_slots  # noqa: E402


def test_fixed_propensity_is_constant_and_shifts_novel_candidates():
    obs = synthetic_obs(8, seed=0)
    low = make_agent("hrl_fixed", seed=0, propensity=0.0, diversity=0.0, probe_share=0.0)
    high = make_agent("hrl_fixed", seed=0, propensity=5.0, diversity=0.0, probe_share=0.0)
    low.act(obs)
    high.act(obs)
    np.testing.assert_array_equal(high.propensity(), 5.0)
    nov = obs["candidate_novelty"].astype(bool)
    s_low, s_high = low.score(obs), high.score(obs)
    assert np.all(s_high[nov] > s_low[nov]) and np.allclose(s_high[~nov], s_low[~nov])
    slate = high.act(obs)
    assert np.take_along_axis(obs["candidate_novelty"], slate, 1).mean() > 0.9


def test_high_level_decides_at_session_start_or_every_request():
    agent = HRLAgent(seed=0, replan_every=None)
    obs = synthetic_obs(32, seed=1)
    obs["context"][:, 4] = 1.0
    agent.act(obs)
    first = agent.level.copy()
    obs2 = synthetic_obs(32, seed=2)
    obs2["context"][:, 4] = 0.0
    agent.act(obs2)
    np.testing.assert_array_equal(agent.level, first)
    replan = HRLAgent(seed=0)  # default: re-decide before every request
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


def test_policy_gradient_learns_the_rewarded_level():
    agent = HRLAgent(seed=0, spec=ObsSpec(50, 20, 16, 10), neutral_bias=0.0, lr=3e-3, epochs=2)
    rng = np.random.default_rng(0)
    d = agent.state_dim(agent.spec)
    for _ in range(40):
        s = rng.random((256, d))
        a = rng.integers(0, 5, 256)
        logp = np.log(agent._policy_probs(s)[np.arange(256), a])
        rewards = 100 + 5 * (a == 3) + rng.normal(0, 5, 256)
        agent._buffer = [
            (s[i : i + 1], a[i : i + 1], logp[i : i + 1], rewards[i : i + 1]) for i in range(256)
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
    for bad in ({"discount": 1.5}, {"gae_lambda": -0.1}, {"epochs": 0}, {"probe_share": 2.0}):
        with pytest.raises(ValueError):
            HRLAgent(**bad)


def test_deterministic_high_level_takes_most_probable_level():
    agent = HRLAgent(seed=0, neutral_bias=5.0)
    agent.deterministic = True
    obs = synthetic_obs(16, seed=5)
    obs["context"][:, 4] = 1.0
    agent.act(obs)
    np.testing.assert_array_equal(agent.propensity(), 0.0)


def test_gae_spans_session_and_option_credit():
    rewards, values = np.array([1.0, 2.0, 3.0]), np.full(3, 0.5)
    # lambda = 1: the rest of the session minus the value; discount = 0: the option's own return minus it
    np.testing.assert_allclose(gae(rewards, values, 1.0, 1.0), [5.5, 4.5, 2.5])
    np.testing.assert_allclose(gae(rewards, values, 0.0, 0.7), [0.5, 1.5, 2.5])
    # lambda = 0: one-step temporal differences with the next decision's value
    np.testing.assert_allclose(gae(rewards, values, 1.0, 0.0), [1.0, 2.0, 2.5])


def test_session_close_buffers_each_options_return():
    agent = HRLAgent(seed=0, spec=ObsSpec(50, 20, 16, 10), batch_options=10**6)
    agent._alloc(1)
    state = np.zeros(3)
    # two decisions in one session: at cumulative return 0 and 6; the session ends at 10
    agent.decisions[0] = [(state, 0, -1.0, 0.0), (state, 1, -2.0, 6.0)]
    agent.session_cum[0], agent.open[0] = 10.0, True
    agent._close(np.array([0]))
    ((states, levels, logps, rewards),) = agent._buffer
    assert states.shape == (2, 3) and levels.tolist() == [0, 1] and logps.tolist() == [-1.0, -2.0]
    assert rewards.tolist() == [6.0, 4.0] and agent._buffered == 2 and not agent.open[0]


def test_novelty_evidence_reads_the_session_lean():
    #            [novel examined, novel clicked, familiar examined, familiar clicked]
    tally = np.array([[0, 0, 0, 0], [5, 4, 5, 1], [5, 1, 5, 4], [50, 40, 50, 10]], dtype=float)
    p_novel, p_familiar, lean, amount = novelty_evidence(tally).T
    assert lean[0] == 0.0 and amount[0] == 0.0  # no evidence: no lean
    assert lean[1] > 0 > lean[2] and lean[3] > lean[1]  # more clicks on novel items: a stronger lean
    np.testing.assert_allclose(p_novel[1], 5 / 7)
    np.testing.assert_allclose(p_familiar[1], 2 / 7)
    assert amount[3] > amount[1] > 0


def test_probe_slots_spread_the_share_evenly():
    np.testing.assert_array_equal(np.flatnonzero(probe_slots(10, 0.5)), [1, 3, 5, 7, 9])
    np.testing.assert_array_equal(np.flatnonzero(probe_slots(10, 0.3)), [3, 6, 9])
    assert probe_slots(10, 0.0).sum() == 0 and probe_slots(10, 1.0).all()


def test_first_slate_of_a_session_is_a_probe():
    obs = synthetic_obs(64, seed=3)
    obs["context"][:, 4] = np.arange(64) % 2  # even rows: mid-session; odd rows: first request
    nov = obs["candidate_novelty"].astype(bool)
    nov[1] = False  # row 1 has no novel candidate: it cannot be probed
    obs["candidate_novelty"] = nov.astype(np.int8)
    agent = make_agent("hrl_fixed", seed=0, propensity=-1.0, probe_share=0.5)
    slate_nov = np.take_along_axis(nov, agent.act(obs), axis=1)
    probed = np.arange(64) % 2 == 1
    probed[1] = False
    np.testing.assert_array_equal(slate_nov[probed], np.tile(probe_slots(K, 0.5), (probed.sum(), 1)))
    assert slate_nov[~probed].mean() < 0.2  # a lean of -1 keeps novel candidates out elsewhere


def test_hrl_is_deterministic_and_serves_one_or_many_users():
    for n in (1, 64):
        runs = []
        for _ in range(2):
            agent = make_agent("hrl", seed=7, replan_every=1, probe_share=0.5, batch_options=32, epochs=2)
            runs.append((run_toy(agent, n=n, steps=30), agent.stats["level_counts"].copy()))
        assert runs[0][0] == runs[1][0] and np.array_equal(runs[0][1], runs[1][1])
        assert runs[0][1].sum() >= n  # at least one decision per user
