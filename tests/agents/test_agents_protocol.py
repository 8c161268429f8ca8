"""The Recommender protocol, the registry and determinism, for every agent, on synthetic observations."""

from __future__ import annotations

import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest
from agents_synthetic import C, E, G, H, K, synthetic_info, synthetic_obs

from recoworld.agents import AGENT_NAMES, Recommender, make_agent

ALL = [n for n in AGENT_NAMES if n not in ("hrl", "hrl_fixed")] + ["instruct:linucb", "instruct:inslate_ts"]
TORCH = ["hrl", "hrl_fixed", "instruct:hrl"]


def _names():
    out = list(ALL)
    try:
        import torch  # noqa: F401

        out += TORCH
    except ImportError:
        pass
    return out


def _kwargs(name):
    return {"utility_fn": None} if name == "oracle" else {}


def _episode(agent, n, steps=4, seed=0):
    slates = []
    for t in range(steps):
        obs = synthetic_obs(n, seed=seed + t, latent=True)
        a = agent.act(obs)
        slates.append(a)
        agent.update(obs, a, np.ones(n), synthetic_info(n, seed=seed + t))
    return np.stack(slates)


@pytest.mark.parametrize("name", _names())
@pytest.mark.parametrize("n", [1, 64])
def test_act_shapes_and_no_duplicates(name, n):
    agent = make_agent(name, slate_size=K, seed=1)
    assert isinstance(agent, Recommender)
    slates = _episode(agent, n)
    assert slates.shape == (4, n, K) and slates.dtype == np.int64
    assert slates.min() >= 0 and slates.max() < C
    for s in slates.reshape(-1, K):
        assert len(set(s.tolist())) == K


@pytest.mark.parametrize("name", _names())
def test_deterministic_given_seed(name):
    a1 = make_agent(name, slate_size=K, seed=7)
    a2 = make_agent(name, slate_size=K, seed=7)
    s1, s2 = _episode(a1, 16), _episode(a2, 16)
    np.testing.assert_array_equal(s1, s2)
    a1.forget(7)
    np.testing.assert_array_equal(_episode(a1, 16), s1)


@pytest.mark.parametrize("name", ["linucb", "egreedy", "inslate_ts"])
def test_reset_keeps_learning_forget_does_not(name):
    import copy

    agent = make_agent(name, slate_size=K, seed=3)
    _episode(agent, 8, seed=10)
    twin = copy.deepcopy(agent)
    agent.reset(5)
    twin.reset(5)
    np.testing.assert_array_equal(_episode(agent, 8, seed=20), _episode(twin, 8, seed=20))
    fresh = make_agent(name, slate_size=K, seed=5)
    agent.forget(5)
    np.testing.assert_array_equal(_episode(agent, 8, seed=20), _episode(fresh, 8, seed=20))


@pytest.mark.parametrize("name", ["random", "linucb", "inslate_ts", "egreedy"])
def test_single_observation_gives_single_slate(name):
    agent = make_agent(name, slate_size=K, seed=0)
    obs = {k: v[0] for k, v in synthetic_obs(1, latent=True).items()}
    slate = agent.act(obs)
    assert slate.shape == (K,)
    info = {k: (v[0] if isinstance(v, np.ndarray) else v) for k, v in synthetic_info(1).items()}
    info.pop("_clicked")
    agent.update(obs, slate, 1.0, info)


def _space():
    return gym.spaces.Dict(
        {
            "candidate_embedding": gym.spaces.Box(-1, 1, (C, E), np.float32),
            "candidate_topic": gym.spaces.Box(0, G - 1, (C,), np.int64),
            "candidate_popularity": gym.spaces.Box(0, 1, (C,), np.float32),
            "candidate_novelty": gym.spaces.MultiBinary(C),
            "history_embedding": gym.spaces.Box(-1, 1, (H, E), np.float32),
            "history_feedback": gym.spaces.Box(0, 1, (H,), np.float32),
            "topic_histogram": gym.spaces.Box(0, 1, (G,), np.float32),
            "context": gym.spaces.Box(0, 1, (5,), np.float32),
            "instruction": gym.spaces.Box(0, 1, (4 + G,), np.float32),
        }
    )


def test_make_agent_from_space_and_errors():
    agent = make_agent("linucb", _space(), slate_size=5, seed=0)
    assert agent.spec.num_candidates == C and agent.spec.num_topics == G and agent.slate_size == 5
    assert agent.act(synthetic_obs(3)).shape == (3, 5)
    with pytest.raises(ValueError, match="unknown agent"):
        make_agent("nope")
    with pytest.raises(ValueError, match="slate_size"):
        make_agent("random", slate_size=C + 1).act(synthetic_obs(2))
    with pytest.raises(ValueError, match="slate_size"):
        make_agent("random", slate_size=0)
    with pytest.raises(ValueError, match="observe_latent"):
        make_agent("oracle").act(synthetic_obs(2))


def test_make_agent_reads_slate_size_from_env_like():
    class FakeVec:
        single_observation_space = _space()
        single_action_space = gym.spaces.MultiDiscrete([C] * 7)

        def step(self, a):  # pragma: no cover - marks it as an env
            raise NotImplementedError

    agent = make_agent("instruct:popular", FakeVec(), seed=0)
    assert agent.slate_size == 7 and agent.name == "instruct:popular"


def test_import_does_not_import_torch():
    code = "import sys, recoworld.agents; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_hrl_without_torch_names_the_extra():
    code = (
        "import sys; sys.modules['torch'] = None\n"
        "from recoworld.agents import make_agent\n"
        "try:\n    make_agent('hrl')\nexcept ImportError as e:\n    assert 'recoworld[rl]' in str(e), e\n"
        "else:\n    raise SystemExit('no error')\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_frozen_agent_does_not_learn():
    agent = make_agent("linucb", seed=0)
    agent.learning = False
    _episode(agent, 8)
    assert agent.model.count == 0
