"""``RecoWorld-LLM-v0``: registration, the conformance checks of tests/envs/test_conformance.py for this
nondeterministic id (check_env, SB3, pickling, seeds, the native vector entry point), LLM accounting in
``info`` and batching across the users of the vector env. The embedded model runs for real (marker ``llm``);
the server path runs against the local fault-injecting server."""

from __future__ import annotations

import pickle

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import recoworld  # noqa: F401
from recoworld.users.llm import ChatFormat, LLMUnavailableError

ENV_ID = "RecoWorld-LLM-v0"


def test_registered_nondeterministic_with_a_vector_entry_point():
    spec = gym.spec(ENV_ID)
    assert spec.nondeterministic is True
    assert spec.vector_entry_point.endswith(":llm_vector_env")
    assert "recoworld.users.llm.environment" in spec.entry_point


def _play(env, steps, seed=0, action_seed=0):
    env.action_space.seed(action_seed)
    out = [env.reset(seed=seed)[0]]
    for _ in range(steps):
        obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
        out.append((obs, reward, terminated, truncated, info["clicked"], info["user_index"]))
        if terminated or truncated:
            out.append(env.reset()[0])
    return out


def _equal(a, b):
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    if isinstance(a, (tuple, list)):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b, strict=True))
    return np.array_equal(np.asarray(a), np.asarray(b))


@pytest.mark.llm
def test_default_make_steps_with_the_embedded_model_and_accounts(embedded_backend):
    env = gym.make(ENV_ID)  # no configuration: full mode, scoring style, the embedded model in-process
    users = env.unwrapped.sim.users
    assert users.backend is embedded_backend  # one loaded model per process, shared
    assert (users.config.mode, users.config.style) == ("full", "score")
    obs, _ = env.reset(seed=3)
    steps = 4
    for _ in range(steps):
        obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
        assert env.observation_space.contains(obs) and np.isfinite(reward)
        if terminated or truncated:
            env.reset()
    llm = info["llm"]
    assert llm["decisions"] == llm["full_decisions"] == steps
    assert llm["calls"] >= steps and llm["requests"] >= steps
    assert llm["prompt_tokens"] > 50 * steps and llm["seconds"] > 0
    assert llm["failures"] == 0


@pytest.mark.llm
def test_gymnasium_and_sb3_checkers(embedded_backend):
    env = gym.make(ENV_ID).unwrapped
    check_env(env, skip_render_check=True)
    sb3_checker = pytest.importorskip("stable_baselines3.common.env_checker")
    sb3_checker.check_env(env, warn=False)


@pytest.mark.llm
def test_vector_env_batches_llm_calls_across_users(embedded_backend):
    n, steps = 4, 3
    envs = gym.make_vec(ENV_ID, num_envs=n, vectorization_mode="vector_entry_point")
    assert envs.metadata["autoreset_mode"] == gym.vector.AutoresetMode.NEXT_STEP
    obs, _ = envs.reset(seed=10)
    assert envs.observation_space.contains(obs)
    for _ in range(steps):
        _, reward, _, _, info = envs.step(envs.action_space.sample())
    assert reward.shape == (n,) and info["slate_items"].shape[0] == n
    llm = info["llm"]
    assert llm["full_decisions"] == n * steps
    # one scoring call per step answers all n users (plus at most one batched text call per step)
    assert llm["requests"] >= n * steps and llm["calls"] <= 2 * steps
    single = gym.make(ENV_ID)  # sub-env i reset with seed s meets the user of the single env seeded s + i
    single.reset(seed=12)
    assert single.unwrapped.sim.users.population_index[0] == envs.unwrapped.sim.users.population_index[2]


@pytest.mark.llm
def test_keywords_route_to_the_llm_user_and_the_world(embedded_backend):
    env = gym.make(ENV_ID, mode="hybrid", temperature=0.7, memory_lines=4, slate_size=5, reward="clicks")
    users = env.unwrapped.sim.users
    assert (users.config.mode, users.config.temperature, users.config.memory_lines) == ("hybrid", 0.7, 4)
    assert env.unwrapped.config.slate_size == 5 and env.action_space.shape == (5,)
    with pytest.raises(ValueError, match="mode"):
        gym.make(ENV_ID, mode="half")
    with pytest.raises(ValueError, match="user_model"):
        gym.make(ENV_ID, user_model=lambda *a: None)


@pytest.mark.llm
def test_hybrid_mode_behaviour_is_seeded_and_pickles(embedded_backend):
    """Hybrid mode: the synthetic user decides, so the same seed repeats the behaviour exactly; different
    seeds meet different users; a pickled env continues identically."""

    def run(seed):
        return _play(gym.make(ENV_ID, mode="hybrid", max_turns=5), steps=25, seed=seed)

    assert _equal(run(42), run(42))
    users = set()
    for seed in (1, 2, 3):
        env = gym.make(ENV_ID, mode="hybrid")
        env.reset(seed=seed)
        users.add(int(env.step(env.action_space.sample())[4]["user_index"]))
    assert len(users) >= 2
    env = gym.make(ENV_ID, mode="hybrid").unwrapped
    env.reset(seed=5)
    for _ in range(3):
        env.step(env.action_space.sample())
    clone = pickle.loads(pickle.dumps(env))
    action = env.action_space.sample()
    a, b = env.step(action), clone.step(action)
    assert _equal(a[:4], b[:4]) and _equal(a[4]["clicked"], b[4]["clicked"])


def test_base_url_selects_an_openai_compatible_server(fault_server):
    env = gym.make(ENV_ID, base_url=fault_server.url, max_retries=0, timeout=2.0, chat_format="llama3")
    backend = env.unwrapped.sim.users.backend
    assert backend.name == "openai" and backend.chat_format == ChatFormat.named("llama3")
    env.reset(seed=0)
    info = env.step(env.action_space.sample())[4]
    assert info["llm"]["requests"] > 0 and info["llm"]["failures"] == 0 and fault_server.hits > 0
    fault_server.mode = "http500"  # the episode goes on; the failure is counted and answered by defaults
    info = env.step(env.action_space.sample())[4]
    assert info["llm"]["failures"] > 0 and info["llm"]["decisions"] == 2


def test_a_missing_model_is_one_clear_error(tmp_path):
    with pytest.raises(LLMUnavailableError, match="model_path"):
        gym.make(ENV_ID, model_path=tmp_path / "no-such-model")
