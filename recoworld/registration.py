"""Every ``gym.register`` call of RecoWorld, in one place (run at ``import recoworld``)."""

from __future__ import annotations

import gymnasium as gym

_SINGLE = "recoworld.envs.single"
_VECTOR = "recoworld.envs.vector"
_LLM = "recoworld.users.llm.environment"  # imported by gym.make only: no torch/transformers at registration

# id -> (entry point, vector entry point, default kwargs[, options of gym.register])
ENVIRONMENTS = {
    "RecoWorld-v0": (f"{_SINGLE}:RecoWorldEnv", f"{_VECTOR}:lifetime_vector_env", {}),
    "RecoWorld-Session-v0": (f"{_SINGLE}:RecoWorldSessionEnv", f"{_VECTOR}:session_vector_env", {}),
    "RecoWorld-Bandit-v0": (f"{_SINGLE}:RecoWorldBanditEnv", f"{_VECTOR}:bandit_vector_env", {}),
    "RecoWorld-ML100K-v0": (
        f"{_SINGLE}:RecoWorldEnv",
        f"{_VECTOR}:lifetime_vector_env",
        {"preset": "ml100k"},
    ),
    "RecoWorld-LLM-v0": (
        f"{_LLM}:RecoWorldLLMEnv",
        f"{_LLM}:llm_vector_env",
        {},
        {"nondeterministic": True},  # model kernels, KV caches and servers need not repeat bit for bit
    ),
}


def register_all() -> None:
    """Register every RecoWorld environment id (idempotent)."""
    for env_id, (entry_point, vector_entry_point, kwargs, *options) in ENVIRONMENTS.items():
        if env_id not in gym.registry:
            gym.register(
                id=env_id,
                entry_point=entry_point,
                vector_entry_point=vector_entry_point,
                kwargs=dict(kwargs),
                disable_env_checker=False,
                **(options[0] if options else {}),
            )
