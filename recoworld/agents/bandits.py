"""Bandits: ε-greedy and UCB1 over topic arms, LinUCB and linear Thompson sampling over user ⊗ item features.

All four learn from the examined slots of every row of a batch (clicks by default). ε-greedy and UCB1 keep
per-topic arm statistics per user (``scope="user"``, shrunk toward the global per-topic statistics, reset
when a
row starts a new user's life) or only globally (``scope="global"``). LinUCB and LinTS share one Bayesian
linear
model across all users over the features of :func:`recoworld.agents.features.pair_features`; its posterior is
updated with rank-one (Sherman–Morrison) steps, or, for batches larger than the feature dimension, by an exact
Cholesky re-inversion of the accumulated precision (the same posterior, cheaper).
"""

from __future__ import annotations

import numpy as np

from .base import (
    BaseRecommender,
    Info,
    Observation,
    ObsSpec,
    diversified_top_k,
    feedback_mask,
    new_episode_rows,
    top_k,
)
from .features import Featurizer, feature_dim, slot_targets

# ----------------------------------------------------------------------------------------------- linear model


class BayesLinear:
    """Bayesian linear regression ``y = xᵀθ + ε``, ``ε ~ N(0, σ²)``, prior ``θ ~ N(0, σ²/λ · I)``.

    Posterior: ``θ | data ~ N(A⁻¹b, σ² A⁻¹)`` with ``A = λI + Σ w x xᵀ`` and ``b = Σ w x y`` (``w`` optional
    per-observation weights). ``A`` and ``A⁻¹`` are both kept; ``A⁻¹`` is updated by Sherman–Morrison for
    small
    batches and re-computed from ``A`` (Cholesky) for batches of more than ``dim`` rows.
    """

    def __init__(self, dim: int, prior_precision: float = 1.0, noise_variance: float = 1.0):
        if dim < 1:
            raise ValueError(f"dim must be positive, got {dim}")
        if prior_precision <= 0 or noise_variance <= 0:
            raise ValueError("prior_precision and noise_variance must be positive")
        self.dim = int(dim)
        self.prior_precision = float(prior_precision)
        self.noise_variance = float(noise_variance)
        self.A = np.eye(self.dim) * self.prior_precision
        self.A_inv = np.eye(self.dim) / self.prior_precision
        self.b = np.zeros(self.dim)
        self.theta = np.zeros(self.dim)
        self.count = 0
        self._chol = None

    def sherman_morrison(self, x: np.ndarray, y: float, w: float = 1.0) -> None:
        """Rank-one update with one observation: ``A⁻¹ ← A⁻¹ − w A⁻¹x xᵀA⁻¹ / (1 + w xᵀA⁻¹x)``."""
        x = np.asarray(x, dtype=np.float64)
        ax = self.A_inv @ x
        self.A_inv -= (w / (1.0 + w * (x @ ax))) * np.outer(ax, ax)
        self.A += w * np.outer(x, x)
        self.b += w * y * x
        self.count += 1
        self._chol = None

    def update(self, X: np.ndarray, y: np.ndarray, w: np.ndarray | None = None) -> None:
        """Add observations ``X`` (m, d), targets ``y`` (m,) and optional weights ``w`` (m,)."""
        X = np.asarray(X, dtype=np.float64).reshape(-1, self.dim)
        y = np.asarray(y, dtype=np.float64).reshape(-1)
        m = X.shape[0]
        if m == 0:
            return
        w = np.ones(m) if w is None else np.asarray(w, dtype=np.float64).reshape(-1)
        if m <= self.dim:
            for i in range(m):
                self.sherman_morrison(X[i], y[i], w[i])
        else:
            self.A += (X * w[:, None]).T @ X
            self.b += X.T @ (w * y)
            self.count += m
            self._reinvert()
        self.A_inv = 0.5 * (self.A_inv + self.A_inv.T)
        self.theta = self.A_inv @ self.b

    def _reinvert(self) -> None:
        L = np.linalg.cholesky(self.A)
        L_inv = np.linalg.solve(L, np.eye(self.dim))
        self.A_inv = L_inv.T @ L_inv
        self._chol = None

    @property
    def covariance(self) -> np.ndarray:
        return self.noise_variance * self.A_inv

    def cov_cholesky(self) -> np.ndarray:
        """Lower Cholesky factor of ``A⁻¹`` (cached)."""
        if self._chol is None:
            self._chol = np.linalg.cholesky(self.A_inv + 1e-12 * np.eye(self.dim))
        return self._chol

    def mean(self, X: np.ndarray) -> np.ndarray:
        return X @ self.theta

    def width(self, X: np.ndarray) -> np.ndarray:
        """``sqrt(xᵀA⁻¹x)`` for every row of ``X`` (..., d)."""
        flat = X.reshape(-1, self.dim)
        quad = np.einsum("md,md->m", flat @ self.A_inv, flat)
        return np.sqrt(np.maximum(quad, 0.0)).reshape(X.shape[:-1])

    def sample(self, rng: np.random.Generator, size: int, scale: float = 1.0) -> np.ndarray:
        """(size, d) posterior draws of θ (``scale`` inflates the posterior standard deviation)."""
        z = rng.standard_normal((size, self.dim))
        return self.theta + scale * np.sqrt(self.noise_variance) * z @ self.cov_cholesky().T


class _LinearBandit(BaseRecommender):
    def __init__(
        self,
        *,
        slate_size: int = 10,
        seed: int | None = None,
        spec: ObsSpec | None = None,
        prior_precision: float = 1.0,
        noise_variance: float = 0.25,
        target: str = "click",
        use_exposure: bool = True,
        diversity: float = 1.0,
    ):
        if target not in ("click", "watch", "log_watch"):
            raise ValueError(f"target must be one of ('click', 'watch', 'log_watch'), got {target!r}")
        self.prior_precision = prior_precision
        self.noise_variance = noise_variance
        self.target = target
        self.model: BayesLinear | None = None
        self.features = Featurizer(use_exposure)
        self.diversity = float(diversity)
        super().__init__(slate_size=slate_size, seed=seed, spec=spec)

    def _act(self, obs: Observation) -> np.ndarray:
        return diversified_top_k(self._score(obs), obs["candidate_topic"], self.slate_size, self.diversity)

    def _reset_state(self) -> None:
        self.model = None
        if self.spec is not None:
            self._build(self.spec)

    def _reset_users(self) -> None:
        self.features.reset()

    def _build(self, spec: ObsSpec) -> None:
        self.model = BayesLinear(feature_dim(spec.embedding_dim), self.prior_precision, self.noise_variance)

    def _check(self, obs: Observation) -> None:
        super()._check(obs)
        if self.model is None:
            self._build(self.spec)

    def _update(self, obs: Observation, action: np.ndarray, reward: np.ndarray, info: Info) -> None:
        self._check(obs)
        n, k = action.shape
        mask = feedback_mask(info, n, k)
        if not mask.any():
            return
        clicked = np.asarray(info["clicked"], dtype=bool).reshape(n, k) & mask
        if self.learning:
            rows = np.flatnonzero(mask.any(axis=1))
            X = self.features.slots(obs, action, rows)
            y = slot_targets(info, self.target, n, k)[rows]
            m = mask[rows]
            self.model.update(X[m], y[m])
        self.features.record(obs, action, clicked, mask)


class LinUCB(_LinearBandit):
    """LinUCB (Li et al. 2010) with a shared model: score = ``xᵀθ̂ + alpha·sqrt(xᵀA⁻¹x)``; slate = top K."""

    name = "linucb"

    def __init__(self, *, alpha: float = 0.5, **kwargs):
        self.alpha = float(alpha)
        super().__init__(**kwargs)

    def _score(self, obs: Observation) -> np.ndarray:
        X = self.features.candidates(obs)
        return self.model.mean(X) + self.alpha * self.model.width(X)


class LinTS(_LinearBandit):
    """Linear Thompson sampling (Agrawal & Goyal 2013): one posterior draw of θ per user and request; slate =
    the top K candidates under that draw. ``scale`` inflates the posterior standard deviation."""

    name = "lints"

    def __init__(self, *, scale: float = 1.0, **kwargs):
        self.scale = float(scale)
        super().__init__(**kwargs)

    def _score(self, obs: Observation) -> np.ndarray:
        X = self.features.candidates(obs)
        theta = self.model.sample(self.rng, X.shape[0], self.scale)  # (N, d)
        return np.einsum("ncd,nd->nc", X, theta)


# ----------------------------------------------------------------------------------------------- topic arms


class _TopicBandit(BaseRecommender):
    """Per-topic arm statistics (examined → pulls, clicked → successes), per user and/or global."""

    def __init__(
        self,
        *,
        slate_size: int = 10,
        seed: int | None = None,
        spec: ObsSpec | None = None,
        scope: str = "user",
        prior_strength: float = 2.0,
        tie_break: float = 1e-3,
    ):
        if scope not in ("user", "global"):
            raise ValueError(f"scope must be 'user' or 'global', got {scope!r}")
        self.scope = scope
        self.prior_strength = float(prior_strength)
        self.tie_break = float(tie_break)
        super().__init__(slate_size=slate_size, seed=seed, spec=spec)

    def _reset_state(self) -> None:
        self.global_pulls = self.global_wins = None

    def _reset_users(self) -> None:
        self.user_pulls = self.user_wins = None

    def _ensure(self, obs: Observation) -> None:
        n, g = obs["topic_histogram"].shape
        if self.global_pulls is None or self.global_pulls.shape[0] != g:
            self.global_pulls, self.global_wins = np.zeros(g), np.zeros(g)
        if self.user_pulls is None or self.user_pulls.shape != (n, g):
            self.user_pulls, self.user_wins = np.zeros((n, g)), np.zeros((n, g))
        fresh = new_episode_rows(obs)
        self.user_pulls[fresh] = 0.0
        self.user_wins[fresh] = 0.0

    def _arm_stats(self) -> tuple[np.ndarray, np.ndarray]:
        """(N, G) posterior mean click rate and effective pull count of each topic arm."""
        gmean = (self.global_wins + 1.0) / (self.global_pulls + 2.0)
        if self.scope == "global":
            return np.broadcast_to(gmean, self.user_pulls.shape), np.broadcast_to(
                self.global_pulls + 1.0, self.user_pulls.shape
            )
        m = self.prior_strength
        mean = (self.user_wins + m * gmean) / (self.user_pulls + m)
        return mean, self.user_pulls + m

    def _candidate_scores(self, obs: Observation, arm_index: np.ndarray) -> np.ndarray:
        topics = np.asarray(obs["candidate_topic"], dtype=np.int64)
        pop = np.asarray(obs["candidate_popularity"], dtype=np.float64)
        return np.take_along_axis(arm_index, topics, axis=1) + self.tie_break * pop

    def _update(self, obs: Observation, action: np.ndarray, reward: np.ndarray, info: Info) -> None:
        self._ensure(obs)
        n, k = action.shape
        mask = feedback_mask(info, n, k)
        clicks = np.asarray(info["clicked"], dtype=bool).reshape(n, k) & mask
        topics = np.take_along_axis(np.asarray(obs["candidate_topic"], dtype=np.int64), action, axis=1)
        g = self.global_pulls.shape[0]
        flat = (np.arange(n)[:, None] * g + topics).ravel()
        pulls = np.bincount(flat, weights=mask.ravel().astype(float), minlength=n * g).reshape(n, g)
        wins = np.bincount(flat, weights=clicks.ravel().astype(float), minlength=n * g).reshape(n, g)
        self.user_pulls += pulls
        self.user_wins += wins
        if self.learning:
            self.global_pulls += pulls.sum(axis=0)
            self.global_wins += wins.sum(axis=0)


class EpsilonGreedy(_TopicBandit):
    """ε-greedy over topic arms: the greedy slate ranks candidates by their topic's estimated click rate
    (popularity breaks ties); each slot is independently replaced, with probability ``epsilon``, by a
    uniformly
    random unused candidate."""

    name = "egreedy"

    def __init__(self, *, epsilon: float = 0.1, **kwargs):
        if not 0.0 <= epsilon <= 1.0:
            raise ValueError(f"epsilon must lie in [0, 1], got {epsilon}")
        self.epsilon = float(epsilon)
        super().__init__(**kwargs)

    def _score(self, obs: Observation) -> np.ndarray:
        self._ensure(obs)
        mean, _ = self._arm_stats()
        return self._candidate_scores(obs, mean)

    def _act(self, obs: Observation) -> np.ndarray:
        scores = self._score(obs)
        n, c = scores.shape
        k = self.slate_size
        order = np.argsort(-scores, axis=1, kind="stable")
        explore = self.rng.random((n, k)) < self.epsilon
        random_order = np.argsort(self.rng.random((n, c)), axis=1)
        slate = order[:, :k].copy()
        for i in np.flatnonzero(explore.any(axis=1)):
            used = set(slate[i, ~explore[i]].tolist())
            pool = [j for j in random_order[i].tolist() if j not in used]
            slate[i, explore[i]] = pool[: int(explore[i].sum())]
        return slate


class UCB1(_TopicBandit):
    """UCB1 (Auer et al. 2002) over topic arms: index = mean + ``c``·sqrt(2 ln t / n); slate = top K."""

    name = "ucb"

    def __init__(self, *, c: float = 1.0, **kwargs):
        self.c = float(c)
        super().__init__(**kwargs)

    def _score(self, obs: Observation) -> np.ndarray:
        self._ensure(obs)
        mean, pulls = self._arm_stats()
        t = pulls.sum(axis=1, keepdims=True)
        index = mean + self.c * np.sqrt(2.0 * np.log(np.maximum(t, 2.0)) / pulls)
        return self._candidate_scores(obs, index)


__all__ = ["BayesLinear", "EpsilonGreedy", "LinTS", "LinUCB", "UCB1", "top_k"]
