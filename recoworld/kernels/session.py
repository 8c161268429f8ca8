"""Compiled session boundaries of the synthetic user: the start of a session (decay of boredom and fatigue
over the days away, patience, the session's novelty appetite ~ Beta) and the return gap at its end.
The specification is :class:`recoworld.users.synthetic.SyntheticUserModel` (numpy)."""

from __future__ import annotations

import math

import numpy as np

from recoworld.kernels.jit import inline, jit
from recoworld.kernels.random import fill_uniform, normal, sigmoid, stream_base, unit
from recoworld.kernels.respond import Constants, UserArrays
from recoworld.rng import BETA_UNIFORMS, GAMMA_UNIFORMS
from recoworld.users.synthetic import P_NOVELTY, P_RETURN


def start_session(rows, gap_days, keys, counter, constants: tuple, arrays: tuple) -> None:
    """Sessions start for ``rows`` after ``gap_days`` away (``constants``, ``arrays``: as kernels.respond)."""
    u = np.empty(BETA_UNIFORMS)  # scratch
    _start_session(rows, np.asarray(gap_days, dtype=np.float64), keys, counter, constants, arrays, u)


def end_session(rows, keys, counter, constants: tuple, arrays: tuple) -> np.ndarray:
    """Days until each of ``rows`` comes back (geometric; SyntheticUserModel.end_session)."""
    gap = np.empty(len(rows), dtype=np.int64)
    _end_session(rows, keys, counter, constants, arrays, gap)
    return gap


@jit
def _start_session(rows, gap_days, keys, counter, constants, arrays, u):
    c, s = Constants(*constants), UserArrays(*arrays)
    for j in range(rows.shape[0]):
        start_session_row(rows[j], gap_days[j], keys[rows[j]], counter[rows[j]], c, s, u)


@jit
def _end_session(rows, keys, counter, constants, arrays, gap):
    c, s = Constants(*constants), UserArrays(*arrays)
    for j in range(rows.shape[0]):
        gap[j] = end_session_row(rows[j], keys[rows[j]], counter[rows[j]], c, s)


@inline
def start_session_row(r, gap_days, key, counter, c, s, u):
    """Slot ``r``'s session starts after ``gap_days`` away; ``u``: BETA_UNIFORMS scratch."""
    boredom_keep = math.pow(c.boredom_decay_day, gap_days)
    for g in range(s.boredom.shape[1]):
        s.boredom[r, g] *= boredom_keep
    s.fatigue[r] *= math.pow(c.fatigue_decay_day, gap_days)
    s.patience[r] = s.patience_cap[s.population_index[r]]
    theta = s.novelty_trait[r]
    fill_uniform(u, stream_base(key, counter, P_NOVELTY))
    nu = beta(c.novelty_kappa * theta, c.novelty_kappa * (1.0 - theta), u)
    s.novelty[r] = min(max(nu, 1e-6), 1.0 - 1e-6)


@inline
def end_session_row(r, key, counter, c, s):
    """Days until slot ``r`` comes back."""
    logit = (
        c.return_bias
        + s.return_bias[s.population_index[r]]
        + c.return_satisfaction * (s.satisfaction[r] - c.expectation)
        - c.return_fatigue * s.fatigue[r]
    )
    daily = min(max(sigmoid(logit), 1e-6), 1.0 - 1e-6)
    u = unit(stream_base(key, counter, P_RETURN), 0)
    return 1 + np.int64(math.floor(math.log(u) / math.log1p(-daily)))


@jit
def beta(a, b, u):
    """A Beta(a, b) variate from ``BETA_UNIFORMS`` uniforms (rng.beta_from_uniforms for one row)."""
    log_x = log_gamma(a, u[:GAMMA_UNIFORMS])
    log_y = log_gamma(b, u[GAMMA_UNIFORMS:])
    return 1.0 / (1.0 + math.exp(log_y - log_x))


@jit
def log_gamma(shape, u):
    """log Gamma(shape, 1): Marsaglia-Tsang with a fixed budget of proposals (rng.log_gamma_from_uniforms)."""
    boosted = shape < 1.0
    d = (shape + 1.0 if boosted else shape) - 1.0 / 3.0
    c = 1.0 / math.sqrt(9.0 * d)
    tries = (u.shape[0] - 1) // 3
    chosen = 1.0  # the proposal law's mode, should every proposal be rejected
    for t in range(tries):
        x = normal(u[t], u[tries + t])
        v = math.pow(1.0 + c * x, 3.0)
        if v > 0 and math.log(u[2 * tries + t]) < 0.5 * x * x + d * (1.0 - v + math.log(v)):
            chosen = v
            break
    log_g = math.log(d * chosen)
    return log_g + math.log(u[u.shape[0] - 1]) / shape if boosted else log_g
