"""The compiled (numba) kernel and the numpy reference simulate the same model.

Discrete outcomes are identical; continuous values agree to rounding (libm and numpy's SIMD transcendentals
differ by an ulp on a few percent of values; docs/performance.md)."""

import numpy as np
import pytest
from envtools import random_slates

from recoworld.envs.vector import RecoWorldVectorEnv
from recoworld.users.synthetic import SyntheticUserModel

pytest.importorskip("numba")

STEPS, NUM_ENVS = 300, 64


def trajectory(kernel: str, mode: str, choice_model: str, num_envs: int = NUM_ENVS, **overrides) -> list:
    env = RecoWorldVectorEnv(num_envs, mode=mode, kernel=kernel, choice_model=choice_model, **overrides)
    rng = np.random.default_rng(7)
    steps = [env.reset(seed=11)]
    for t in range(STEPS):
        slates = random_slates(rng, num_envs)
        if t % 5 == 0:
            slates[:, 4] = slates[:, 2]  # repeats, to be de-duplicated
        steps.append(env.step(slates))
    return steps


def assert_same(a, b, where: str) -> None:
    if isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for key in a:
            assert_same(a[key], b[key], f"{where}/{key}")
    elif isinstance(a, tuple):
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_same(x, y, f"{where}[{i}]")
    else:
        a, b = np.asarray(a), np.asarray(b)
        assert a.dtype == b.dtype and a.shape == b.shape, where
        if a.dtype.kind == "f":
            np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12, err_msg=where)
        else:
            np.testing.assert_array_equal(a, b, err_msg=where)


class OtherUserModel(SyntheticUserModel):
    """Not the synthetic model itself: the simulator runs the compiled pieces one by one (no fused step)."""


def assert_same_trajectories(reference: list, compiled: list) -> None:
    for t, (a, b) in enumerate(zip(reference, compiled, strict=True)):
        assert_same(a, b, f"step {t}")


@pytest.mark.parametrize("choice_model", ["cascade", "mnl"])
@pytest.mark.parametrize("mode", ["lifetime", "session", "bandit"])
def test_numba_kernel_matches_numpy_reference(mode, choice_model):
    latent = {"observe_latent": True} if mode == "lifetime" else {}
    reference = trajectory("numpy", mode, choice_model, **latent)
    assert_same_trajectories(reference, trajectory("numba", mode, choice_model, **latent))
    infos = [step[4] for step in reference[1:]]
    happened = {key: sum(int(np.sum(info[key])) for info in infos) for key in ("clicked", "liked", "left")}
    happened["instructions"] = sum(int(np.sum(info["instruction_type"] > 0)) for info in infos)
    happened["judged"] = sum(int(np.sum(info["instruction_followed"] >= 0)) for info in infos)
    happened["episode ends"] = sum(int(np.sum(s[2] | s[3])) for s in reference[1:])
    happened["repeats replaced"] = sum(int(np.sum(info["duplicates_replaced"])) for info in infos)
    if mode == "bandit":  # one request per user: too short to grow bored or impatient (to speak or leave)
        del happened["instructions"], happened["judged"], happened["left"]
    assert min(happened.values()) > 0, happened  # the comparison covered every kind of event


@pytest.mark.parametrize(("mode", "choice_model"), [("lifetime", "cascade"), ("session", "mnl")])
def test_numba_kernel_matches_numpy_reference_on_small_batches(mode, choice_model):
    """A few slots take the kernel's one-call path (candidates sorted in the kernel)."""
    reference = trajectory("numpy", mode, choice_model, num_envs=3)
    assert_same_trajectories(reference, trajectory("numba", mode, choice_model, num_envs=3))


@pytest.mark.parametrize("mode", ["lifetime", "bandit"])
def test_compiled_pieces_match_numpy_reference_for_other_user_models(mode):
    reference = trajectory("numpy", mode, "cascade", user_model=OtherUserModel)
    env = RecoWorldVectorEnv(2, mode=mode, kernel="numba", user_model=OtherUserModel)
    assert not env.sim._fused_step
    assert_same_trajectories(reference, trajectory("numba", mode, "cascade", user_model=OtherUserModel))


def test_compiled_deduplication_matches_numpy_and_checks_the_range():
    from recoworld.envs.slates import deduplicate
    from recoworld.kernels.serving import checked_distinct_slates

    slates = np.random.default_rng(3).integers(0, 12, size=(500, 10))  # many repeats
    expected, expected_replaced = deduplicate(slates, 50)
    distinct, replaced = checked_distinct_slates(slates, 50, np.zeros(500, dtype=bool))
    np.testing.assert_array_equal(distinct, expected)
    np.testing.assert_array_equal(replaced, expected_replaced)
    assert replaced.sum() > 500
    slates[7, 3] = 50
    assert checked_distinct_slates(slates, 50, np.zeros(500, dtype=bool)) is None
    ignored = np.zeros(500, dtype=bool)
    ignored[7] = True  # the out-of-range row is disregarded
    distinct, replaced = checked_distinct_slates(slates, 50, ignored)
    np.testing.assert_array_equal(distinct[7], np.arange(10))
    assert replaced[7] == 0


def test_compiled_last_resort_keeps_the_distinct_items_and_adds_the_lowest_unused():
    """The retrieval's fallback after its redraw rounds (Retrieval._make_distinct's last loop)."""
    from recoworld.kernels.retrieve import _fill_lowest_unused

    rng = np.random.default_rng(5)
    for _ in range(200):
        row = np.sort(rng.integers(0, 30, size=rng.integers(2, 20)))
        unique = np.unique(row)
        spare = np.setdiff1d(np.arange(100), unique)[: row.size - unique.size]
        expected = np.sort(np.concatenate([unique, spare]))
        _fill_lowest_unused(row)
        np.testing.assert_array_equal(row, expected)


@pytest.mark.parametrize(("mode", "choice_model"), [("lifetime", "cascade"), ("bandit", "mnl")])
def test_threads_reproduce_one_thread_exactly(mode, choice_model, monkeypatch):
    """Row chunks on 3 threads (200 slots: 66-67 rows each) give one thread's trajectories bit for bit."""
    from recoworld.kernels import step

    monkeypatch.setattr(step, "MIN_THREAD_ROWS", 64)  # small chunks keep the test fast
    assert len(step.row_chunks(200, 3)) == 3
    serial = trajectory("numba", mode, choice_model, num_envs=200)
    threaded = trajectory("numba", mode, choice_model, num_envs=200, threads=3)
    for t, (a, b) in enumerate(zip(serial, threaded, strict=True)):
        for x, y in zip(a, b, strict=True):  # (obs, info) after reset, then step tuples
            if isinstance(x, dict):
                assert x.keys() == y.keys()
                for key in x:
                    np.testing.assert_array_equal(x[key], y[key], err_msg=f"step {t}/{key}")
            else:
                np.testing.assert_array_equal(x, y, err_msg=f"step {t}")


def test_row_chunks_cover_every_row_once_with_enough_rows_each():
    from recoworld.kernels.step import MIN_THREAD_ROWS, row_chunks

    for rows in (1, 63, 64, 127, 128, 1000, 4096):
        for threads in (1, 2, 3, 16):
            chunks = row_chunks(rows, threads)
            assert chunks[0][0] == 0 and chunks[-1][1] == rows
            assert all(a[1] == b[0] for a, b in zip(chunks, chunks[1:], strict=False))
            assert len(chunks) <= threads
            assert len(chunks) == 1 or min(stop - start for start, stop in chunks) >= MIN_THREAD_ROWS


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="fork")
def test_threaded_env_steps_in_a_forked_child(monkeypatch):
    """A forked child does not reuse the parent's thread pool (its threads are gone): its step returns."""
    import multiprocessing

    from recoworld.kernels import step

    monkeypatch.setattr(step, "MIN_THREAD_ROWS", 16)
    env = RecoWorldVectorEnv(64, threads=2)
    env.reset(seed=0)
    env.step(random_slates(np.random.default_rng(0), 64))  # the parent's pool now exists
    with multiprocessing.get_context("fork").Pool(1) as pool:
        rewards = pool.apply_async(_step_rewards, (env,)).get(timeout=60)
    assert rewards.shape == (64,)


def _step_rewards(env) -> np.ndarray:
    return env.step(random_slates(np.random.default_rng(1), 64))[1]
