"""Compiled serving steps of :class:`recoworld.envs.core.Simulator`: slate de-duplication (with the range
check) and the history ring buffer. The specifications: :mod:`recoworld.envs.slates` and the core."""

from __future__ import annotations

import numpy as np

from recoworld.kernels.jit import inline, jit


def record_history(items, clicked, watch, duration, hist_items, hist_watch, hist_ptr) -> None:
    """Append each row's clicked items (slate order) to its ring buffer; with more clicks than slots, the
    latest.

    ``hist_watch`` gets the watched fraction of each item (float32).
    """
    _record_history(items, clicked, watch, duration, hist_items, hist_watch, hist_ptr)


@jit
def _record_history(items, clicked, watch, duration, hist_items, hist_watch, hist_ptr):
    for r in range(items.shape[0]):
        record_history_row(r, items[r], clicked[r], watch[r], duration, hist_items, hist_watch, hist_ptr)


@inline
def record_history_row(r, items, clicked, watch, duration, hist_items, hist_watch, hist_ptr):
    """Slot ``r``'s clicked ``items`` into its ring buffer."""
    h = hist_items.shape[1]
    count = 0
    for k in range(items.shape[0]):
        count += clicked[k]
    j = 0
    for k in range(items.shape[0]):
        if clicked[k]:
            if j >= count - h:
                position = (hist_ptr[r] + j) % h
                hist_items[r, position] = items[k]
                hist_watch[r, position] = np.float32(watch[k] / duration[items[k]])
            j += 1
    hist_ptr[r] = (hist_ptr[r] + count) % h


def checked_distinct_slates(
    slates: np.ndarray, num_candidates: int, ignored: np.ndarray
) -> tuple[np.ndarray, np.ndarray] | None:
    """slates.deduplicate of int64 ``slates`` (always a new array) and the replacements per row; None if an
    index lies outside [0, num_candidates) (for slates.check_range to report). Rows where ``ignored`` (B,) is
    true get the slate 0 .. K-1 whatever their action."""
    out = np.empty_like(slates)
    replaced = np.empty(slates.shape[0], dtype=np.int64)
    used = np.zeros(num_candidates, dtype=np.bool_)  # in the slate, or given as a replacement
    seen = np.zeros(num_candidates, dtype=np.bool_)  # kept at an earlier position
    if not _distinct_slates(slates, ignored, out, replaced, used, seen):
        return None
    return out, replaced


@jit
def _distinct_slates(slates, ignored, out, replaced, used, seen):
    num_candidates = used.shape[0]
    for r in range(slates.shape[0]):
        replaced[r] = 0
        if ignored[r]:
            for k in range(slates.shape[1]):
                out[r, k] = k
            continue
        for k in range(slates.shape[1]):
            if not 0 <= slates[r, k] < num_candidates:
                return False
            used[slates[r, k]] = True
        lowest_unused = 0
        for k in range(slates.shape[1]):
            index = slates[r, k]
            if seen[index]:
                while used[lowest_unused]:
                    lowest_unused += 1
                index = lowest_unused
                used[index] = True
                replaced[r] += 1
            seen[index] = True
            out[r, k] = index
        for k in range(slates.shape[1]):  # clear the marks for the next row
            used[slates[r, k]] = seen[slates[r, k]] = False
            used[out[r, k]] = seen[out[r, k]] = False
    return True
