"""The whole request of :meth:`recoworld.envs.core.Simulator.step` compiled, for synthetic users: serve
the slates, respond, bookkeeping (history, turns, session ends and returns, episode ends, bandit users,
autoresets), then the next request's candidates and observations: one call for a few slots, two with
numpy's (vectorised) sort of the candidate rows between them for many. The specification is the numpy
core.

Every row is computed from its own state alone, so contiguous row chunks can run on several threads (the
kernels release the GIL) with results identical to one thread's.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from typing import NamedTuple

import numpy as np

from recoworld import rng
from recoworld.kernels import respond
from recoworld.kernels.jit import inline, jit
from recoworld.kernels.observe import Observation, observe_rows
from recoworld.kernels.observe import allocate as allocate_observation
from recoworld.kernels.random import splitmix64
from recoworld.kernels.respond import Constants, Outputs, UserArrays, respond_row
from recoworld.kernels.retrieve import draw_row, make_distinct_row, sort_row
from recoworld.kernels.serving import record_history_row
from recoworld.kernels.session import end_session_row, start_session_row
from recoworld.rng import BETA_UNIFORMS
from recoworld.users.base import INSTRUCTION_NONE

LIFETIME, SESSION, BANDIT = 0, 1, 2  # positions in recoworld.envs.core.MODES


class Serving(NamedTuple):
    """The simulator's per-slot serving state (updated in place) and its constants."""

    seed_base: np.ndarray
    episode: np.ndarray
    day: np.ndarray
    session: np.ndarray
    turn: np.ndarray
    days_since: np.ndarray
    requests: np.ndarray
    hist_items: np.ndarray
    hist_watch: np.ndarray
    hist_ptr: np.ndarray
    keys: np.ndarray
    counter: np.ndarray
    duration: np.ndarray  # per item
    world_rho: np.ndarray  # per population member
    novelty_traits: np.ndarray  # per population member
    mode: int
    max_turns: int
    max_gap_days: int
    horizon_days: int
    num_requests: int
    user_salt: np.uint64


class StepOutputs(NamedTuple):
    """Per-slot results of a step besides the user's feedback."""

    items: np.ndarray
    day: np.ndarray
    session: np.ndarray
    turn: np.ndarray
    ended: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray
    churned: np.ndarray
    return_gap: np.ndarray
    user_index: np.ndarray
    reward_vector: np.ndarray


ONE_CALL_ROWS = 16  # below this many slots one kernel call also sorts and presents (saves a dispatch)
MIN_THREAD_ROWS = 256  # fewer rows per thread cost more in hand-offs than they save (measured)


def step(
    slates, served, restart, serving: tuple, constants: tuple, arrays: tuple, retrieval: tuple, observing,
    threads: int = 1,
):  # fmt: skip
    """Serve ``slates`` (B, K) of the candidates ``served`` to every slot; ``restart``: (B,) bool, slots whose
    next episode starts after this step; ``observing``: (tables, state, sizes) of kernels.observe;
    ``threads``: at most this many threads share the rows (at least MIN_THREAD_ROWS each).

    Returns (StepOutputs, respond.Outputs, the next request's candidates, its observations as a dict).
    """
    b, k = slates.shape
    feedback = respond.allocate(b, k)
    day, session, turn, return_gap, user_index = np.empty((5, b), dtype=np.int64)
    ended, terminated, truncated, churned = np.empty((4, b), dtype=np.bool_)
    out = StepOutputs(
        np.empty((b, k), dtype=np.int64), day, session, turn, ended, terminated, truncated, churned,
        return_gap, user_index, np.empty((b, 4)),
    )  # fmt: skip
    candidates = np.empty_like(served)
    tables, state, sizes = observing
    obs = allocate_observation(b, served.shape[1], sizes)
    one_call = b < ONE_CALL_ROWS
    feedback_, out_ = tuple(feedback), tuple(out)

    def serve_rows(start: int, stop: int) -> None:  # serve; then the next candidates and observations
        scratch = (
            np.empty((2, arrays[1].shape[1])),  # topic mass of a slate's clicked and examined items
            np.empty(BETA_UNIFORMS),  # a session start's uniforms
            np.empty(served.shape[1] + retrieval[2][0]),  # a retrieval's uniforms
            np.empty(served.shape[1], dtype=np.int64),  # a retrieval's redrawn candidates
        )
        _serve(slates, served, restart, serving, constants, arrays, retrieval, feedback_, out_, candidates,
               one_call, tables, state, obs, scratch, start, stop)  # fmt: skip
        if not one_call:
            candidates[start:stop].sort(axis=1)  # numpy's vectorised sort beats a compiled one on many rows
            _present(candidates, serving, retrieval[2], tables, state, obs, scratch[3], start, stop)

    in_parallel(serve_rows, row_chunks(b, threads))
    return out, feedback, candidates, dict(zip(Observation._fields, obs, strict=True))


def row_chunks(rows: int, threads: int) -> list[tuple[int, int]]:
    """Contiguous (start, stop) row ranges, one per thread, each of at least MIN_THREAD_ROWS rows."""
    n = max(1, min(threads, rows // MIN_THREAD_ROWS))
    bounds = [rows * i // n for i in range(n + 1)]
    return list(zip(bounds[:-1], bounds[1:], strict=True))


def in_parallel(task, chunks: list[tuple[int, int]]) -> None:
    """``task(start, stop)`` for every chunk: the first on this thread, the others on a shared pool."""
    if len(chunks) == 1:
        task(*chunks[0])
        return
    futures = [_pool(len(chunks) - 1).submit(task, *chunk) for chunk in chunks[1:]]
    task(*chunks[0])
    for future in futures:
        future.result()


@cache
def _pool(workers: int) -> ThreadPoolExecutor:
    return ThreadPoolExecutor(workers, thread_name_prefix="recoworld-step")


os.register_at_fork(after_in_child=_pool.cache_clear)  # a forked child has none of the parent's threads


@jit
def _serve(
    slates, served, restart, serving, constants, arrays, retrieval, feedback, outputs, candidates, present,
    tables, state, obs, scratch, start, stop,
):  # fmt: skip
    """Rows ``start`` to ``stop`` (exclusive) of :func:`step`; ``present``: also sort and present them."""
    sv, c, s = Serving(*serving), Constants(*constants), UserArrays(*arrays)
    fb, out = Outputs(*feedback), StepOutputs(*outputs)
    mass, u_beta, u_draw, fresh = scratch
    for r in range(start, stop):  # phase by phase over all slots: each phase's tables stay in cache
        items = out.items[r]
        for k in range(slates.shape[1]):
            items[k] = served[r, slates[r, k]]
        out.day[r], out.session[r], out.turn[r] = sv.day[r], sv.session[r], sv.turn[r]
        respond_row(r, items, sv.keys[r], sv.counter[r], c, s, fb, r, mass)
    for r in range(start, stop):
        record_history_row(
            r,
            out.items[r],
            fb.clicked[r],
            fb.watch[r],
            sv.duration,
            sv.hist_items,
            sv.hist_watch,
            sv.hist_ptr,
        )
        _account(r, sv, c, s, fb, out, u_beta)
        sv.counter[r] += np.uint64(1)
        if sv.mode == BANDIT:
            out.ended[r] = False
            out.truncated[r] = sv.requests[r] >= sv.num_requests
            _new_user(r, sv, c, s, u_beta)
        if restart[r]:
            sv.episode[r] += 1
            _meet_user(r, sv, c, s, u_beta)
    for r in range(start, stop):
        draw_row(sv.hist_items[r], sv.keys[r], sv.counter[r], retrieval, candidates[r], u_draw)
    if present:
        for r in range(start, stop):
            sort_row(candidates[r])
        _present_rows(candidates, serving, retrieval[2], tables, state, obs, fresh, start, stop)


@inline
def _account(r, sv, c, s, fb, out, u_beta):
    """Turns, the session's end and return, the episode's end and the reward vector of slot ``r``."""
    sv.turn[r] += 1
    sv.requests[r] += 1
    clicks, watched = 0, 0.0
    for k in range(fb.clicked.shape[1]):
        clicks += fb.clicked[r, k]
        watched += fb.watch[r, k]
    left = fb.left[r]
    ended = left or sv.turn[r] >= sv.max_turns
    gap, terminated, truncated, churned = -1, False, False, False
    if ended:
        g = end_session_row(r, sv.keys[r], sv.counter[r], c, s)
        churned = g > sv.max_gap_days
        gap = -1 if churned else g
        if sv.mode == LIFETIME:
            terminated = churned
            truncated = not churned and sv.day[r] + g > sv.horizon_days
            if not (terminated or truncated):
                sv.day[r] += gap
                sv.days_since[r] = gap
                sv.session[r] += 1
                sv.turn[r] = 0
                start_session_row(r, np.float64(gap), sv.keys[r], sv.counter[r], c, s, u_beta)
        elif sv.mode == SESSION:
            terminated, truncated = left, not left
    out.ended[r], out.terminated[r], out.truncated[r], out.churned[r], out.return_gap[r] = (
        ended,
        terminated,
        truncated,
        churned,
        gap,
    )
    out.user_index[r] = s.population_index[r]
    vector = out.reward_vector[r]
    vector[0], vector[1], vector[2], vector[3] = clicks, watched, 1.0, 1.0 if ended and not churned else 0.0


@inline
def _new_user(r, sv, c, s, u_beta):
    """Slot ``r`` meets the population member its key and counter name (core.Simulator._new_users)."""
    index = splitmix64(sv.keys[r] ^ sv.user_salt ^ (sv.counter[r] * rng._GOLDEN))
    member = np.int64(index % np.uint64(sv.novelty_traits.shape[0]))
    s.population_index[r] = member
    for g in range(s.rho.shape[1]):
        s.rho[r, g] = sv.world_rho[member, g]
    s.boredom[r] = 0.0
    s.topic_share[r] = 0.0
    s.fatigue[r] = 0.0
    s.satisfaction[r] = c.expectation
    s.pending_type[r], s.pending_topic[r], s.pending_turns[r] = INSTRUCTION_NONE, -1, 0
    s.novelty_trait[r] = sv.novelty_traits[member]
    start_session_row(r, 0.0, sv.keys[r], sv.counter[r], c, s, u_beta)


@inline
def _meet_user(r, sv, c, s, u_beta):
    """Slot ``r`` starts its current episode's user with an empty history (core.Simulator._meet_users)."""
    seed = np.uint64(sv.seed_base[r])
    sv.keys[r] = splitmix64(splitmix64(seed) ^ (np.uint64(sv.episode[r]) * rng._GOLDEN + rng._EPISODE_OFFSET))
    sv.counter[r] = 0
    _new_user(r, sv, c, s, u_beta)
    sv.day[r] = sv.session[r] = sv.turn[r] = sv.days_since[r] = sv.requests[r] = sv.hist_ptr[r] = 0
    sv.hist_items[r] = sv.duration.shape[0]
    sv.hist_watch[r] = 0.0


@jit
def _present(candidates, serving, sizes, tables, state, arrays, fresh, start, stop):
    _present_rows(candidates, serving, sizes, tables, state, arrays, fresh, start, stop)


@inline
def _present_rows(candidates, serving, sizes, tables, state, arrays, fresh, start, stop):
    """Make the sorted ``candidates`` of rows ``start`` to ``stop`` distinct and fill their observations."""
    sv, obs = Serving(*serving), Observation(*arrays)
    m, refill = sizes[7], sizes[9]
    for r in range(start, stop):
        make_distinct_row(sv.keys[r], sv.counter[r], refill, m, candidates[r], fresh)
    observe_rows(candidates, tables, state, obs, start, stop)
