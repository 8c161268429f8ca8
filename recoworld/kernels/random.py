"""Compiled counterparts of :mod:`recoworld.rng`'s counter-based streams (bit-exact: same keys, counters,
purposes and word indices; uint64 arithmetic wraps as in numpy)."""

from __future__ import annotations

import math

import numpy as np

from recoworld import rng
from recoworld.kernels.jit import jit

_GOLDEN = rng._GOLDEN
_MUL1, _MUL2 = rng._MUL1, rng._MUL2
_S11, _S16, _S27, _S30, _S31 = (np.uint64(s) for s in (11, 16, 27, 30, 31))
_INV53 = rng._INV53
_TWO_PI = 2.0 * np.pi


@jit
def finalise(z):
    """splitmix64 of ``z - golden``: rng._mix_inplace for one word."""
    z = z ^ (z >> _S30)
    z = z * _MUL1
    z = z ^ (z >> _S27)
    z = z * _MUL2
    return z ^ (z >> _S31)


@jit
def splitmix64(x):
    return finalise(x + _GOLDEN)


@jit
def stream_base(key, counter, purpose):
    """The base of a slot's stream for ``purpose`` at ``counter`` (rng.Streams._bases for one slot)."""
    return splitmix64(np.uint64(key) ^ splitmix64((np.uint64(counter) << _S16) | np.uint64(purpose)))


@jit
def unit(base, index):
    """Uniform number ``index`` (0-based) of the stream with ``base``, in (0, 1)."""
    bits = finalise(np.uint64(base) + np.uint64(index + 1) * _GOLDEN)
    return (np.float64(np.int64(bits >> _S11)) + 0.5) * _INV53  # below 2**53: exact as a signed integer


@jit
def fill_uniform(out, base):
    """``out[i] = unit(base, i)`` for every i: ``Streams.uniform`` for one slot (a vectorised loop)."""
    for i in range(out.shape[0]):
        out[i] = unit(base, i)


@jit
def normal(u1, u2):
    """Box-Muller, as rng.normal_from_uniforms."""
    return math.sqrt(-2.0 * math.log(u1)) * math.cos(_TWO_PI * u2)


@jit
def sigmoid(x):
    return 1.0 / (math.exp(-x) + 1.0)
