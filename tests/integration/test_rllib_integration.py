"""RLlib on RecoWorld: smoke training with checkpoint + restore, the RLlibPolicy adapter, ``rllib:PATH``."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

import recoworld  # noqa: F401 - registers the environments
from recoworld.evaluation import evaluate, make_policy

pytestmark = pytest.mark.ray
pytest.importorskip("ray.rllib")

ENV = "RecoWorld-Session-v0"
SCRIPT = Path(__file__).resolve().parents[2] / "experiments" / "train_rllib_ppo.py"


def load_script():
    spec = importlib.util.spec_from_file_location("train_rllib_ppo", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def trained(ray_runtime, tmp_path_factory):
    """A smoke run, then a second run restored from its final checkpoint."""
    script = load_script()
    out = tmp_path_factory.mktemp("rllib_ppo")
    first = script.main(["--smoke", "--out-dir", str(out)])
    checkpoint = first["final"]
    first_curve = (out / "progress.jsonl").read_text().splitlines()
    target = first["total_steps"] + 256
    second = script.main(
        ["--smoke", "--out-dir", str(out), "--restore", checkpoint, "--total-timesteps", str(target)]
    )
    return {"first": first, "first_curve": first_curve, "second": second, "out": out}


def test_smoke_training_writes_checkpoints_results_and_a_paired_evaluation(trained):
    first, out = trained["first"], trained["out"]
    assert first["steps"] >= 512 and first["resumed_from"] == 0
    assert (out / "checkpoints" / "iter_000001" / "rllib_checkpoint.json").is_file()
    evaluation = json.loads((out / "results.json").read_text())["evaluation"]
    diff = evaluation["paired"]["ppo - random"]
    assert diff["n"] == 64 and diff["ci95"][0] <= diff["mean"] <= diff["ci95"][1]
    assert 0 < first["env_s"] < first["wall_s"]


def test_restore_continues_the_step_counter_and_the_learning_curve(trained):
    first, second = trained["first"], trained["second"]
    assert second["resumed_from"] == first["total_steps"]
    assert second["total_steps"] >= first["total_steps"] + 256
    rows = [json.loads(line) for line in (trained["out"] / "progress.jsonl").read_text().splitlines()]
    assert len(rows) > len(trained["first_curve"])
    assert [r["iteration"] for r in rows] == list(range(1, len(rows) + 1))
    steps = [r["steps"] for r in rows]
    assert steps == sorted(steps) and len(set(steps)) == len(steps)


def test_policy_flattens_like_the_training_connector(trained):
    from ray.rllib.connectors.env_to_module import FlattenObservations
    from ray.rllib.env.single_agent_episode import SingleAgentEpisode

    from recoworld.agents.rllib import RLlibPolicy

    policy = RLlibPolicy.from_checkpoint(trained["first"]["final"])
    env = gym.make_vec(ENV, num_envs=3, vectorization_mode="vector_entry_point")
    obs, _ = env.reset(seed=5)
    connector = FlattenObservations(env.single_observation_space, env.single_action_space)
    episodes = [SingleAgentEpisode(observations=[{k: v[i] for k, v in obs.items()}]) for i in range(3)]
    connector(rl_module=None, batch={}, episodes=episodes, explore=False, shared_data={})
    expected = np.stack([e.get_observations(0) for e in episodes])
    np.testing.assert_array_equal(policy.flatten(obs), expected)
    slates = policy.act(obs)
    assert slates.shape == (3, 10) and slates.dtype == np.int64
    assert ((slates >= 0) & (slates < 50)).all()
    np.testing.assert_array_equal(policy.act({k: v[1] for k, v in obs.items()}), slates[1])


def test_rllib_policy_name_evaluates_like_the_object_locally_and_on_ray(trained):
    from recoworld.agents.rllib import RLlibPolicy

    checkpoint = trained["first"]["final"]
    env = gym.make_vec(ENV, num_envs=2, vectorization_mode="vector_entry_point")
    assert isinstance(make_policy(f"rllib:{checkpoint}", env), RLlibPolicy)
    kwargs = {"users": 24, "block_size": 12, "oracle": None}
    by_name = evaluate(f"rllib:{checkpoint}", ENV, name="ppo", **kwargs).to_json()
    by_object = evaluate(RLlibPolicy.from_checkpoint(checkpoint), ENV, name="ppo", **kwargs).to_json()
    on_ray = evaluate(f"rllib:{checkpoint}", ENV, name="ppo", backend="ray", workers=2, **kwargs).to_json()
    assert by_name == by_object == on_ray


def test_env_creator_builds_the_native_vector_env_and_times_it():
    from recoworld.rllib import TimedVectorEnv, env_creator, timed_env_creator

    vec = env_creator({"env_id": ENV, "num_envs": 3, "max_turns": 5})
    assert vec.num_envs == 3 and vec.metadata["autoreset_mode"] == gym.vector.AutoresetMode.NEXT_STEP
    assert not isinstance(env_creator({"env_id": ENV}), gym.vector.VectorEnv)
    timed = timed_env_creator({"env_id": ENV, "num_envs": 2})
    assert isinstance(timed, TimedVectorEnv) and timed.env_seconds == 0.0
    timed.reset(seed=0)
    timed.step(np.tile(np.arange(10), (2, 1)))
    assert timed.env_seconds > 0.0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"env_id": "CartPole-v1"}, "unknown RecoWorld environment id"),
        ({"env_id": "gym:Foo-v0"}, "only RecoWorld ids"),
        ({"num_env_runners": -1}, "num_env_runners must be an integer >= 0"),
        ({"num_envs_per_env_runner": 0}, "num_envs_per_env_runner must be an integer >= 1"),
    ],
)
def test_ppo_config_rejects_bad_arguments(kwargs, message):
    from recoworld.rllib import ppo_config

    with pytest.raises(ValueError, match=message):
        ppo_config(**kwargs)


def test_policy_from_a_live_algorithm_acts_like_its_checkpoint(ray_runtime, tmp_path):
    from recoworld.agents.rllib import RLlibPolicy
    from recoworld.rllib import ppo_config

    algo = (
        ppo_config(ENV, num_envs_per_env_runner=4, seed=3)
        .training(train_batch_size_per_learner=64, minibatch_size=32)
        .build_algo()
    )
    try:
        live = RLlibPolicy.from_algorithm(algo)
        algo.save_to_path(str(tmp_path))
    finally:
        algo.stop()
    env = gym.make_vec(ENV, num_envs=4, vectorization_mode="vector_entry_point")
    obs, _ = env.reset(seed=1)
    np.testing.assert_array_equal(live.act(obs), RLlibPolicy.from_checkpoint(tmp_path).act(obs))


def test_missing_checkpoint_is_a_clear_error(tmp_path):
    from recoworld.evaluation.policies import PolicyError

    with pytest.raises(PolicyError, match="not an RLlib algorithm checkpoint"):
        make_policy(f"rllib:{tmp_path}", None)


@pytest.mark.slow
def test_trained_ppo_beats_random_on_watch_time(ray_runtime, tmp_path):
    script = load_script()
    results = script.main(["--out-dir", str(tmp_path), "--eval-users", "2048", "--baselines", "random"])
    diff = results["evaluation"]["paired"]["ppo - random"]
    assert diff["ci95"][0] > 0, diff
