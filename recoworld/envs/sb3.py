"""Stable-Baselines3 ``VecEnv`` over the native batched environment: one numpy core steps all N users.

>>> from recoworld.envs.sb3 import make_sb3_vec_env
>>> from stable_baselines3 import PPO
>>> venv = make_sb3_vec_env("RecoWorld-Session-v0", num_envs=64, seed=0)
>>> model = PPO("MultiInputPolicy", venv).learn(10_000)

Autoreset. The native environment resets a finished sub-env on the *next* step (Gymnasium's NEXT_STEP
mode); SB3 expects it reset within the same step. :class:`RecoWorldSB3VecEnv` drives the native environment's
simulator with SB3's semantics: when sub-env ``i`` finishes, ``step`` returns the next user's first
observation in row ``i``, ``done[i] = True``, the final observation in ``infos[i]["terminal_observation"]``
and ``infos[i]["TimeLimit.truncated"]`` (truncated and not terminated). Sub-env ``i`` meets the same users in
the same order as sub-env ``i`` of the native environment (``reset(seed=s)``: keyed by ``s + i``, then its
next users), and under the same actions follows the same trajectories, without the native reset steps.

Infos are cheap: every dict holds the step's ``watch_minutes`` and ``clicks`` (floats); finished sub-envs add
the two SB3 keys above. Nothing else is copied per user.

Stable-Baselines3 is imported when this module is: ``pip install recoworld[rl]``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

try:
    from stable_baselines3.common.vec_env import VecEnv, VecMonitor
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "recoworld.envs.sb3 needs stable-baselines3 (and torch): pip install 'recoworld[rl]'"
    ) from exc

__all__ = ["RecoWorldSB3VecEnv", "make_sb3_vec_env"]

Indices = int | Iterable[int] | None


class RecoWorldSB3VecEnv(VecEnv):
    """An SB3 ``VecEnv`` view of a native RecoWorld vector environment (``gym.make_vec(...,
    vectorization_mode="vector_entry_point")``), with SB3's same-step autoreset.

    Observations are the native ``Dict`` of batched arrays (use ``MultiInputPolicy``), actions ``(N, K)``
    candidate indices (``MultiDiscrete``). A malformed action raises
    :class:`~recoworld.envs.slates.InvalidActionError` from ``step_async`` and changes nothing.

    The sub-envs are rows of one environment: ``get_attr``/``env_method`` read or call the native environment
    once and return the result for every requested index; ``set_attr`` sets it for all of them.
    """

    def __init__(self, vector_env: Any):
        native = getattr(vector_env, "unwrapped", vector_env)
        if not hasattr(native, "sim") or not hasattr(native, "single_observation_space"):
            raise TypeError(
                "RecoWorldSB3VecEnv needs a native RecoWorld vector env "
                "(gym.make_vec(id, num_envs=N, vectorization_mode='vector_entry_point')), "
                f"got {type(vector_env).__name__}"
            )
        self.venv = native
        self.sim = native.sim
        self._seed: int | None = None
        self._slates: tuple[np.ndarray, np.ndarray] | None = None
        self._has_reset = False
        super().__init__(native.num_envs, native.single_observation_space, native.single_action_space)

    # ------------------------------------------------------------------ episodes
    def seed(self, seed: int | None = None) -> Sequence[int | None]:
        """Seed for the next :meth:`reset`: sub-env ``i`` then meets the user keyed by ``seed + i``."""
        if seed is None:
            seed = int(self.venv.np_random.integers(2**31))
        self._seed = int(seed)
        return [self._seed + i for i in range(self.num_envs)]

    def reset(self) -> dict[str, np.ndarray]:
        obs, _ = self.venv.reset(seed=self._seed)
        self._seed = None
        self._slates = None
        self._has_reset = True
        self.reset_infos = [{} for _ in range(self.num_envs)]
        return obs

    # ------------------------------------------------------------------ stepping
    def step_async(self, actions: np.ndarray) -> None:
        if not self._has_reset:
            raise RuntimeError("call reset() before step()")
        self._slates = self.sim.validate(actions)

    def step_wait(self):
        if self._slates is None:
            raise RuntimeError("step_wait() without a pending step_async()")
        slates, replaced = self._slates
        self._slates = None
        result = self.sim.step(slates, replaced)
        done = result.terminated | result.truncated
        vector = result.info["reward_vector"]
        watch, clicks = vector[:, 1].tolist(), vector[:, 0].tolist()
        infos = [{"watch_minutes": w, "clicks": c} for w, c in zip(watch, clicks, strict=True)]
        obs = self.sim.observe()
        if done.any():
            rows = np.flatnonzero(done)
            final = {key: value[rows] for key, value in obs.items()}
            limit = (result.truncated & ~result.terminated)[rows].tolist()
            for j, (i, truncated) in enumerate(zip(rows.tolist(), limit, strict=True)):
                infos[i]["terminal_observation"] = {key: value[j] for key, value in final.items()}
                infos[i]["TimeLimit.truncated"] = truncated
            self.sim.next_episode(rows)
            obs = self.sim.observe()
        return obs, result.reward.astype(np.float32), done, infos

    def close(self) -> None:
        self.venv.close()

    # ------------------------------------------------------------------ attributes and methods
    def _count(self, indices: Indices) -> int:
        return len(list(self._get_indices(indices)))

    def get_attr(self, attr_name: str, indices: Indices = None) -> list[Any]:
        value = getattr(self.venv, attr_name)
        return [value] * self._count(indices)

    def set_attr(self, attr_name: str, value: Any, indices: Indices = None) -> None:
        if self._count(indices) != self.num_envs:
            raise ValueError(
                f"set_attr({attr_name!r}): the {self.num_envs} sub-envs share one native environment; "
                "set it for all of them (indices=None)"
            )
        setattr(self.venv, attr_name, value)

    def env_method(self, method_name: str, *args, indices: Indices = None, **kwargs) -> list[Any]:
        result = getattr(self.venv, method_name)(*args, **kwargs)
        return [result] * self._count(indices)

    def env_is_wrapped(self, wrapper_class: type, indices: Indices = None) -> list[bool]:
        """Always False: the sub-envs are rows of one environment, never wrapped one by one."""
        return [False] * self._count(indices)


def make_sb3_vec_env(
    env_id: str = "RecoWorld-Session-v0",
    num_envs: int = 64,
    seed: int | None = None,
    *,
    monitor: bool = True,
    **env_kwargs: Any,
) -> VecEnv:
    """The native vector env of ``env_id`` as an SB3 ``VecEnv`` (seeded for its first reset), wrapped in
    ``VecMonitor`` (episode returns and lengths for SB3's logger) unless ``monitor=False``."""
    import gymnasium as gym

    import recoworld  # noqa: F401 - registers the environments

    native = gym.make_vec(env_id, num_envs=num_envs, vectorization_mode="vector_entry_point", **env_kwargs)
    venv: VecEnv = RecoWorldSB3VecEnv(native)
    if seed is not None:
        venv.seed(seed)
    return VecMonitor(venv) if monitor else venv
