"""The Stable-Baselines3 adapter (recoworld.envs.sb3), SB3Policy, ``sb3:PATH`` and the PPO training script."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

pytest.importorskip("stable_baselines3")

import recoworld  # noqa: E402, F401
from recoworld.agents import top_k  # noqa: E402
from recoworld.agents.sb3 import SB3Policy  # noqa: E402
from recoworld.envs.sb3 import RecoWorldSB3VecEnv, make_sb3_vec_env  # noqa: E402
from recoworld.envs.slates import InvalidActionError  # noqa: E402
from recoworld.evaluation import compare, make_policy  # noqa: E402
from recoworld.evaluation.policies import PolicyError  # noqa: E402

ENV_ID = "RecoWorld-Session-v0"
SCRIPT = Path(__file__).resolve().parents[2] / "experiments" / "train_sb3_ppo.py"


def obs_policy(obs):
    """Slates that depend only on each row's observation (so rows at different phases can be compared)."""
    return top_k(obs["candidate_embedding"][..., 0] + obs["candidate_popularity"], 10)


def row(obs, i):
    return {key: value[i] for key, value in obs.items()}


def same_obs(a, b) -> bool:
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def load_script():
    spec = importlib.util.spec_from_file_location("train_sb3_ppo", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve the module's annotations through sys.modules
    spec.loader.exec_module(module)
    return module


# ---------------------------------------------------------------------------------------------- adapter
def test_spaces_shapes_dtypes_and_infos():
    venv = make_sb3_vec_env(ENV_ID, num_envs=6, seed=1, monitor=False)
    assert isinstance(venv, RecoWorldSB3VecEnv) and venv.num_envs == 6
    assert isinstance(venv.observation_space, gym.spaces.Dict)
    assert isinstance(venv.action_space, gym.spaces.MultiDiscrete)
    obs = venv.reset()
    for key, space in venv.observation_space.spaces.items():
        assert obs[key].shape == (6, *space.shape), key
        assert obs[key].dtype == space.dtype, key
        assert all(space.contains(obs[key][i]) for i in range(6)), key
    actions = np.stack([venv.action_space.sample() for _ in range(6)])
    obs, reward, done, infos = venv.step(actions)
    assert reward.shape == (6,) and reward.dtype == np.float32
    assert done.shape == (6,) and done.dtype == bool
    assert isinstance(infos, list) and len(infos) == 6
    assert all({"watch_minutes", "clicks"} <= info.keys() for info in infos)
    assert np.allclose(reward, [info["watch_minutes"] for info in infos])  # reward = watch time


def test_autoreset_and_terminal_observation_match_the_native_env():
    """Same-step autoreset: every row follows the native env's trajectory minus its NEXT_STEP reset steps."""
    n, steps = 8, 50
    venv = make_sb3_vec_env(ENV_ID, num_envs=n, seed=3, monitor=False)
    obs = venv.reset()
    sb3 = [[] for _ in range(n)]  # per row: (reward, done, truncated, terminal obs, next obs)
    for _ in range(steps):
        obs, reward, done, infos = venv.step(obs_policy(obs))
        for i in range(n):
            if done[i]:
                assert infos[i]["terminal_observation"] is not None
            else:
                assert "terminal_observation" not in infos[i]
            sb3[i].append(
                (
                    reward[i],
                    done[i],
                    infos[i].get("TimeLimit.truncated"),
                    infos[i].get("terminal_observation"),
                    row(obs, i),
                )
            )

    native = gym.make_vec(ENV_ID, num_envs=n, vectorization_mode="vector_entry_point")
    nobs, _ = native.reset(seed=3)
    ref = [[] for _ in range(n)]
    resetting = np.zeros(n, dtype=bool)
    for _ in range(steps + 30):
        nobs, reward, term, trunc, _ = native.step(obs_policy(nobs))
        for i in range(n):
            if resetting[i]:  # the native reset step: its observation is the new user's first one
                r, d, t, final, _ = ref[i][-1]
                ref[i][-1] = (r, d, t, final, row(nobs, i))
            else:
                ended = bool(term[i] or trunc[i])
                truncated = bool(trunc[i] and not term[i]) if ended else None
                ref[i].append((reward[i], ended, truncated, row(nobs, i) if ended else None, row(nobs, i)))
        resetting = term | trunc

    episodes = 0
    for i in range(n):
        for got, want in zip(sb3[i][:-1], ref[i], strict=False):
            assert np.isclose(got[0], want[0]) and got[1] == want[1] and got[2] == want[2]
            assert (got[3] is None) == (want[3] is None)
            if got[3] is not None:
                assert same_obs(got[3], want[3])
                episodes += 1
            assert same_obs(got[4], want[4])
    assert episodes >= n  # the comparison crossed many episode boundaries


def test_same_seed_same_trajectory_and_other_seed_differs():
    def run(seed):
        venv = make_sb3_vec_env(ENV_ID, num_envs=4, seed=seed, monitor=False)
        rng = np.random.default_rng(0)
        obs = venv.reset()
        out = [obs["candidate_popularity"].copy()]
        for _ in range(25):
            obs, reward, done, _ = venv.step(rng.integers(0, 50, size=(4, 10)))
            out += [obs["candidate_popularity"].copy(), reward.copy(), done.copy()]
        return out

    a, b, c = run(7), run(7), run(8)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert not all(np.array_equal(x, y) for x, y in zip(a, c, strict=True))


def test_returned_observations_are_not_overwritten_by_later_steps():
    """PPO adds ``_last_obs`` to its buffer after the next ``step``: observations must be fresh arrays."""
    venv = make_sb3_vec_env(ENV_ID, num_envs=4, seed=0, monitor=False)
    first = venv.reset()
    snapshot = {key: value.copy() for key, value in first.items()}
    for _ in range(12):  # crosses episode ends (same-step resets) too
        venv.step(np.tile(np.arange(10), (4, 1)))
    assert same_obs(first, snapshot)


def test_seed_sets_the_users_of_the_next_reset_only():
    venv = make_sb3_vec_env(ENV_ID, num_envs=3, monitor=False)
    assert venv.seed(11) == [11, 12, 13]
    first = venv.reset()
    native = gym.make_vec(ENV_ID, num_envs=3, vectorization_mode="vector_entry_point")
    expected, _ = native.reset(seed=11)
    assert same_obs(first, expected)
    assert not same_obs(venv.reset(), expected)  # seeds are used once, as in SB3's VecEnvs


@pytest.mark.parametrize(
    "bad, message",
    [
        (np.full((4, 10), 50), "out of range"),
        (np.zeros((4, 9), dtype=np.int64), "shape"),
        (np.full((4, 10), np.nan), "NaN"),
    ],
)
def test_bad_action_raises_and_leaves_the_env_usable(bad, message):
    venv = make_sb3_vec_env(ENV_ID, num_envs=4, seed=5, monitor=False)
    twin = make_sb3_vec_env(ENV_ID, num_envs=4, seed=5, monitor=False)
    venv.reset(), twin.reset()
    with pytest.raises(InvalidActionError, match=message):
        venv.step(bad)
    good = np.tile(np.arange(10), (4, 1))
    got, want = venv.step(good), twin.step(good)
    assert same_obs(got[0], want[0]) and np.array_equal(got[1], want[1])


def test_attributes_methods_and_wrappers():
    venv = make_sb3_vec_env(ENV_ID, num_envs=4, seed=0, monitor=False)
    venv.reset()
    assert venv.get_attr("config", indices=[1, 2]) == [venv.venv.config] * 2
    utility = venv.env_method("candidate_utility", indices=0)
    assert len(utility) == 1 and utility[0].shape == (4, 50)
    venv.set_attr("note", "x")
    assert venv.get_attr("note") == ["x"] * 4
    with pytest.raises(ValueError, match="share one native environment"):
        venv.set_attr("note", "y", indices=[0])
    assert venv.env_is_wrapped(gym.Wrapper) == [False] * 4
    with pytest.raises(TypeError, match="native RecoWorld vector env"):
        RecoWorldSB3VecEnv(gym.make(ENV_ID))


# -------------------------------------------------------------------------------------------- training script
@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("sb3_smoke")
    script = load_script()
    results = script.main(["--smoke", "--out-dir", str(out)])
    return script, out, results


def test_smoke_run_writes_config_checkpoints_and_results(smoke_run):
    _, out, results = smoke_run
    config = json.loads((out / "config.json").read_text())
    assert config["args"]["smoke"] is True and config["args"]["seed"] == 0
    assert sorted(p.name for p in (out / "checkpoints").glob("*.zip")) == [
        "ppo_1024_steps.zip",
        "ppo_512_steps.zip",
    ]
    assert results["steps"] == results["total_steps"] == 1024
    assert 0 < results["env_s"] < results["wall_s"]
    saved = json.loads((out / "results.json").read_text())
    assert saved["evaluation"]["reference"] == "random"
    assert set(saved["evaluation"]["means"]) == {"ppo", "random", "popular"}


def test_resume_continues_the_step_counter(smoke_run, tmp_path):
    script, out, _ = smoke_run
    checkpoint = out / "checkpoints" / "ppo_512_steps.zip"
    args = script.parse_args(["--smoke", "--out-dir", str(tmp_path), "--resume", str(checkpoint)])
    run = script.train(args)
    assert run["resumed_from"] == 512 and run["steps"] == 512 and run["total_steps"] == 1024
    assert run["model"].num_timesteps == 1024
    assert (tmp_path / "checkpoints" / "ppo_1024_steps.zip").is_file()
    with pytest.raises(ValueError, match="--resume"):
        script.train(script.parse_args(["--smoke", "--resume", str(tmp_path / "missing.zip")]))


# ---------------------------------------------------------------------------------------------- sb3:PATH
def test_make_policy_sb3_round_trip(smoke_run):
    _, out, _ = smoke_run
    from stable_baselines3 import PPO

    path = out / "final.zip"
    env = gym.make_vec(ENV_ID, num_envs=16, vectorization_mode="vector_entry_point")
    policy = make_policy(f"sb3:{path}", env)
    assert isinstance(policy, SB3Policy) and policy.slate_size == 10
    obs, _ = env.reset(seed=0)
    slates = policy.act(obs)
    assert slates.shape == (16, 10) and slates.dtype == np.int64
    assert slates.min() >= 0 and slates.max() < 50
    expected, _ = PPO.load(path, device="cpu").predict(obs, deterministic=True)
    assert np.array_equal(slates, expected)
    assert policy.act(row(obs, 0)).shape == (10,)  # an unbatched observation
    result = compare(
        {"ppo": f"sb3:{path}", "same": SB3Policy.load(path)}, ENV_ID, users=16, reference="ppo", oracle=None
    )
    diff = result.paired["same - ppo"]["watch_time_per_user"]
    assert diff.mean == 0.0  # the name and the object are the same policy on the same users


def test_make_policy_sb3_missing_file_is_a_one_line_policy_error(tmp_path):
    env = gym.make_vec(ENV_ID, num_envs=2, vectorization_mode="vector_entry_point")
    with pytest.raises(PolicyError, match="no Stable-Baselines3 model") as err:
        make_policy(f"sb3:{tmp_path / 'nope.zip'}", env)
    assert "\n" not in str(err.value)


# ---------------------------------------------------------------------------------------------- learning
@pytest.mark.slow
def test_ppo_beats_random_on_session_watch_time(tmp_path):
    script = load_script()
    results = script.main(["--out-dir", str(tmp_path), "--total-timesteps", "100000", "--eval-users", "1024"])
    evaluation = results["evaluation"]
    low, high = evaluation["paired"]["ppo - random"]["ci95"]
    assert low > 0, f"PPO - random: 95% CI [{low}, {high}] does not exclude zero"
