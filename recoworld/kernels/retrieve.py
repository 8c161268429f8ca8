"""Compiled retrieval stage: :class:`recoworld.envs.retrieval.Retrieval` per user (same draws, same items)."""

from __future__ import annotations

import numpy as np

from recoworld.kernels.jit import inline, jit
from recoworld.kernels.random import fill_uniform, stream_base, unit

REFILL_ROUNDS = 6


def retrieve(rows, keys, counter, recent_items, tables, out):
    """Distinct candidates ``out`` (R, C), sorted, for ``rows``; ``recent_items``: the slots' history ring
    buffers (B, H). ``tables``: as :func:`draw`."""
    u = np.empty(out.shape[1] + tables[2][0])  # scratch: a row's uniforms
    draw(rows, keys, counter, recent_items, tables, out, u)
    out.sort(axis=1)  # numpy's vectorised sort beats a compiled loop on short rows
    make_distinct(rows, keys, counter, tables[2], out, np.empty(out.shape[1], dtype=np.int64))


@jit
def draw(rows, keys, counter, recent_items, tables, out, u):
    """Candidates ``out`` (R, C) for ``rows``, unsorted, with repeats; ``u``: C + topic candidates scratch.

    ``tables``: (topic_or_empty, lookup, sizes) where ``sizes`` = (topic, popular, random candidates,
    topics, quantiles, popular start, uniform start, items, purpose, refill purpose).
    """
    for j in range(rows.shape[0]):
        r = rows[j]
        draw_row(recent_items[r], keys[r], counter[r], tables, out[j], u)


@inline
def draw_row(recent_items, key, counter, tables, items, u):
    """One slot's candidates ``items`` (unsorted) given its history ring buffer; ``u``: C + topic scratch."""
    topic_or_empty, lookup, sizes = tables
    nt, npop, nrand, num_topics, quantiles, popular_start, uniform_start, m, purpose, refill = sizes
    h = recent_items.shape[0]
    fill_uniform(u, stream_base(key, counter, purpose))
    for q in range(nt):  # a likely topic: that of a random recent item, or a random one
        g = topic_or_empty[recent_items[min(int(u[q] * h), h - 1)]]
        if g < 0:
            g = min(int(u[q] * h * num_topics) % num_topics, num_topics - 1)
        items[q] = lookup[int(u[nt + q] * quantiles) + g * quantiles]
    for q in range(npop):
        items[nt + q] = lookup[int(u[2 * nt + q] * quantiles) + popular_start]
    for q in range(nrand):
        items[nt + npop + q] = lookup[min(int(u[2 * nt + npop + q] * m), m - 1) + uniform_start]


@jit
def make_distinct(rows, keys, counter, sizes, out, fresh):
    """Retrieval._make_distinct on sorted rows ``out`` of slots ``rows``; ``fresh``: (C,) int64 scratch."""
    m, refill = sizes[7], sizes[9]
    for j in range(rows.shape[0]):
        make_distinct_row(keys[rows[j]], counter[rows[j]], refill, m, out[j], fresh)


@jit
def _has_repeat(items):
    for k in range(1, items.shape[0]):  # noqa: SIM110 (numba compiles no generator expressions)
        if items[k] == items[k - 1]:
            return True
    return False


@jit
def sort_row(a):
    """Insertion sort in place (fast on a sorted row with a few cells redrawn)."""
    for i in range(1, a.shape[0]):
        x = a[i]
        k = i - 1
        while k >= 0 and a[k] > x:
            a[k + 1] = a[k]
            k -= 1
        a[k + 1] = x


@inline
def make_distinct_row(key, counter, refill, m, items, fresh):
    """Retrieval._make_distinct for one sorted row: redraw repeats from purpose ``refill + round``.

    A round sets the repeats aside (every item equal to its predecessor), draws their replacements into
    ``fresh`` (scratch), sorts those and merges them back: the row sorted, as the reference's full sort.
    """
    c = items.shape[0]
    for round_ in range(REFILL_ROUNDS):
        kept, drawn, previous, base = 1, 0, items[0], np.uint64(0)
        for k in range(1, c):
            value = items[k]
            if value == previous:
                if drawn == 0:
                    base = stream_base(key, counter, refill + round_)
                fresh[drawn] = min(int(unit(base, k) * m), m - 1)
                drawn += 1
            else:
                items[kept] = value
                kept += 1
            previous = value
        if drawn == 0:
            return
        sort_row(fresh[:drawn])
        i, j = kept - 1, drawn - 1
        for w in range(c - 1, -1, -1):  # merge from the back; items[: i + 1] are in place once j < 0
            if j < 0:
                break
            if i >= 0 and items[i] > fresh[j]:
                items[w] = items[i]
                i -= 1
            else:
                items[w] = fresh[j]
                j -= 1
    if _has_repeat(items):  # vanishingly rare: keep the distinct items, add the lowest unused
        _fill_lowest_unused(items)


@jit
def _fill_lowest_unused(items):
    """Sorted ``items`` made distinct: its distinct values and, for the repeats, the lowest unused values."""
    kept = 1
    for k in range(1, items.shape[0]):
        if items[k] != items[kept - 1]:
            items[kept] = items[k]
            kept += 1
    n, j, spare = kept, 0, 0
    while n < items.shape[0]:
        while j < kept and items[j] < spare:
            j += 1
        if j >= kept or items[j] != spare:
            items[n] = spare
            n += 1
        spare += 1
    sort_row(items)
