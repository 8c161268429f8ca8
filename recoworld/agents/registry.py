"""Agent registry: ``make_agent(name, env_or_space, *, slate_size, seed, **kwargs)``.

Names: ``random``, ``popular``, ``oracle``, ``egreedy``, ``ucb``, ``linucb``, ``lints``, ``inslate_ts``,
``inslate_greedy``, ``hrl``, ``hrl_fixed``; the prefix ``instruct:`` wraps any of them in the
instruction-aware
re-ranker (``instruct:linucb``). Keyword arguments go to the agent's constructor (for ``instruct:`` names, the
wrapper's own ``share``, ``related_topics``, ``relatedness``, ``related_k`` and ``related_avoids_target`` go
to
the wrapper, the rest to the base agent).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .base import BaseRecommender, ObsSpec

_WRAPPER_KEYS = ("share", "related_topics", "relatedness", "related_k", "related_avoids_target", "honour")


def _factories() -> dict[str, Callable[..., BaseRecommender]]:
    from .bandits import UCB1, EpsilonGreedy, LinTS, LinUCB
    from .baselines import OracleRecommender, PopularRecommender, RandomRecommender
    from .inslate import InSlateTS

    def hrl(**kw):
        from .hrl import HRLAgent

        return HRLAgent(**kw)

    def hrl_fixed(*, propensity: float = 0.0, **kw):
        from .hrl import HRLAgent

        return HRLAgent(fixed_propensity=propensity, **kw)

    def inslate_greedy(**kw):
        return InSlateTS(greedy=True, **kw)

    return {
        "random": RandomRecommender,
        "popular": PopularRecommender,
        "oracle": OracleRecommender,
        "egreedy": EpsilonGreedy,
        "ucb": UCB1,
        "linucb": LinUCB,
        "lints": LinTS,
        "inslate_ts": InSlateTS,
        "inslate_greedy": inslate_greedy,
        "hrl": hrl,
        "hrl_fixed": hrl_fixed,
    }


AGENT_NAMES = (
    "random",
    "popular",
    "oracle",
    "egreedy",
    "ucb",
    "linucb",
    "lints",
    "inslate_ts",
    "inslate_greedy",
    "hrl",
    "hrl_fixed",
)


def list_agents() -> tuple[str, ...]:
    """Registered agent names (each may also be prefixed with ``instruct:``)."""
    return AGENT_NAMES


def _space_and_env(env_or_space: Any) -> tuple[Any, Any]:
    """(single-env observation space or None, env or None)."""
    if env_or_space is None:
        return None, None
    if hasattr(env_or_space, "spaces") and not hasattr(env_or_space, "step"):
        return env_or_space, None
    space = getattr(env_or_space, "single_observation_space", None)
    if space is None:
        space = getattr(env_or_space, "observation_space", None)
    return space, env_or_space


def _slate_size_of(env: Any) -> int | None:
    for attr in ("single_action_space", "action_space"):
        space = getattr(env, attr, None)
        nvec = getattr(space, "nvec", None)
        if nvec is not None:
            return int(np.asarray(nvec).shape[-1])
        if space is not None and hasattr(space, "n"):
            return 1
    return None


def _recoworld_env(env: Any) -> Any:
    """The RecoWorld environment (single or vector) behind ``env`` and its wrappers, or None."""
    for obj in (env, getattr(env, "unwrapped", None)):
        if callable(getattr(obj, "candidate_utility", None)) and hasattr(obj, "catalog"):
            return obj
    return None


def _related_topics_of(env: Any) -> np.ndarray | None:
    """The catalogue's ``related_topics`` when ``env`` is a RecoWorld environment."""
    found = _recoworld_env(env)
    return None if found is None else np.asarray(found.catalog.related_topics)


def ground_truth_utility(env: Any) -> Callable | None:
    """``utility_fn(observation) -> (N, C)``: the environment's true utility of its current candidates.

    Valid for the observation the environment returned last, which is the one an agent acts on. None when
    ``env`` is not a RecoWorld environment.
    """
    found = _recoworld_env(env)
    if found is None:
        return None

    def utility_fn(observation: Any) -> np.ndarray:
        utility = np.atleast_2d(found.candidate_utility())
        topics = observation["candidate_topic"]
        n = np.shape(topics)[0] if np.ndim(topics) == 2 else 1
        if n != utility.shape[0]:
            raise ValueError(
                f"observation batch {n} does not match the environment's {utility.shape[0]} users"
            )
        return utility

    return utility_fn


def make_agent(
    name: str,
    env_or_space: Any = None,
    *,
    slate_size: int | None = None,
    seed: int | None = None,
    **kwargs: Any,
) -> BaseRecommender:
    """Build a registered agent for an environment (single or vector) or a single-env observation space.

    ``slate_size`` defaults to the environment's action space (10 when neither is given). The observation
    dimensions are read from the space (or lazily from the first observation when none is given).
    """
    if not isinstance(name, str):
        raise TypeError(f"agent name must be a string, got {name!r}")
    space, env = _space_and_env(env_or_space)
    spec = ObsSpec.from_space(space) if space is not None else None
    if slate_size is None:
        slate_size = (_slate_size_of(env) if env is not None else None) or 10
    if name.startswith("instruct:"):
        from .instruct import InstructionAware

        wrapper_kw = {k: kwargs.pop(k) for k in _WRAPPER_KEYS if k in kwargs}
        if "related_topics" not in wrapper_kw and env is not None:
            rel = _related_topics_of(env)
            if rel is not None:
                wrapper_kw["related_topics"] = rel
        base = make_agent(name[len("instruct:") :], env_or_space, slate_size=slate_size, seed=seed, **kwargs)
        return InstructionAware(base, seed=seed, **wrapper_kw)
    if name == "oracle" and "utility_fn" not in kwargs and env is not None:
        kwargs["utility_fn"] = ground_truth_utility(env)
    factories = _factories()
    if name not in factories:
        raise ValueError(
            f"unknown agent {name!r}; choose one of {AGENT_NAMES} (optionally prefixed 'instruct:')"
        )
    return factories[name](slate_size=slate_size, seed=seed, spec=spec, **kwargs)
