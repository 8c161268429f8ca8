"""Ray RLlib integration: RecoWorld's native vector environment on RLlib's new API stack.

>>> from recoworld.rllib import ppo_config
>>> algo = ppo_config("RecoWorld-Session-v0", num_env_runners=2, seed=0).build_algo()
>>> algo.train()["env_runners"]["episode_return_mean"]

Every env runner holds one native batched environment (``gym.make_vec(..., vectorization_mode=
"vector_entry_point")``, NEXT_STEP autoreset, which RLlib's ``SingleAgentEnvRunner`` expects) of
``num_envs_per_env_runner`` users. The environment is named by its ``"recoworld:<id>"`` form, so a remote
runner that never imported ``recoworld`` imports and registers it on first use. The ``Dict`` observation is
flattened into one vector by RLlib's ``FlattenObservations`` env-to-module connector (RLlib's default PPO
module has no encoder for ``Dict`` spaces); :class:`~recoworld.agents.rllib.RLlibPolicy` flattens the same
way.

Ray is imported lazily: ``import recoworld.rllib`` works without it, building a configuration does not.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Mapping
from typing import Any

import gymnasium as gym

__all__ = [
    "DEFAULT_NUM_ENVS",
    "ENV_CONFIG_ID",
    "TIMED_ENV",
    "TimedVectorEnv",
    "env_creator",
    "env_seconds",
    "flatten_observations",
    "ppo_config",
    "register_env",
    "rllib_env_id",
    "require_ray",
    "timed_env_creator",
]

DEFAULT_NUM_ENVS = 64  # users per env runner: RLlib's per-step overhead is paid once for the whole batch
ENV_CONFIG_ID = "env_id"  # the env_config key naming the RecoWorld id, for env_creator
TIMED_ENV = "recoworld-timed"  # the Tune name of timed_env_creator (ppo_config(timed=True))


def require_ray(what: str = "this feature") -> Any:
    """Import and return ``ray``, or raise an ImportError naming the extra to install."""
    try:
        return importlib.import_module("ray")
    except ImportError as exc:
        raise ImportError(f"{what} needs Ray RLlib: pip install 'recoworld[ray]' ({exc})") from exc


def rllib_env_id(env_id: str) -> str:
    """The ``"recoworld:<id>"`` form of a RecoWorld environment id (checked to be registered)."""
    import recoworld  # noqa: F401 - registers the environments

    if not isinstance(env_id, str) or not env_id:
        raise ValueError("env_id must be a non-empty string, e.g. 'RecoWorld-Session-v0'")
    bare = env_id.split(":", 1)[1] if env_id.startswith("recoworld:") else env_id
    if ":" in bare:
        raise ValueError(
            f"env_id {env_id!r}: only RecoWorld ids (optionally prefixed 'recoworld:') are accepted"
        )
    if bare not in gym.registry or not str(gym.spec(bare).entry_point).startswith("recoworld."):
        raise ValueError(f"unknown RecoWorld environment id {bare!r}")
    if gym.spec(bare).vector_entry_point is None:
        raise ValueError(f"environment {bare!r} has no native vector environment (vector_entry_point)")
    return f"recoworld:{bare}"


def env_creator(env_config: Mapping[str, Any]) -> Any:
    """RLlib environment creator (for ``tune.register_env`` or ``config.environment(env=env_creator)``).

    ``env_config[ENV_CONFIG_ID]`` names the environment (default ``RecoWorld-Session-v0``); every other key
    but ``num_envs`` is an environment keyword argument. RLlib adds ``num_envs`` when it asks for a vector
    environment (``gym_env_vectorize_mode="vector_entry_point"``): the native batched environment is
    returned; without it, a single environment.
    """
    kwargs = dict(env_config)
    env_id = rllib_env_id(kwargs.pop(ENV_CONFIG_ID, "RecoWorld-Session-v0"))
    num_envs = kwargs.pop("num_envs", None)
    if num_envs is None:
        return gym.make(env_id, **kwargs)
    return gym.make_vec(env_id, num_envs=int(num_envs), vectorization_mode="vector_entry_point", **kwargs)


class TimedVectorEnv(gym.vector.VectorWrapper):
    """Counts the wall-clock seconds spent inside the wrapped vector environment's ``step`` and ``reset``."""

    def __init__(self, env: gym.vector.VectorEnv):
        super().__init__(env)
        self.env_seconds = 0.0

    def reset(self, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return self.env.reset(**kwargs)
        finally:
            self.env_seconds += time.perf_counter() - start

    def step(self, actions: Any) -> Any:
        start = time.perf_counter()
        try:
            return self.env.step(actions)
        finally:
            self.env_seconds += time.perf_counter() - start


def timed_env_creator(env_config: Mapping[str, Any]) -> TimedVectorEnv:
    """:func:`env_creator`'s vector environment inside a :class:`TimedVectorEnv` (for profiling)."""
    if "num_envs" not in env_config:
        raise ValueError("timed_env_creator builds vector environments only (RLlib passes num_envs)")
    return TimedVectorEnv(env_creator(env_config))


def _runner_env_seconds(runner: Any) -> float:
    env = getattr(runner, "env", None)
    while env is not None:
        if isinstance(env, TimedVectorEnv):
            return env.env_seconds
        env = getattr(env, "env", None)
    return 0.0


def env_seconds(algo: Any) -> float:
    """Seconds spent inside the environments of ``algo``'s env runners, summed (``timed=True`` only)."""
    return float(sum(algo.env_runner_group.foreach_env_runner(_runner_env_seconds, local_env_runner=True)))


def register_env(name: str = "recoworld", creator: Any = env_creator) -> str:
    """Register ``creator`` (default :func:`env_creator`) with Tune under ``name``; returns ``name``."""
    require_ray("recoworld.rllib.register_env")
    from ray.tune.registry import register_env as tune_register_env

    tune_register_env(name, creator)
    return name


def flatten_observations(env: Any = None, spaces: Any = None, device: Any = None) -> Any:
    """The env-to-module connector factory: RLlib's ``FlattenObservations`` (Dict -> one float vector)."""
    from ray.rllib.connectors.env_to_module import FlattenObservations

    return FlattenObservations()


def ppo_config(
    env_id: str = "RecoWorld-Session-v0",
    *,
    num_env_runners: int = 0,
    num_envs_per_env_runner: int = DEFAULT_NUM_ENVS,
    seed: int | None = 0,
    timed: bool = False,
    **env_kwargs: Any,
) -> Any:
    """A ``PPOConfig`` training on ``env_id`` with one native vector env per env runner.

    ``num_env_runners=0`` samples in the driver process; ``env_kwargs`` are the environment's keyword
    arguments (world configuration). Training hyperparameters keep RLlib's defaults apart from a batch that
    fits the vectorised sampling; adjust them with ``config.training(...)``. ``timed=True`` builds the
    environments with :func:`timed_env_creator` so that :func:`env_seconds` can tell how long training spent
    inside them.
    """
    require_ray("recoworld.rllib.ppo_config")
    from ray.rllib.algorithms.ppo import PPOConfig

    for label, value, low in (
        ("num_env_runners", num_env_runners, 0),
        ("num_envs_per_env_runner", num_envs_per_env_runner, 1),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"{label} must be an integer >= {low}, got {value!r}")
    env_id = rllib_env_id(env_id)
    if timed:
        env, env_config = register_env(TIMED_ENV, timed_env_creator), {ENV_CONFIG_ID: env_id, **env_kwargs}
    else:
        env, env_config = env_id, dict(env_kwargs)
    config = (
        PPOConfig()
        .environment(env, env_config=env_config)
        .env_runners(
            num_env_runners=num_env_runners,
            num_envs_per_env_runner=num_envs_per_env_runner,
            gym_env_vectorize_mode="vector_entry_point",
            env_to_module_connector=flatten_observations,
        )
        .training(train_batch_size_per_learner=4096, minibatch_size=512, num_epochs=4)
    )
    if seed is not None:
        config = config.debugging(seed=int(seed))
    return config
