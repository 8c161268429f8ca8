"""RecoWorld: Gymnasium environments for agentic recommender systems.

Importing the package registers every environment (see :mod:`recoworld.registration`).
Only numpy and gymnasium are imported here; heavier extras are imported lazily where used.
"""

__version__ = "0.1.0"

from recoworld.config import UserConfig, WorldConfig  # noqa: E402
from recoworld.registration import register_all  # noqa: E402

register_all()

__all__ = ["UserConfig", "WorldConfig", "__version__"]
