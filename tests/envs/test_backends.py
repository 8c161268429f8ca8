"""Backend selection (WorldConfig.kernel) and what every backend reports in ``info``."""

import numpy as np
import pytest
from envtools import random_slates

from recoworld import kernels
from recoworld.config import WorldConfig
from recoworld.envs.vector import RecoWorldVectorEnv

BACKENDS = [
    "numpy",
    pytest.param("numba", marks=pytest.mark.skipif(not kernels.numba_available(), reason="numba")),
]


def test_unknown_kernel_is_rejected_naming_the_field():
    with pytest.raises(ValueError, match="kernel"):
        WorldConfig(kernel="cuda")


def test_numba_kernel_without_numba_names_the_extra(monkeypatch):
    monkeypatch.setattr(kernels, "numba_available", lambda: False)
    with pytest.raises(ImportError, match=r"recoworld\[fast\]"):
        RecoWorldVectorEnv(2, kernel="numba")
    assert kernels.resolve("auto") == "numpy"


@pytest.mark.parametrize("kernel", BACKENDS)
def test_bandit_user_index_names_the_user_served_this_step(kernel, rng):
    env = RecoWorldVectorEnv(16, mode="bandit", kernel=kernel)
    env.reset(seed=3)
    users = env.sim.users
    for _ in range(5):
        served = users.population_index.copy()
        _, _, _, _, info = env.step(random_slates(rng, 16))
        np.testing.assert_array_equal(info["user_index"], served)
        assert not np.array_equal(users.population_index, served)  # the next request comes from new users


@pytest.mark.parametrize("threads", [0, -2, 1.5, "2"])
def test_invalid_thread_count_is_rejected_naming_the_field(threads):
    with pytest.raises(ValueError, match="threads"):
        WorldConfig(threads=threads)


@pytest.mark.skipif(not kernels.numba_available(), reason="numba")
def test_every_kernel_compiles_without_numbas_reference_counting():
    """The runtime-free option (docs/performance.md: a quarter of the step's time) is not silently dropped."""
    import importlib

    import numba

    modules = ("jit", "observe", "random", "respond", "retrieve", "serving", "session", "step")
    dispatchers = [
        f
        for m in modules
        for f in vars(importlib.import_module(f"recoworld.kernels.{m}")).values()
        if isinstance(f, numba.core.registry.CPUDispatcher)
    ]
    assert len(dispatchers) > 20
    assert all(f.targetoptions.get("_nrt") is False for f in dispatchers)
