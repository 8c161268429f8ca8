"""Compiled serving-state updates of :class:`recoworld.envs.core.Simulator`: the history ring buffer."""

from __future__ import annotations

import numpy as np

from recoworld.kernels.random import jit


def record_history(items, clicked, watch, duration, hist_items, hist_watch, hist_ptr) -> None:
    """Append each row's clicked items (slate order) to its ring buffer; with more clicks than slots, the
    latest.

    ``hist_watch`` gets the watched fraction of each item (float32).
    """
    _record_history(items, clicked, watch, duration, hist_items, hist_watch, hist_ptr)


@jit
def _record_history(items, clicked, watch, duration, hist_items, hist_watch, hist_ptr):
    h = hist_items.shape[1]
    for r in range(items.shape[0]):
        count = 0
        for k in range(items.shape[1]):
            count += clicked[r, k]
        j = 0
        for k in range(items.shape[1]):
            if clicked[r, k]:
                if j >= count - h:
                    position = (hist_ptr[r] + j) % h
                    hist_items[r, position] = items[r, k]
                    hist_watch[r, position] = np.float32(watch[r, k] / duration[items[r, k]])
                j += 1
        hist_ptr[r] = (hist_ptr[r] + count) % h
