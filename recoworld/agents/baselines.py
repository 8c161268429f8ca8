"""Baselines: uniformly random slates, most-popular, and the oracle-greedy upper reference."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..config import UserConfig
from .base import BaseRecommender, Observation, ObsSpec, top_k


class RandomRecommender(BaseRecommender):
    """K distinct candidates drawn uniformly at random per row."""

    name = "random"

    def _act(self, obs: Observation) -> np.ndarray:
        n, c = obs["candidate_topic"].shape
        return top_k(self.rng.random((n, c)), self.slate_size)

    def _score(self, obs: Observation) -> np.ndarray:
        n, c = obs["candidate_topic"].shape
        return self.rng.random((n, c))


class PopularRecommender(BaseRecommender):
    """The K most popular candidates (``candidate_popularity``), ties broken by candidate index."""

    name = "popular"

    def _score(self, obs: Observation) -> np.ndarray:
        return np.asarray(obs["candidate_popularity"], dtype=np.float64)


class OracleRecommender(BaseRecommender):
    """Greedy on the ground truth: an upper reference that sees what no real recommender sees, never a
    competitor.

    Scores come, in order of preference, from

    1. an observation key ``candidate_utility`` (N, C) if the environment provides one;
    2. ``utility_fn(observation) -> (N, C)`` if given (e.g. a closure over the environment's user model);
    3. the latent state (``observe_latent=True``; key ``latent`` = interests ρ, boredom, ν, fatigue, patience,
       satisfaction), plugged into the utility of DESIGN.md §3 with the user model's weights:
       ``a·log ρ[g] + β_pop·w_pop·popularity + η(2ν − 1)(2·nov − 1) − β_b·boredom[g]`` (an approximation).

    With ``diversify=True`` (default) the slate is filled greedily and each pick adds the boredom it would
    cause
    (``boredom_gain_click``) to its topic before the next slot is chosen, which avoids one-topic slates.
    """

    name = "oracle"

    def __init__(
        self,
        *,
        slate_size: int = 10,
        seed: int | None = None,
        spec: ObsSpec | None = None,
        utility_fn: Callable[[Observation], np.ndarray] | None = None,
        user_config: UserConfig | None = None,
        popularity_scale: float = 3.0,
        diversify: bool = True,
    ):
        self.utility_fn = utility_fn
        self.user_config = user_config or UserConfig()
        self.popularity_scale = float(popularity_scale)
        self.diversify = bool(diversify)
        super().__init__(slate_size=slate_size, seed=seed, spec=spec)

    @property
    def requires_latent(self) -> bool:
        """True when the oracle reads the ``latent`` observation (needs ``observe_latent``)."""
        return self.utility_fn is None

    def _check(self, obs: Observation) -> None:
        super()._check(obs)
        if "candidate_utility" not in obs and self.utility_fn is None and "latent" not in obs:
            raise ValueError(
                "the oracle needs the latent state: make the environment with observe_latent=True "
                "(or pass utility_fn=...)"
            )

    def _latent_parts(self, obs: Observation):
        lat = np.asarray(obs["latent"], dtype=np.float64)
        g = obs["topic_histogram"].shape[1]
        return lat[:, :g], lat[:, g : 2 * g], lat[:, 2 * g]

    def _score(self, obs: Observation) -> np.ndarray:
        if "candidate_utility" in obs:
            return np.asarray(obs["candidate_utility"], dtype=np.float64)
        if self.utility_fn is not None:
            return np.asarray(self.utility_fn(obs), dtype=np.float64)
        uc = self.user_config
        rho, boredom, nu = self._latent_parts(obs)
        topics = np.asarray(obs["candidate_topic"], dtype=np.int64)
        nov = np.asarray(obs["candidate_novelty"], dtype=np.float64)
        pop = np.asarray(obs["candidate_popularity"], dtype=np.float64)
        interest = np.take_along_axis(rho, topics, axis=1)
        bored = np.take_along_axis(boredom, topics, axis=1)
        return (
            uc.affinity_weight * np.log(np.maximum(interest, 1e-6))
            + uc.popularity_weight * self.popularity_scale * pop
            + uc.novelty_weight * (2.0 * nu[:, None] - 1.0) * (2.0 * nov - 1.0)
            - uc.boredom_weight * bored
        )

    def _act(self, obs: Observation) -> np.ndarray:
        scores = self._score(obs)
        if not self.diversify:
            return top_k(scores, self.slate_size)
        n, c = scores.shape
        topics = np.asarray(obs["candidate_topic"], dtype=np.int64)
        uc = self.user_config
        scores = scores.copy()
        slate = np.empty((n, self.slate_size), dtype=np.int64)
        rows = np.arange(n)
        for k in range(self.slate_size):
            pick = np.argmax(scores, axis=1)
            slate[:, k] = pick
            p_click = 1.0 / (1.0 + np.exp(-(scores[rows, pick] - uc.click_threshold)))
            same = topics == topics[rows, pick][:, None]
            scores -= uc.boredom_weight * uc.boredom_gain_click * p_click[:, None] * same
            scores[rows, pick] = -np.inf
        return slate
