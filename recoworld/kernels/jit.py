"""How kernels are compiled: cached on disk (compiled once per machine) and without the GIL.

Kernels loop over users serially: numba's parallel loops (``prange``) were measured several times slower on
a shared 2-core machine (threads wait on a busy core) and would oversubscribe Ray or SB3 worker processes;
batch invariance makes thread-level parallelism safe to add should a dedicated machine want it.
"""

from __future__ import annotations

import numba

jit = numba.njit(cache=True, nogil=True)
inline = numba.njit(cache=True, nogil=True, inline="always")  # helpers taking tuples of arrays
