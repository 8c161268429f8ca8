"""How kernels are compiled: cached on disk (compiled once per machine), without the GIL and without numba's
reference-counted runtime (NRT).

Without NRT a kernel cannot allocate: callers pass every array, scratch included. With it, every array a
kernel binds (each member of a tuple of arrays handed to an inlined helper, each row view) costs an atomic
increment and decrement: about 150 pairs per user-step in the fused step, a quarter of its time (measured).

Kernels loop over users serially: numba's parallel loops (``prange``) were measured several times slower on
a shared 2-core machine (threads wait on a busy core) and would oversubscribe Ray or SB3 worker processes;
batch invariance makes thread-level parallelism safe to add should a dedicated machine want it.
"""

from __future__ import annotations

import numba

jit = numba.njit(cache=True, nogil=True, _nrt=False)
inline = numba.njit(cache=True, nogil=True, _nrt=False, inline="always")  # helpers taking tuples of arrays
# Reductions LLVM may reorder into vector sums (rounding then depends on the vector width, not on the batch)
reassociating = numba.njit(cache=True, nogil=True, _nrt=False, fastmath={"reassoc", "contract", "nsz"})
