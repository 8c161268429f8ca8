"""A trained Stable-Baselines3 model as a batched :class:`~recoworld.agents.base.Recommender`.

>>> from recoworld.agents.sb3 import SB3Policy
>>> from recoworld.evaluation import compare
>>> policy = SB3Policy.load("runs/ppo/final.zip")            # or make_policy("sb3:runs/ppo/final.zip", env)
>>> compare({"ppo": policy, "random": "random"}, "RecoWorld-Session-v0", reference="random")

The model must have been trained on RecoWorld observations (``MultiInputPolicy`` over the ``Dict``
observation, e.g. through :mod:`recoworld.envs.sb3`) with the ``MultiDiscrete`` slate action. Observation keys
the model was not trained on (``latent`` in oracle mode) are dropped. Needs ``pip install recoworld[rl]``.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import numpy as np

from .base import BaseRecommender, Observation

__all__ = ["SB3Policy"]


def _sb3():
    try:
        return importlib.import_module("stable_baselines3")
    except ImportError as exc:
        raise ImportError(
            "SB3Policy needs stable-baselines3 (and torch): pip install 'recoworld[rl]'"
        ) from exc


def model_path(path: str | Path) -> Path:
    """The file SB3 loads for ``path`` (SB3 adds ``.zip`` when missing); ``FileNotFoundError`` if absent."""
    path = Path(path)
    for candidate in (path, path.with_name(path.name + ".zip")):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"no Stable-Baselines3 model at {str(path)!r}")


class SB3Policy(BaseRecommender):
    """Slates from an SB3 model's policy (deterministic: the most likely action, by default).

    ``model`` is an SB3 algorithm (``PPO``, ``A2C`` ...) or its ``policy``. It does not learn during an
    evaluation (``update`` is a no-op); stochastic actions (``deterministic=False``) draw from torch's
    global generator.
    """

    name = "sb3"

    def __init__(self, model: Any, *, deterministic: bool = True):
        self.policy = getattr(model, "policy", model)
        if not hasattr(self.policy, "predict"):
            raise TypeError(f"SB3Policy needs an SB3 algorithm or policy, got {type(model).__name__}")
        space = self.policy.action_space
        nvec = getattr(space, "nvec", None)
        if nvec is None or np.ndim(nvec) != 1:
            raise ValueError(f"SB3Policy needs a MultiDiscrete slate action space, the model has {space}")
        self.keys = tuple(self.policy.observation_space.spaces)
        self.deterministic = bool(deterministic)
        super().__init__(slate_size=len(nvec))

    @classmethod
    def load(
        cls, path: str | Path, device: str = "cpu", *, algo: str = "PPO", deterministic: bool = True
    ) -> SB3Policy:
        """Load a model saved by ``model.save(path)``; ``algo`` names its SB3 class (default ``"PPO"``)."""
        file = model_path(path)
        sb3 = _sb3()
        algo_class = getattr(sb3, algo, None)
        if not isinstance(algo_class, type) or not hasattr(algo_class, "load"):
            raise ValueError(f"algo: {algo!r} is not a Stable-Baselines3 algorithm (e.g. 'PPO', 'A2C')")
        return cls(algo_class.load(file, device=device), deterministic=deterministic)

    def __deepcopy__(self, memo: dict) -> SB3Policy:
        """Copies share the (read-only) network; torch modules holding graph tensors cannot be deep-copied."""
        return SB3Policy(self.policy, deterministic=self.deterministic)

    def _act(self, obs: Observation) -> np.ndarray:
        missing = [key for key in self.keys if key not in obs]
        if missing:
            raise KeyError(f"observation lacks {missing}, which the SB3 model was trained on")
        inputs = {key: obs[key] for key in self.keys}
        actions, _ = self.policy.predict(inputs, deterministic=self.deterministic)
        return np.asarray(actions, dtype=np.int64).reshape(len(obs["candidate_topic"]), self.slate_size)
