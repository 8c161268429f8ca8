"""The instruction-aware re-ranker."""

from __future__ import annotations

import math

import numpy as np
import pytest
from agents_synthetic import G, K, synthetic_obs

from recoworld.agents import InstructionAware, make_agent


def _instructed(n, kind, topic, seed=0):
    instr = np.zeros((n, 4 + G), dtype=np.float32)
    instr[:, kind] = 1.0
    if topic is not None:
        instr[:, 4 + topic] = 1.0
    obs = synthetic_obs(n, seed=seed, instruction=instr)
    return obs


def test_no_instruction_keeps_base_slate():
    obs = synthetic_obs(8, seed=1)
    base = make_agent("popular", seed=0)
    wrapped = make_agent("instruct:popular", seed=0)
    np.testing.assert_array_equal(wrapped.act(obs), base.act(obs))


def test_avoid_removes_the_topic():
    obs = _instructed(16, 1, topic=3)
    obs["candidate_topic"][:, :20] = 3  # many candidates of the avoided topic, the most popular among them
    obs["candidate_popularity"][:, :20] += 1.0
    slate = make_agent("instruct:popular", seed=0).act(obs)
    topics = np.take_along_axis(obs["candidate_topic"], slate, axis=1)
    assert not (topics == 3).any()
    assert (
        np.take_along_axis(make_agent("popular").act(obs), np.zeros((16, 1), int), 1).ravel().tolist() != []
    )


def test_related_fills_share_with_related_topics_and_drops_target():
    related = np.full((G, 3), -1)
    related[5] = [6, 7, 8]
    obs = _instructed(16, 2, topic=5, seed=2)
    agent = make_agent("instruct:linucb", seed=0, related_topics=related, share=0.5)
    slate = agent.act(obs)
    topics = np.take_along_axis(obs["candidate_topic"], slate, axis=1)
    available = np.isin(obs["candidate_topic"], [6, 7, 8]).sum(axis=1)
    got = np.isin(topics, [6, 7, 8]).sum(axis=1)
    assert (got >= np.minimum(available, math.ceil(0.5 * K))).all()
    assert not (topics == 5).any()
    assert all(len(set(r)) == K for r in slate.tolist())


def test_new_fills_share_with_novel_candidates():
    obs = _instructed(16, 3, topic=None, seed=3)
    slate = make_agent("instruct:inslate_ts", seed=0, share=0.5).act(obs)
    nov = np.take_along_axis(obs["candidate_novelty"], slate, axis=1).sum(axis=1)
    assert (nov >= np.minimum(obs["candidate_novelty"].sum(1), 5)).all()


def test_cooccurrence_relatedness_is_learned_from_histograms():
    agent = InstructionAware(make_agent("popular"), relatedness="cooccurrence", related_k=1)
    obs = synthetic_obs(64, seed=4)
    hist = np.zeros((64, G), dtype=np.float32)
    hist[:32, [0, 1]] = 0.5  # topics 0 and 1 are consumed together, 2 and 3 together
    hist[32:, [2, 3]] = 0.5
    obs["topic_histogram"] = hist
    agent.act(obs)
    rel = agent.related_matrix(G)
    assert rel[0, 1] and rel[1, 0] and rel[2, 3] and not rel[0, 0]


def test_honour_subset_and_validation():
    obs = _instructed(4, 3, topic=None)
    base = make_agent("popular").act(obs)
    only_avoid = make_agent("instruct:popular", honour=("avoid",)).act(obs)
    np.testing.assert_array_equal(only_avoid, base)  # a "new" instruction is not honoured
    with pytest.raises(ValueError):
        InstructionAware(make_agent("popular"), honour=("dance",))
    with pytest.raises(ValueError):
        InstructionAware(make_agent("popular"), share=0.0)


def test_learning_switch_and_forget_reach_the_base():
    agent = make_agent("instruct:linucb", seed=0)
    agent.learning = False
    assert agent.base.learning is False
    agent.forget(3)
    assert agent.base.seed == 3
