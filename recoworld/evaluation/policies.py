"""Policy lookup for evaluation and the CLI: names -> recommenders.

:func:`make_policy` is the single place where a policy name becomes an object: registered agent names go to
``recoworld.agents.make_agent`` (``random``, ``popular``, ``oracle``, ``egreedy``, ``ucb``, ``linucb``,
``lints``, ``inslate_ts``, ``hrl`` ..., optionally prefixed ``instruct:``), and ``sb3:PATH`` loads a trained
Stable-Baselines3 model through ``recoworld.agents.sb3.SB3Policy.load(PATH)``, ``rllib:PATH`` an RLlib
checkpoint through ``recoworld.agents.rllib.RLlibPolicy.from_checkpoint(PATH)``.

A policy is anything with the batched ``Recommender`` methods (``recoworld.agents.Recommender``)::

    act(observation: dict[str, np.ndarray]) -> np.ndarray      # (N, K) int candidate indices
    update(observation, action, reward, info) -> None         # optional: online learning
    reset(seed: int | None = None) -> None                    # optional
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "PANEL",
    "PolicyError",
    "available_policies",
    "check_policy_name",
    "make_policy",
    "policy_env_kwargs",
]

# The CLI's names, in the order the demo shows them.
PANEL = ("random", "popular", "oracle", "egreedy", "ucb", "linucb", "lints", "inslate_ts", "hrl")
_INSTRUCT = "instruct:"
_SB3 = "sb3:"
_RLLIB = "rllib:"
# Policies that read the hidden state: the environment is made with these keyword arguments.
_ENV_KWARGS: dict[str, dict[str, Any]] = {"oracle": {"observe_latent": True}}


class PolicyError(ValueError):
    """A policy name that cannot be turned into a policy."""


def _agents():
    try:
        return importlib.import_module("recoworld.agents")
    except ImportError as exc:  # pragma: no cover - the agents package ships with recoworld
        raise PolicyError(f"recoworld.agents cannot be imported: {exc}") from exc


def available_policies() -> tuple[str, ...]:
    """Registered agent names (each may be prefixed ``instruct:``); ``sb3:PATH`` is accepted as well."""
    return tuple(_agents().list_agents())


def _base_name(name: str) -> str:
    while name.startswith(_INSTRUCT):
        name = name[len(_INSTRUCT) :]
    return name


def check_policy_name(name: Any) -> None:
    """Raise :class:`PolicyError` (one-line message) unless ``name`` is a policy name that can be built."""
    if not isinstance(name, str) or not name.strip():
        raise PolicyError("policy name must be a non-empty string")
    if name.startswith(_SB3):
        if not name[len(_SB3) :]:
            raise PolicyError("sb3: needs a model path, e.g. sb3:runs/ppo.zip")
        return
    if name.startswith(_RLLIB):
        if not name[len(_RLLIB) :]:
            raise PolicyError("rllib: needs a checkpoint folder, e.g. rllib:runs/rllib_ppo/checkpoint")
        return
    if _base_name(name) not in available_policies():
        raise PolicyError(
            f"unknown policy {name!r}; choose from {', '.join(available_policies())} "
            "(optionally prefixed instruct:), sb3:PATH or rllib:PATH"
        )


def policy_env_kwargs(policy: Any) -> dict[str, Any]:
    """Environment keyword arguments a policy needs (``observe_latent=True`` for the oracle).

    Names (and objects' ``name`` attribute) are looked up in a small table; objects may also declare
    ``env_kwargs`` (a dict) or ``requires_latent = True``.
    """
    if isinstance(policy, str):
        return dict(_ENV_KWARGS.get(_base_name(policy), {}))
    name = getattr(policy, "name", None)
    kwargs = dict(_ENV_KWARGS.get(name, {})) if isinstance(name, str) else {}
    kwargs.update(getattr(policy, "env_kwargs", None) or {})
    if getattr(policy, "requires_latent", False):
        kwargs["observe_latent"] = True
    return kwargs


def make_policy(name: str, env: Any, seed: int | None = 0) -> Any:
    """Build the policy called ``name`` for ``env`` (a vector or single environment, or an observation
    space)."""
    check_policy_name(name)
    if name.startswith(_SB3):
        try:
            return importlib.import_module("recoworld.agents.sb3").SB3Policy.load(name[len(_SB3) :])
        except (ImportError, FileNotFoundError) as exc:
            raise PolicyError(f"{name}: {exc}") from exc
    if name.startswith(_RLLIB):
        try:
            rllib = importlib.import_module("recoworld.agents.rllib")
            return rllib.RLlibPolicy.from_checkpoint(name[len(_RLLIB) :])
        except (ImportError, FileNotFoundError) as exc:
            raise PolicyError(f"{name}: {exc}") from exc
    return _agents().make_agent(name, env, seed=seed)
