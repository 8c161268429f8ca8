"""Optional compiled kernels (numba) for the simulator's per-request hot path.

The numpy code in :mod:`recoworld.envs` and :mod:`recoworld.users.synthetic` is the specification and the
fallback; these modules repeat it per user in compiled loops (docs/performance.md). Nothing here imports
numba until a kernel module is imported, so ``import recoworld`` needs only numpy and gymnasium.
"""

from __future__ import annotations

import importlib.util


def numba_available() -> bool:
    return importlib.util.find_spec("numba") is not None


def resolve(kernel: str) -> str:
    """The backend a (validated) ``WorldConfig.kernel`` setting selects: "numba" or "numpy"."""
    if kernel == "numba" and not numba_available():
        raise ImportError("kernel='numba' needs numba: pip install 'recoworld[fast]'")
    if kernel == "auto":
        return "numba" if numba_available() else "numpy"
    return kernel
