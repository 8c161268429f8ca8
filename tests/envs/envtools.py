"""Helpers shared by the environment tests."""

import numpy as np

SYNTHETIC_IDS = ["RecoWorld-v0", "RecoWorld-Session-v0", "RecoWorld-Bandit-v0", "RecoWorld-ML100K-v0"]


def random_slates(
    rng: np.random.Generator, n: int, num_candidates: int = 50, slate_size: int = 10
) -> np.ndarray:
    """Random slates without repeats, (n, slate_size)."""
    return np.argsort(rng.random((n, num_candidates)), axis=1)[:, :slate_size]
