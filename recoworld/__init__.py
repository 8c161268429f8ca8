"""RecoWorld: Gymnasium environments for agentic recommender systems.

Importing the package registers every environment (see :mod:`recoworld.registration`).
Only numpy and gymnasium are imported here; heavier extras are imported lazily where used.
"""

__version__ = "0.1.0"

from recoworld.config import UserConfig, WorldConfig  # noqa: E402
from recoworld.registration import register_all  # noqa: E402

register_all()

_LAZY = {
    "evaluate": "recoworld.evaluation",
    "compare": "recoworld.evaluation",
    "make_agent": "recoworld.agents",
}


def __getattr__(name: str):
    """``recoworld.evaluate``, ``recoworld.compare`` and ``recoworld.make_agent``, imported on first use."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'recoworld' has no attribute {name!r}")


__all__ = ["UserConfig", "WorldConfig", "__version__", "compare", "evaluate", "make_agent"]
