"""Compiled synthetic-user response: utility, cascade or MNL choice, like, watch, mindset update, instruction
judging and speaking, per user in one pass. The readable specification is
:class:`recoworld.users.synthetic.SyntheticUserModel` (numpy): same formulas, same random draws."""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from recoworld.kernels.jit import inline, jit, reassociating
from recoworld.kernels.random import normal, sigmoid, stream_base, unit
from recoworld.users.base import INSTRUCTION_AVOID, INSTRUCTION_NEW, INSTRUCTION_NONE, INSTRUCTION_RELATED
from recoworld.users.synthetic import P_CLICK, P_INSTRUCT, P_LIKE, P_MNL, P_WATCH


class Constants(NamedTuple):
    """The scalars of a world's user model the kernel needs (from UserConfig and the world)."""

    mnl: bool
    delta: float
    log_floor: float
    log_cap: float
    affinity_weight: float
    novelty_share: float
    novelty_weight: float
    boredom_weight: float
    click_threshold: float
    like_threshold: float
    watch_threshold: float
    leave_hazard: float
    noclick: float
    drift: float
    boredom_decay_request: float
    boredom_gain_click: float
    boredom_gain_view: float
    fatigue_per_item: float
    satisfaction_rate: float
    expectation: float
    disappointment_cost: float
    fatigue_cost: float
    instruction_share: float
    instruction_bonus: float
    instruction_penalty: float
    instruction_satisfaction: float
    instruction_boredom: float
    instruction_patience: float
    instruction_turns: int
    novelty_kappa: float
    boredom_decay_day: float
    fatigue_decay_day: float
    return_bias: float
    return_satisfaction: float
    return_fatigue: float


class UserArrays(NamedTuple):
    """Per-slot state (updated in place) and per-item / per-member world tables."""

    population_index: np.ndarray
    rho: np.ndarray
    boredom: np.ndarray
    topic_share: np.ndarray
    novelty: np.ndarray
    fatigue: np.ndarray
    patience: np.ndarray
    satisfaction: np.ndarray
    pending_type: np.ndarray
    pending_topic: np.ndarray
    pending_turns: np.ndarray
    alpha: np.ndarray
    topic: np.ndarray
    duration: np.ndarray
    item_term: np.ndarray
    pop_term: np.ndarray
    position_term: np.ndarray
    log_user_scale: np.ndarray
    patience_cap: np.ndarray
    propensity: np.ndarray
    is_related: np.ndarray
    novelty_trait: np.ndarray
    return_bias: np.ndarray


class Outputs(NamedTuple):
    """What :func:`respond` writes for each row: the fields of a ``Feedback``."""

    clicked: np.ndarray
    liked: np.ndarray
    examined: np.ndarray
    watch: np.ndarray
    left: np.ndarray
    instruction_type: np.ndarray
    instruction_topic: np.ndarray
    followed: np.ndarray
    utility: np.ndarray


def respond(rows, slate_items, keys, counter, constants: tuple, arrays: tuple) -> Outputs:
    """Users ``rows`` review ``slate_items`` (R, K) and respond (their state in ``arrays`` is updated).

    ``constants`` and ``arrays``: :class:`Constants` and :class:`UserArrays` as plain tuples, which numba
    dispatches several times faster than named ones.
    """
    out = allocate(*slate_items.shape)
    mass = np.empty((2, arrays[1].shape[1]))  # scratch: topic mass of the clicked and examined items
    _respond(rows, slate_items, keys, counter, constants, arrays, tuple(out), mass)
    return out


def allocate(r: int, k: int) -> Outputs:
    """Empty outputs for ``r`` rows of ``k`` items."""
    return Outputs(
        clicked=np.empty((r, k), dtype=np.bool_),
        liked=np.empty((r, k), dtype=np.bool_),
        examined=np.empty((r, k), dtype=np.bool_),
        watch=np.empty((r, k)),
        left=np.empty(r, dtype=np.bool_),
        instruction_type=np.empty(r, dtype=np.int8),
        instruction_topic=np.empty(r, dtype=np.int64),
        followed=np.empty(r, dtype=np.int8),
        utility=np.empty((r, k)),
    )


@jit
def _respond(rows, slate_items, keys, counter, constants, arrays, outputs, mass):
    c, s, out = Constants(*constants), UserArrays(*arrays), Outputs(*outputs)
    for j in range(rows.shape[0]):
        respond_row(rows[j], slate_items[j], keys[rows[j]], counter[rows[j]], c, s, out, j, mass)


@inline
def respond_row(r, items, key, counter, c, s, out, j, mass):
    """Slot ``r`` reviews ``items``; results in row ``j`` of ``out``. ``mass``: (2, topics) scratch."""
    _utility(r, items, c, s, out.utility[j])
    clicked_count, examined_count, leave_now = _choose(r, key, counter, c, s, out, j)
    value = _watch(r, items, key, counter, c, s, out, j)
    _slate_mass(items, out.clicked[j], out.examined[j], s.alpha, mass)
    _update(r, items, clicked_count, examined_count, value, leave_now, key, counter, mass, c, s, out, j)


@inline
def _utility(r, items, c, s, utility):
    """Utility of the slate's items to slot ``r``, position term included (SyntheticUserModel._utility)."""
    lean = 2.0 * s.novelty[r] - 1.0
    user_scale = s.log_user_scale[s.population_index[r]]
    rho = s.rho[r]
    for k in range(items.shape[0]):
        i = items[k]
        affinity = dot(rho, s.alpha[np.uint64(i)])
        log_t = math.log(max(affinity * c.delta + (1.0 - c.delta) * 0.98, 1e-300))
        log_t = min(max(log_t + user_scale + s.item_term[i], c.log_floor), c.log_cap)
        g = s.topic[i]
        novelty = (lean if s.topic_share[r, g] < c.novelty_share else -lean) * c.novelty_weight
        u = log_t * c.affinity_weight + s.pop_term[i] + novelty - s.boredom[r, g] * c.boredom_weight
        utility[k] = u + s.position_term[k]


@reassociating
def dot(a, b):
    """The dot product of two vectors, summed in whatever order vectorises (5x faster than in sequence)."""
    total = 0.0
    for g in range(a.shape[0]):
        total += a[g] * b[g]
    return total


@inline
def _choose(r, key, counter, c, s, out, j):
    """Clicks, examined items and liking; returns (clicks, examined count, left on the spot)."""
    utility, clicked, examined, liked = out.utility[j], out.clicked[j], out.examined[j], out.liked[j]
    k_size = utility.shape[0]
    leave_now = False
    if c.mnl:
        base = stream_base(key, counter, P_MNL)
        noclick = c.noclick - math.log(-math.log(unit(base, k_size)))
        best, choice = noclick, k_size
        for k in range(k_size):
            score = utility[k] - math.log(-math.log(unit(base, k)))
            if score > best or (score == best and k < choice):
                best, choice = score, k
        for k in range(k_size):
            clicked[k] = k == choice
            examined[k] = True
    else:  # the cascade: each item examined in turn may be clicked; an unclicked one may end the review
        base = stream_base(key, counter, P_CLICK)
        hazard = c.leave_hazard * (1.0 + s.fatigue[r])
        for k in range(k_size):
            examined[k], clicked[k] = not leave_now, False
            if not leave_now:
                clicked[k] = unit(base, k) < sigmoid(utility[k] - c.click_threshold)
                leave_now = not clicked[k] and unit(base, k_size + k) < hazard
    like_base = stream_base(key, counter, P_LIKE)
    clicks, seen = 0, 0
    for k in range(k_size):
        liked[k] = clicked[k] and unit(like_base, k) < sigmoid(utility[k] - c.like_threshold)
        clicks += clicked[k]
        seen += examined[k]
    return clicks, seen, leave_now


@inline
def _watch(r, items, key, counter, c, s, out, j):
    """Minutes watched of each clicked item; returns the request's value to the user."""
    utility, clicked, liked, watch = out.utility[j], out.clicked[j], out.liked[j], out.watch[j]
    k_size = utility.shape[0]
    base = stream_base(key, counter, P_WATCH)
    value, likes = 0.0, 0
    for k in range(k_size):
        watch[k] = 0.0
        if clicked[k]:
            noise = normal(unit(base, k), unit(base, k_size + k))
            fraction = sigmoid(utility[k] - c.watch_threshold + 0.5 * noise)
            watch[k] = fraction * s.duration[items[k]]
            value += fraction
        likes += liked[k]
    return value + 0.5 * likes


@inline
def _slate_mass(items, clicked, examined, alpha, mass):
    """Topic mass of the clicked (``mass[0]``) and of the examined (``mass[1]``) items."""
    mass[:] = 0.0
    for k in range(items.shape[0]):
        if examined[k]:
            for g in range(mass.shape[1]):
                mass[1, g] += alpha[items[k], g]
        if clicked[k]:  # clicked items are examined
            for g in range(mass.shape[1]):
                mass[0, g] += alpha[items[k], g]


@inline
def _update(r, items, clicks, seen, value, leave_now, key, counter, mass, c, s, out, j):
    """The mindset update of SyntheticUserModel._update for slot ``r`` (row ``j`` of the outputs)."""
    f = s.rho.shape[1]
    keep = 1.0 if clicks == 0 else c.drift if clicks == 1 else math.pow(c.drift, clicks)  # pow's exact values
    per_click = max(clicks, 1)
    for g in range(f):
        mean_clicked = mass[0, g] / per_click
        s.rho[r, g] = keep * s.rho[r, g] + (1.0 - keep) * mean_clicked
        s.boredom[r, g] = (
            c.boredom_decay_request * s.boredom[r, g]
            + c.boredom_gain_click * mass[0, g]
            + c.boredom_gain_view * mass[1, g]
        )
    s.fatigue[r] += c.fatigue_per_item * seen
    s.satisfaction[r] += c.satisfaction_rate * (value - s.satisfaction[r])
    gain = value - c.expectation
    patience = s.patience[r] + (c.disappointment_cost * gain if gain < 0 else 0.5 * gain)
    patience -= c.fatigue_cost * s.fatigue[r]
    patience = min(patience, s.patience_cap[s.population_index[r]])
    out.followed[j] = -1
    if s.pending_type[r] != INSTRUCTION_NONE:
        patience = _judge_pending(r, items, patience, c, s, out, j)
    if clicks > 0:  # after judging, which reads the history before this slate
        for g in range(f):
            s.topic_share[r, g] = 0.8 * s.topic_share[r, g] + 0.2 * (mass[0, g] / per_click)
    s.patience[r] = patience
    left = leave_now or patience <= 0.0
    kind, topic = _maybe_instruct(r, left and not leave_now, key, counter, c, s)
    out.instruction_type[j], out.instruction_topic[j] = kind, topic
    out.left[j] = left and kind == INSTRUCTION_NONE


@inline
def _judge_pending(r, items, patience, c, s, out, j):
    """Did the slate honour slot ``r``'s pending instruction? Returns the adjusted patience."""
    kind, target = s.pending_type[r], s.pending_topic[r]
    k_size = items.shape[0]
    same, related, new = 0, 0, 0
    for k in range(k_size):
        g = s.topic[items[k]]
        same += g == target
        related += s.is_related[max(target, 0), g]
        new += s.topic_share[r, g] < c.novelty_share
    ok = (
        (kind == INSTRUCTION_AVOID and same <= max(1, k_size // 10))
        or (kind == INSTRUCTION_RELATED and related / k_size >= c.instruction_share)
        or (kind == INSTRUCTION_NEW and new / k_size >= c.instruction_share)
    )
    out.followed[j] = ok
    patience += c.instruction_bonus if ok else -c.instruction_penalty
    s.satisfaction[r] += c.instruction_satisfaction if ok else -c.instruction_satisfaction
    turns = s.pending_turns[r] - 1
    if ok or turns <= 0:
        s.pending_turns[r], s.pending_topic[r], s.pending_type[r] = 0, -1, INSTRUCTION_NONE
    else:
        s.pending_turns[r] = turns
    return patience


@inline
def _maybe_instruct(r, about_to_leave, key, counter, c, s):
    """Slot ``r`` may speak a reflective instruction (SyntheticUserModel._maybe_instruct): (type, topic)."""
    if s.pending_type[r] != INSTRUCTION_NONE:
        return INSTRUCTION_NONE, -1
    most_bored, most_liked = np.argmax(s.boredom[r]), np.argmax(s.rho[r])
    bored = s.boredom[r, most_bored] > c.instruction_boredom
    low = s.patience[r] < c.instruction_patience or about_to_leave
    if not (bored or low):
        return INSTRUCTION_NONE, -1
    base = stream_base(key, counter, P_INSTRUCT)
    if not unit(base, 0) < s.propensity[s.population_index[r]]:
        return INSTRUCTION_NONE, -1
    if bored:
        kind = INSTRUCTION_AVOID if unit(base, 1) < 0.5 else INSTRUCTION_RELATED
        topic = most_bored
    else:
        kind = INSTRUCTION_NEW if s.novelty[r] > 0.5 else INSTRUCTION_RELATED
        topic = most_liked
    if kind == INSTRUCTION_NEW:
        topic = -1
    s.pending_type[r], s.pending_topic[r], s.pending_turns[r] = kind, topic, c.instruction_turns
    s.patience[r] = max(s.patience[r], 0.5)
    return kind, topic
