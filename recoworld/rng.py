"""Counter-based per-user random streams.

Every random number in the simulator is a pure function of (user key, request counter, purpose, index): a
splitmix64 hash of those integers. A user's trajectory therefore does not depend on which other users share
its batch, or on how many there are (batch invariance), and two policies evaluated on the same seeds meet the
same users under the same luck (common random numbers).
"""

from __future__ import annotations

import functools

import numpy as np

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MUL1 = np.uint64(0xBF58476D1CE4E5B9)
_MUL2 = np.uint64(0x94D049BB133111EB)
_S30, _S27, _S31 = np.uint64(30), np.uint64(27), np.uint64(31)
_S11, _S16 = np.uint64(11), np.uint64(16)
_INV53 = 1.0 / 9007199254740992.0  # 2 ** -53
_EPISODE_OFFSET = np.uint64(0x632BE59BD9B4E019)
_GAMMA_TRIES = 8


def splitmix64(x: np.ndarray) -> np.ndarray:
    """The splitmix64 finaliser applied element-wise to a uint64 array (wrapping arithmetic); a new array."""
    return _mix_inplace(np.add(x, _GOLDEN, dtype=np.uint64))


def _mix_inplace(z: np.ndarray) -> np.ndarray:
    """splitmix64 of ``z - golden``, computed in place in ``z`` (one temporary instead of nine)."""
    shifted = np.right_shift(z, _S30)
    z ^= shifted
    z *= _MUL1
    np.right_shift(z, _S27, out=shifted)
    z ^= shifted
    z *= _MUL2
    np.right_shift(z, _S31, out=shifted)
    z ^= shifted
    return z


def user_key(seed: int | np.ndarray, episode: int | np.ndarray) -> np.ndarray:
    """The stream key of the user met in ``episode`` of the slot reset with ``seed``."""
    s = np.asarray(seed, dtype=np.int64).astype(np.uint64)
    e = np.asarray(episode, dtype=np.int64).astype(np.uint64)
    return splitmix64(splitmix64(s) ^ (e * _GOLDEN + _EPISODE_OFFSET))


def to_unit(bits: np.ndarray) -> np.ndarray:
    """uint64 bits to floats in the open interval (0, 1)."""
    u = (bits >> _S11).astype(np.float64)
    u += 0.5
    u *= _INV53
    return u


@functools.cache
def _increments(n: int) -> np.ndarray:
    """What word ``i`` of a stream adds to its base before mixing: ``(i + 1) * golden`` (read-only)."""
    a = np.arange(1, n + 1, dtype=np.uint64) * _GOLDEN
    a.setflags(write=False)
    return a


class Layout:
    """Which purposes a step draws and how many uniforms each, for :meth:`Streams.draw` to serve at once.

    ``Layout({P_CLICK: 20, P_LIKE: 10})``: the draw's uniforms of purpose p are exactly those of
    ``Streams.uniform(rows, p, n)``.
    """

    def __init__(self, counts: dict[int, int]):
        sizes = list(counts.values())
        self.purposes = np.array(list(counts), dtype=np.uint64)
        self.column_purpose = np.repeat(np.arange(len(sizes)), sizes)
        self.column_increment = np.concatenate([_increments(n) for n in sizes])
        ends = np.cumsum(sizes)
        self.slices = {p: slice(int(e - n), int(e)) for p, n, e in zip(counts, sizes, ends, strict=True)}


class Streams:
    """Per-slot random streams: a key per slot and a request counter that the simulator advances."""

    def __init__(self, batch_size: int):
        self.keys = np.zeros(batch_size, dtype=np.uint64)
        self.counter = np.zeros(batch_size, dtype=np.uint64)

    def assign(self, rows: np.ndarray, keys: np.ndarray) -> None:
        """Give ``rows`` new users' keys and rewind their counters."""
        self.keys[rows] = keys
        self.counter[rows] = 0

    def advance(self, rows: np.ndarray) -> None:
        self.counter[rows] += np.uint64(1)

    def _bases(self, rows, purposes) -> np.ndarray:
        """Per-row (and per-purpose, if ``purposes`` is an array) stream bases at the current counters."""
        if isinstance(purposes, np.ndarray):
            return splitmix64(
                self.keys[rows][:, None] ^ splitmix64((self.counter[rows] << _S16)[:, None] | purposes)
            )
        return splitmix64(self.keys[rows] ^ splitmix64((self.counter[rows] << _S16) | np.uint64(purposes)))

    def bits(self, rows: np.ndarray, purpose: int, n: int) -> np.ndarray:
        """(R, n) uint64 random words for ``purpose`` at the rows' current counters."""
        return _mix_inplace(np.add(self._bases(rows, purpose)[:, None], _increments(n)))

    def uniform(self, rows: np.ndarray, purpose: int, n: int) -> np.ndarray:
        """(R, n) uniforms in (0, 1) for ``purpose`` at the rows' current counters."""
        return to_unit(self.bits(rows, purpose, n))

    def uniform_at(self, rows: np.ndarray, purpose: int, row: np.ndarray, index: np.ndarray) -> np.ndarray:
        """Uniform number ``index[j]`` of ``purpose`` for slot ``rows[row[j]]``: the cells (row, index) of
        ``uniform(rows, purpose, n)``, without drawing the others."""
        words = self._bases(rows, purpose)[row]
        words += (index.astype(np.uint64) + np.uint64(1)) * _GOLDEN
        return to_unit(_mix_inplace(words))

    def draw(self, rows: np.ndarray, layout: Layout) -> dict[int, np.ndarray]:
        """The uniforms of every purpose of ``layout`` at once: ``{purpose: (R, n) uniforms}``."""
        words = self._bases(rows, layout.purposes)[:, layout.column_purpose]
        words += layout.column_increment
        u = to_unit(_mix_inplace(words))
        return {p: u[:, s] for p, s in layout.slices.items()}


def normal_from_uniforms(u1: np.ndarray, u2: np.ndarray) -> np.ndarray:
    """Standard normals by Box–Muller."""
    return np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * u2)


def log_gamma_from_uniforms(shape: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Logarithms of Gamma(shape, 1) variates by Marsaglia–Tsang with a fixed budget of proposals.

    ``u`` has shape (R, 3 * tries + 1): three uniforms per proposal plus one for the shape < 1 boost. The
    first accepted proposal is used; the chance that all ``tries`` proposals are rejected is below 1e-9 for
    tries = 8, in which case the proposal law's mode is used. Computed in log space so that tiny shapes do not
    underflow.
    """
    shape = np.asarray(shape, dtype=np.float64)
    boosted = shape < 1.0
    d = np.where(boosted, shape + 1.0, shape) - 1.0 / 3.0
    c = 1.0 / np.sqrt(9.0 * d)
    tries = (u.shape[1] - 1) // 3
    x = normal_from_uniforms(u[:, 0:tries], u[:, tries : 2 * tries])
    v = (1.0 + c[:, None] * x) ** 3
    with np.errstate(invalid="ignore", divide="ignore"):
        log_v = np.log(v)
        accept = (v > 0) & (
            np.log(u[:, 2 * tries : 3 * tries]) < 0.5 * x * x + d[:, None] * (1.0 - v + log_v)
        )
    first = np.argmax(accept, axis=1)
    chosen = np.take_along_axis(v, first[:, None], axis=1)[:, 0]
    chosen = np.where(accept.any(axis=1), chosen, 1.0)
    log_g = np.log(d * chosen)
    return np.where(boosted, log_g + np.log(u[:, -1]) / shape, log_g)


def beta_from_uniforms(a: np.ndarray, b: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Beta(a, b) variates from (R, 2 * (3 * tries + 1)) uniforms, as a ratio of gammas."""
    half, r = u.shape[1] // 2, u.shape[0]
    both = log_gamma_from_uniforms(np.concatenate([a, b]), np.concatenate([u[:, :half], u[:, half:]]))
    log_x, log_y = both[:r], both[r:]
    with np.errstate(over="ignore"):  # exp overflow to inf gives the correct limit 0
        return 1.0 / (1.0 + np.exp(log_y - log_x))


GAMMA_UNIFORMS = 3 * _GAMMA_TRIES + 1
BETA_UNIFORMS = 2 * GAMMA_UNIFORMS
