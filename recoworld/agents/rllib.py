"""An RLlib checkpoint (or a live ``Algorithm``) as a batched :class:`~recoworld.agents.base.Recommender`.

>>> from recoworld.agents.rllib import RLlibPolicy
>>> policy = RLlibPolicy.from_checkpoint("runs/rllib_ppo/checkpoint")
>>> recoworld.evaluate(policy, "RecoWorld-Session-v0", users=1000)     # or the policy name "rllib:PATH"

The policy runs the trained RLModule's ``forward_inference`` on observations flattened exactly as the
training's ``FlattenObservations`` connector flattened them (RLlib's own ``flatten_inputs_to_1d_tensor``
over the checkpoint's observation space) and takes the most probable candidate in every slate slot (greedy).
It does not learn during evaluation; loading a checkpoint needs no Ray runtime.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from .base import Info, Observation, as_batch

__all__ = ["RLlibPolicy"]


class RLlibPolicy:
    """Greedy slates from an RLlib RLModule trained on a RecoWorld environment (flattened observations)."""

    name = "rllib"

    def __init__(self, module: Any, observation_space: Any):
        from ray.rllib.utils.spaces.space_utils import get_base_struct_from_space

        self.module = module
        self.observation_space = observation_space
        self._struct = get_base_struct_from_space(observation_space)
        nvec = np.asarray(getattr(module.action_space, "nvec", [getattr(module.action_space, "n", 0)]))
        self.slate_size = int(nvec.size)

    @classmethod
    def from_checkpoint(cls, path: str | Path) -> RLlibPolicy:
        """Load the default module and the Dict observation space of an ``algo.save_to_path`` folder."""
        from recoworld.rllib import require_ray

        require_ray("RLlibPolicy")
        from ray.rllib.connectors.connector_pipeline_v2 import ConnectorPipelineV2
        from ray.rllib.core import (
            COMPONENT_ENV_RUNNER,
            COMPONENT_ENV_TO_MODULE_CONNECTOR,
            COMPONENT_LEARNER,
            COMPONENT_LEARNER_GROUP,
            COMPONENT_RL_MODULE,
            DEFAULT_MODULE_ID,
        )
        from ray.rllib.core.rl_module.rl_module import RLModule

        root = Path(path)
        module_dir = (
            root / COMPONENT_LEARNER_GROUP / COMPONENT_LEARNER / COMPONENT_RL_MODULE / DEFAULT_MODULE_ID
        )
        connector_dir = root / COMPONENT_ENV_RUNNER / COMPONENT_ENV_TO_MODULE_CONNECTOR
        if not module_dir.is_dir() or not connector_dir.is_dir():
            raise FileNotFoundError(
                f"{path}: not an RLlib algorithm checkpoint (expected {module_dir.relative_to(root)} and "
                f"{connector_dir.relative_to(root)}; write one with algo.save_to_path)"
            )
        module = RLModule.from_checkpoint(module_dir)
        space = ConnectorPipelineV2.from_checkpoint(connector_dir).input_observation_space
        return cls(module, space)

    @classmethod
    def from_algorithm(cls, algo: Any) -> RLlibPolicy:
        """A frozen copy of a live algorithm's current policy (through a temporary checkpoint)."""
        with tempfile.TemporaryDirectory(prefix="recoworld-rllib-") as folder:
            algo.save_to_path(folder)
            return cls.from_checkpoint(folder)

    def reset(self, seed: int | None = None) -> None:
        """Nothing to reset: the policy is deterministic and keeps no per-user state."""

    def flatten(self, observation: Observation) -> np.ndarray:
        """(N, D) float32: the batched observation flattened as RLlib's ``FlattenObservations`` does."""
        from ray.rllib.utils.numpy import flatten_inputs_to_1d_tensor

        obs, _ = as_batch(observation)
        missing = set(self._struct) - set(obs)
        if missing:
            raise KeyError(f"observation lacks {sorted(missing)}, which the RLlib policy was trained on")
        inputs = {key: np.asarray(obs[key]) for key in self._struct}
        return np.asarray(
            flatten_inputs_to_1d_tensor(inputs, self._struct, batch_axis=True), dtype=np.float32
        )

    def act(self, observation: Observation) -> np.ndarray:
        """(N, K) int64 slates, the most probable candidate in every slot ((K,) if unbatched)."""
        import torch
        from ray.rllib.core.columns import Columns

        _, single = as_batch(observation)
        with torch.no_grad():
            out = self.module.forward_inference({Columns.OBS: torch.from_numpy(self.flatten(observation))})
            dist = self.module.get_inference_action_dist_cls().from_logits(out[Columns.ACTION_DIST_INPUTS])
            slates = dist.to_deterministic().sample().cpu().numpy().astype(np.int64)
        slates = slates.reshape(len(slates), -1)
        return slates[0] if single else slates

    def update(self, observation: Observation, action: np.ndarray, reward: Any, info: Info) -> None:
        """Evaluation only: the RLlib policy does not learn online."""

    def __repr__(self) -> str:
        return f"RLlibPolicy(slate_size={self.slate_size})"
