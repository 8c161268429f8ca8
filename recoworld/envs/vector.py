"""The native batched environment: ``num_envs`` users simulated by one numpy core, NEXT_STEP autoreset."""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from recoworld.config import WorldConfig, make_config
from recoworld.envs.core import Simulator, UserModelFactory
from recoworld.envs.single import _SEED_BOUND, SimulatorAccess, slate_space
from recoworld.envs.slates import InvalidActionError


class RecoWorldVectorEnv(SimulatorAccess, VectorEnv):
    """``num_envs`` independent users in one world, stepped together.

    Sub-env ``i`` reset with ``seed=s`` meets exactly the user that ``gym.make(id)`` meets with
    ``seed=s + i``, and follows the same trajectory under the same actions, whatever ``num_envs`` (batch
    invariance). After a sub-env's episode ends, the next ``step`` starts its next user (its action is
    ignored, its reward is 0).
    See :class:`recoworld.envs.single.RecoWorldEnv` for the world, spaces and rewards.
    """

    metadata = {"autoreset_mode": AutoresetMode.NEXT_STEP, "render_modes": []}

    def __init__(
        self,
        num_envs: int = 1,
        *,
        mode: str = "lifetime",
        config: WorldConfig | None = None,
        user_model: UserModelFactory | None = None,
        num_requests: int = 100,
        **overrides: Any,
    ):
        if not isinstance(num_envs, int) or num_envs < 1:
            raise ValueError(f"num_envs: must be a positive integer, got {num_envs!r}")
        self.config = make_config(config, **overrides)
        self.sim = Simulator(
            self.config, num_envs, mode=mode, num_requests=num_requests, user_model=user_model
        )
        self.num_envs = num_envs
        self.single_observation_space = self.sim.single_observation_space
        self.single_action_space = slate_space(self.config)
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.action_space = batch_space(self.single_action_space, num_envs)
        self._autoreset = np.zeros(num_envs, dtype=bool)
        self._started = False

    def reset(self, *, seed: int | list[int] | None = None, options: dict | None = None):
        super().reset(seed=seed)
        n = self.num_envs
        if seed is None:
            seeds = self.np_random.integers(_SEED_BOUND, size=n)
        elif isinstance(seed, (int, np.integer)):
            seeds = int(seed) + np.arange(n)
        else:
            seeds = np.asarray(seed, dtype=np.int64)
            if seeds.shape != (n,):
                raise ValueError(f"seed: expected an int or {n} seeds, got {len(seeds)}")
        self.sim.reset(self.sim.rows, seeds.astype(np.int64))
        self._autoreset[:] = False
        self._started = True
        return self.sim.observe(), {}

    def step(self, actions):
        if not self._started:
            raise RuntimeError("call reset() before step()")
        restart = np.flatnonzero(self._autoreset)  # their actions are ignored
        slates, replaced = self.sim.validate(actions, ignored=restart)
        result = self.sim.step(slates, replaced, restart=restart)
        mask = np.ones(self.num_envs, dtype=bool)
        if restart.size:
            for value in (result.reward, result.terminated, result.truncated):
                value[restart] = 0
            mask[restart] = False
        self._autoreset = result.terminated | result.truncated
        info = dict(result.info)
        info.update({"_" + key: mask for key in result.info})
        return self.sim.observe(), result.reward, result.terminated, result.truncated, info


def lifetime_vector_env(num_envs: int = 1, **kwargs: Any) -> RecoWorldVectorEnv:
    return RecoWorldVectorEnv(num_envs, mode="lifetime", **kwargs)


def session_vector_env(num_envs: int = 1, **kwargs: Any) -> RecoWorldVectorEnv:
    return RecoWorldVectorEnv(num_envs, mode="session", **kwargs)


def bandit_vector_env(num_envs: int = 1, **kwargs: Any) -> RecoWorldVectorEnv:
    env = RecoWorldVectorEnv(num_envs, mode="bandit", **kwargs)
    if env.config.slate_size == 1:
        from gymnasium import spaces

        env.single_action_space = spaces.Discrete(env.config.num_candidates)
        env.action_space = batch_space(env.single_action_space, num_envs)
    return env


__all__ = ["RecoWorldVectorEnv", "InvalidActionError"]
