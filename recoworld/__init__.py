"""RecoWorld: Gymnasium environments for agentic recommender systems.

Importing the package registers every environment (see :mod:`recoworld.registration`).
Only numpy and gymnasium are imported here; heavier extras are imported lazily where used.
"""

__version__ = "0.1.0"
