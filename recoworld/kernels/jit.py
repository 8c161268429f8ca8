"""How kernels are compiled: cached on disk (compiled once per machine), without the GIL and without numba's
reference-counted runtime (NRT).

Without NRT a kernel cannot allocate: callers pass every array, scratch included. With it, every array a
kernel binds (each member of a tuple of arrays handed to an inlined helper, each row view) costs an atomic
increment and decrement: about 150 pairs per user-step in the fused step, a quarter of its time (measured).

Kernels loop over a range of users; :mod:`recoworld.kernels.step` runs row chunks on several threads when
``WorldConfig.threads`` asks for it (numba's ``prange`` cannot capture the kernels' tuple-of-array arguments).
"""

from __future__ import annotations

import numba
from numba.core.cpu import CPUTargetOptions

# ``_nrt`` is numba's own (private) switch; should a release drop it, the kernels still run, with NRT.
_OPTIONS = {"cache": True, "nogil": True} | ({"_nrt": False} if hasattr(CPUTargetOptions, "_nrt") else {})

jit = numba.njit(**_OPTIONS)
inline = numba.njit(**_OPTIONS, inline="always")  # helpers taking tuples of arrays
# Reductions LLVM may reorder into vector sums (rounding then depends on the vector width, not on the batch)
reassociating = numba.njit(**_OPTIONS, fastmath={"reassoc", "contract", "nsz"})
