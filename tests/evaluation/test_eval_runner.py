"""Evaluation over the real vector environment: user mapping, common random numbers, resume, sharding."""

from __future__ import annotations

import multiprocessing
import pickle
from concurrent.futures import ProcessPoolExecutor

import gymnasium as gym
import numpy as np
import pytest

import recoworld  # noqa: F401 - registers the environments
from recoworld.evaluation import SEED_STRIDE, compare, evaluate, plan_shards, run_shard
from recoworld.evaluation.metrics import METRICS

ENV = "RecoWorld-v0"
SHORT = {"horizon_days": 2}  # short lives keep these tests fast


class FirstK:
    """Shows the first K candidates, in order."""

    name = "firstk"

    def __init__(self, k: int = 10, offset: int = 0):
        self.k, self.offset = k, offset
        self.calls = 0

    def act(self, obs):
        self.calls += 1
        n = np.asarray(obs["candidate_topic"]).shape[0]
        return np.tile(np.arange(self.offset, self.offset + self.k), (n, 1))


class Shifted(FirstK):
    name = "shifted"

    def __init__(self):
        super().__init__(offset=1)


class LocalRandom:
    """K distinct random candidates from its own seeded generator; learns nothing."""

    name = "localrandom"

    def __init__(self):
        self.rng = np.random.default_rng(0)
        self.updates = 0

    def reset(self, seed=None):
        self.rng = np.random.default_rng(seed)

    def act(self, obs):
        shape = np.asarray(obs["candidate_topic"]).shape
        return np.argsort(self.rng.random(shape), axis=1)[:, :10]

    def update(self, obs, action, reward, info):
        self.updates += 1


def _records_equal(a: dict, b: dict) -> None:
    keys = sorted(k for k in a if k != "meta")
    assert keys == sorted(k for k in b if k != "meta")
    for k in keys:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def test_user_u_of_seed_s_is_the_single_env_user():
    """Sub-env i of a block is exactly the user of gym.make(id).reset(seed=s * SEED_STRIDE + start + i)."""
    spec = plan_shards({"firstk": FirstK()}, ENV, 4, [3], SHORT, block_size=2)[1]  # users 2, 3 of seed 3
    rec = run_shard(spec)
    for i, u in enumerate(range(2, 4)):
        env = gym.make(ENV, **SHORT)
        obs, _ = env.reset(seed=3 * SEED_STRIDE + u)
        policy = FirstK()
        watch, requests, done = 0.0, 0, False
        while not done:
            slate = policy.act({k: np.asarray(v)[None] for k, v in obs.items()})[0]
            obs, _, term, trunc, info = env.step(slate)
            watch += float(np.sum(info["watch_minutes"]))
            requests += 1
            done = term or trunc
        env.close()
        assert rec["requests"][i] == requests
        assert rec["watch_minutes"][i] == pytest.approx(watch)
        assert rec["churned"][i] == bool(term)
    np.testing.assert_array_equal(rec["user"], [2, 3])
    np.testing.assert_array_equal(rec["seed"], [3, 3])


def test_records_are_consistent_and_every_user_finished():
    rec = run_shard(plan_shards({"r": LocalRandom()}, ENV, 16, [0], SHORT)[0])
    assert np.all(rec["sessions"] >= 1)
    assert np.all(rec["requests"] >= rec["sessions"])
    assert np.all((rec["last_day"] >= 0) & (rec["last_day"] <= SHORT["horizon_days"]))
    assert np.all(rec["churned"] ^ rec["truncated"])  # exactly one way to end
    assert np.all(rec["impressions"] == 10 * rec["requests"])
    assert np.all(rec["clicks"] <= rec["impressions"])
    assert np.all(rec["gap_count"] >= rec["sessions"] - 1)
    assert np.all(rec["user_index"] >= 0)


def test_block_size_does_not_change_a_stateless_policy():
    a = compare({"firstk": FirstK()}, ENV, users=7, seeds=1, env_kwargs=SHORT, oracle=None, block_size=3)
    b = compare({"firstk": FirstK()}, ENV, users=7, seeds=1, env_kwargs=SHORT, oracle=None, block_size=7)
    _records_equal(a.policies["firstk"].records, b.policies["firstk"].records)
    assert a.to_json()["policies"] == b.to_json()["policies"]


def test_observe_latent_does_not_change_the_users():
    """The oracle runs with observe_latent=True; regret pairs it with policies run without it."""
    plain = run_shard(plan_shards({"f": FirstK()}, ENV, 6, [0], SHORT)[0])
    latent = run_shard(plan_shards({"f": FirstK()}, ENV, 6, [0], {**SHORT, "observe_latent": True})[0])
    _records_equal(plain, latent)


def test_paired_evaluation_reduces_variance_of_a_difference():
    """Same seeds -> same users and luck: the per-user difference varies far less than across seeds."""
    users = 64
    r = compare(
        {"a": FirstK(), "b": Shifted()}, ENV, users=users, seeds=[0, 1], env_kwargs=SHORT, oracle=None
    )
    a, b = r.policies["a"].per_user, r.policies["b"].per_user
    for metric in ("watch_time_per_user", "ctr", "sessions_per_user"):
        paired = b[metric][:users] - a[metric][:users]  # seed 0 vs seed 0: the same users
        unpaired = b[metric][users:] - a[metric][:users]  # seed 1 vs seed 0: different users
        assert np.var(paired) < 0.5 * np.var(unpaired), metric
    # and the reported paired interval is narrower than the two policies' own intervals combined
    diff = r.paired["b - a"]["watch_time_per_user"]
    wa = r.policies["a"].metrics["watch_time_per_user"].half_width
    wb = r.policies["b"].metrics["watch_time_per_user"].half_width
    assert diff.half_width < 0.5 * np.hypot(wa, wb)


def test_resume_after_interruption_equals_uninterrupted(tmp_path):
    policies = {"random": "random", "egreedy": "egreedy", "localrandom": LocalRandom()}
    kwargs = dict(users=6, seeds=2, env_kwargs=SHORT, block_size=3)
    full = compare(policies, ENV, out_dir=tmp_path / "full", **kwargs)

    class Stop(Exception):
        pass

    seen = []

    def stop_after_three(spec, records):
        seen.append(spec.key)
        if len(seen) == 3:
            raise Stop

    with pytest.raises(Stop):
        compare(policies, ENV, out_dir=tmp_path / "cut", callback=stop_after_three, **kwargs)
    assert len(list((tmp_path / "cut").rglob("*.npz"))) == 3

    rerun = []
    resumed = compare(
        policies,
        ENV,
        out_dir=tmp_path / "cut",
        resume=True,
        callback=lambda s, r: rerun.append(s.key),
        **kwargs,
    )
    total = 4 * 2 * 2  # (3 policies + oracle) x 2 seeds x 2 blocks
    assert len(rerun) == total - 3 and not set(rerun) & set(seen)
    assert resumed.to_json() == full.to_json()
    for name in full.policies:
        _records_equal(resumed.policies[name].records, full.policies[name].records)
    # resuming a finished evaluation runs nothing
    again = []
    compare(
        policies, ENV, out_dir=tmp_path / "cut", resume=True, callback=lambda s, r: again.append(s), **kwargs
    )
    assert again == []


def test_resume_refuses_shards_of_another_evaluation(tmp_path):
    compare(["popular"], ENV, users=3, env_kwargs=SHORT, oracle=None, out_dir=tmp_path)
    with pytest.raises(ValueError, match="different evaluation"):
        compare(
            ["popular"],
            ENV,
            users=3,
            env_kwargs={"horizon_days": 1},
            oracle=None,
            out_dir=tmp_path,
            resume=True,
        )


def test_shards_through_a_process_pool_give_identical_numbers():
    kwargs = dict(users=4, seeds=2, env_kwargs=SHORT, block_size=2)
    local = compare(["random", "linucb"], ENV, **kwargs)
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        remote = compare(["random", "linucb"], ENV, map_fn=pool.map, **kwargs)
    assert remote.to_json() == local.to_json()


def test_specs_pickle_and_run_identically():
    spec = plan_shards({"linucb": "linucb"}, ENV, 3, [1], SHORT)[0]
    _records_equal(run_shard(spec), run_shard(pickle.loads(pickle.dumps(spec))))


def test_policy_objects_are_copied_and_learners_are_updated():
    policy = LocalRandom()
    result = evaluate(policy, ENV, users=4, env_kwargs=SHORT, oracle=None)
    assert policy.updates == 0  # the caller's object is left untouched: every shard gets a deep copy
    assert list(result.policies) == ["localrandom"]
    shard_policy_updates = []

    def factory(env, seed):
        p = LocalRandom()
        shard_policy_updates.append(p)
        return p

    evaluate(factory, ENV, users=4, env_kwargs=SHORT, oracle=None, name="factory")
    assert shard_policy_updates and shard_policy_updates[0].updates > 0
    evaluate(factory, ENV, users=4, env_kwargs=SHORT, oracle=None, name="frozen", learn=False)
    assert shard_policy_updates[-1].updates == 0


def test_evaluate_json_has_every_metric_and_regret():
    result = evaluate(FirstK(), ENV, users=8, env_kwargs=SHORT)
    doc = result.to_json()
    assert doc["env"] == ENV and list(doc["policies"]) == ["firstk"] and doc["paired"] == {}
    metrics = doc["policies"]["firstk"]["metrics"]
    assert set(metrics) == set(METRICS)
    assert metrics["regret"]["mean"] is not None
    assert metrics["day7_retention"]["mean"] is None  # horizon 2: day 7 cannot be observed
    assert 0 <= metrics["day1_retention"]["mean"] <= 1
    survival = doc["policies"]["firstk"]["survival"]
    assert survival["day"] == [0, 1, 2]
    assert all(a >= b for a, b in zip(survival["survival"], survival["survival"][1:], strict=False))


def test_oracle_has_zero_regret_and_is_reused():
    result = compare(["oracle", "popular"], ENV, users=5, env_kwargs=SHORT)
    assert result.oracle == "oracle"
    assert result.policies["oracle"].metrics["regret"].mean == 0.0
    expected = (
        result.policies["oracle"].per_user["watch_time_per_user"]
        - (result.policies["popular"].per_user["watch_time_per_user"])
    )
    np.testing.assert_allclose(result.policies["popular"].per_user["regret"], expected)


def test_pairing_different_users_is_refused():
    a = compare(["popular"], ENV, users=3, seeds=[0], env_kwargs=SHORT, oracle=None)
    b = compare(["random"], ENV, users=3, seeds=[1], env_kwargs=SHORT, oracle=None)
    a.policies["random"] = b.policies["random"]
    with pytest.raises(ValueError, match="same users"):
        a.paired_difference("popular", "random")


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"users": 0}, "users"),
        ({"users": 2, "seeds": 0}, "seeds"),
        ({"users": 2, "seeds": [1, 1]}, "distinct"),
    ],
)
def test_invalid_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        compare(["random"], ENV, **kwargs)


def test_unknown_env_and_policy():
    with pytest.raises(ValueError, match="unknown environment"):
        evaluate("random", "NoSuchWorld-v3", users=2)
    with pytest.raises(ValueError, match="unknown policy"):
        evaluate("telepathy", ENV, users=2)


def test_progress_bar(capsys):
    compare(["popular"], ENV, users=2, env_kwargs=SHORT, oracle=None, progress=True)
    assert "evaluate" in capsys.readouterr().err


def test_retention_is_undefined_outside_lifetime_environments():
    result = compare(["popular"], "RecoWorld-Session-v0", users=4, oracle=None)
    metrics = result.policies["popular"].metrics
    assert np.isnan(metrics["day1_retention"].mean) and np.isnan(metrics["day7_retention"].mean)
    assert metrics["sessions_per_user"].mean == 1.0
    assert metrics["watch_time_per_user"].mean >= 0


def test_an_oracle_object_gets_the_latent_state():
    from recoworld.agents import make_agent

    result = evaluate(make_agent("oracle", None, seed=0), ENV, users=3, env_kwargs=SHORT)
    assert result.policies["oracle"].metrics["regret"].mean == 0.0


def test_torch_policies_do_not_depend_on_the_thread_count():
    torch = pytest.importorskip("torch")
    spec = plan_shards({"hrl": "hrl"}, ENV, 6, [0], {"horizon_days": 1})[0]
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        two = run_shard(spec)
        assert torch.get_num_threads() == 2  # restored after the shard
        torch.set_num_threads(1)
        one = run_shard(spec)
    finally:
        torch.set_num_threads(before)
    _records_equal(two, one)
