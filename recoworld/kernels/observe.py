"""Compiled observation build: :meth:`recoworld.envs.observation.ObservationBuilder.build` per slot."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from recoworld.kernels.jit import inline, jit


class Observation(NamedTuple):
    """The batched observation arrays the kernel fills (the keys of docs/interfaces.md, ``latent`` aside)."""

    candidate_embedding: np.ndarray
    candidate_topic: np.ndarray
    candidate_popularity: np.ndarray
    candidate_novelty: np.ndarray
    history_embedding: np.ndarray
    history_feedback: np.ndarray
    topic_histogram: np.ndarray
    context: np.ndarray
    instruction: np.ndarray


def observe(candidates, tables: tuple, state: tuple, sizes: tuple) -> dict[str, np.ndarray]:
    """Observations (fresh arrays) of every slot, but ``latent``.

    ``sizes``: (embedding dim, history length, topics, instruction width). ``tables``: (item embedding with
    an empty row last, item topic, popularity in [0, 1], context scale, novelty share, number of instruction
    types); ``state``: (history items, history watch fraction,
    history pointer, turn, days since last session, day, session, topic share, pending type, pending topic).
    """
    arrays = allocate(*candidates.shape, sizes)
    _observe(candidates, tables, state, arrays)
    return dict(zip(Observation._fields, arrays, strict=True))


def allocate(b: int, c: int, sizes: tuple) -> tuple:
    """Empty observation arrays (an :class:`Observation` as a plain tuple) for ``b`` slots."""
    e, h, g, w = sizes
    return (
        np.empty((b, c, e), dtype=np.float32),
        np.empty((b, c), dtype=np.int64),
        np.empty((b, c), dtype=np.float32),
        np.empty((b, c), dtype=np.int8),
        np.empty((b, h, e), dtype=np.float32),
        np.empty((b, h), dtype=np.float32),
        np.empty((b, g), dtype=np.float32),
        np.empty((b, 5), dtype=np.float32),
        np.empty((b, w), dtype=np.float32),
    )


@jit
def _observe(candidates, tables, state, observation):
    observe_rows(candidates, tables, state, Observation(*observation), 0, candidates.shape[0])


@inline
def observe_rows(candidates, tables, state, out, start, stop):
    """Fill rows ``start`` to ``stop`` of ``out`` from the slots' ``candidates`` (B, C) and state. Item and
    topic indices are made unsigned (no negative-index wrap-around to compute) and rows copied through
    views."""
    embedding, topic, popularity01, context_scale, novelty_share, num_types = tables
    hist_items, hist_watch, hist_ptr, turn, days_since, day, session, share, pending_type, pending_topic = (
        state
    )
    h, e = hist_items.shape[1], embedding.shape[1]
    for r in range(start, stop):
        for k in range(candidates.shape[1]):
            i = np.uint64(candidates[r, k])
            g = np.uint64(topic[i])
            _copy(embedding[i], out.candidate_embedding[r, k], e)
            out.candidate_topic[r, k] = g
            out.candidate_popularity[r, k] = popularity01[i]
            out.candidate_novelty[r, k] = share[r, g] < novelty_share
        newest = hist_ptr[r] - 1 + h  # the ring buffer read backwards from its newest entry
        for j in range(h):
            position = np.uint64((newest - j) % h)
            _copy(embedding[np.uint64(hist_items[r, position])], out.history_embedding[r, j], e)
            out.history_feedback[r, j] = hist_watch[r, position]
        for g in range(share.shape[1]):
            out.topic_histogram[r, g] = share[r, g]
        out.context[r, 0] = _scaled(turn[r], context_scale[0])
        out.context[r, 1] = _scaled(days_since[r], context_scale[1])
        out.context[r, 2] = _scaled(day[r], context_scale[2])
        out.context[r, 3] = _scaled(session[r], context_scale[3])
        out.context[r, 4] = _scaled(turn[r] == 0, context_scale[4])
        for w in range(out.instruction.shape[1]):
            out.instruction[r, w] = 0.0
        out.instruction[r, pending_type[r]] = 1.0
        if pending_topic[r] >= 0:
            out.instruction[r, num_types + pending_topic[r]] = 1.0


@inline
def _copy(source, target, size):
    """``target[:size] = source[:size]`` by elements (a slice assignment would need numba's runtime)."""
    for d in range(size):
        target[d] = source[d]


@jit
def _scaled(value, scale):
    """A context entry: ``value * scale`` in float32, capped at 1."""
    return min(np.float32(value) * scale, np.float32(1.0))
