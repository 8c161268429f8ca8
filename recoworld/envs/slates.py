"""Slate actions: validation with errors that name the problem, and deterministic de-duplication."""

from __future__ import annotations

import numpy as np


class InvalidActionError(ValueError):
    """The action is not a valid slate; the environment's state is unchanged and it can step again."""


def as_slates(action, batch_size: int, slate_size: int) -> np.ndarray:
    """``action`` as an int64 array (batch_size, slate_size), indices not range-checked; or
    :class:`InvalidActionError`."""
    a = action if type(action) is np.ndarray else np.asarray(action)
    if a.dtype == object or a.dtype.kind not in "iuf":
        raise InvalidActionError(f"action must be an integer array of candidate indices, got dtype {a.dtype}")
    expected = (batch_size, slate_size)
    if a.shape != expected and a.size == batch_size * slate_size and a.ndim <= 2:
        a = a.reshape(expected)  # a single env's (K,) slate or a bandit's scalar
    if a.shape != expected:
        raise InvalidActionError(f"action must have shape {expected}, got {np.asarray(action).shape}")
    if a.dtype.kind == "f":
        if np.isnan(a).any():
            raise InvalidActionError("action contains NaN; expected integer candidate indices")
        raise InvalidActionError(f"action must have an integer dtype, got {a.dtype}")
    return a.astype(np.int64, copy=False)


def check_range(slates: np.ndarray, num_candidates: int) -> None:
    """:class:`InvalidActionError` naming the first extreme index outside [0, num_candidates)."""
    low, high = slates.min(), slates.max()
    if low < 0 or high >= num_candidates:
        bad = low if low < 0 else high
        raise InvalidActionError(f"action index {bad} out of range [0, {num_candidates})")


def deduplicate(slates: np.ndarray, num_candidates: int) -> tuple[np.ndarray, np.ndarray]:
    """Replace repeated indices (after their first use) by the best unused candidates (lowest index).

    Returns the slates and the number of replacements per row.
    """
    replaced = np.zeros(slates.shape[0], dtype=np.int64)
    ordered = np.sort(slates, axis=1)
    has_repeat = (ordered[:, 1:] == ordered[:, :-1]).any(axis=1)
    if not has_repeat.any():
        return slates, replaced
    rows = np.flatnonzero(has_repeat)
    sub = slates[rows].copy()
    local = np.arange(rows.size)
    used = np.zeros((rows.size, num_candidates), dtype=bool)  # anywhere in the slate, or given as replacement
    used[local[:, None], sub] = True
    seen = np.zeros_like(used)  # kept at an earlier position
    for k in range(sub.shape[1]):
        repeat = seen[local, sub[:, k]]
        if repeat.any():
            sub[repeat, k] = np.argmin(used[repeat], axis=1)  # best (lowest-index) unused candidate
            used[local[repeat], sub[repeat, k]] = True
            replaced[rows[repeat]] += 1
        seen[local, sub[:, k]] = True
    slates = slates.copy()
    slates[rows] = sub
    return slates, replaced
