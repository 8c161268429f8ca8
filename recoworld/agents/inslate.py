"""In-slate Thompson sampling (Eide, Leslie & Frigessi, "Dynamic slate recommendation with gated recurrent
units
and Thompson sampling", 2021) and its greedy counterpart.

**Model.** A user's utility for a candidate is linear in the user ⊗ item features of
:func:`recoworld.agents.features.pair_features`, ``z_ui = θᵀx_ui``, with one θ shared by all users. A slate
response is a choice among the items actually shown (those the user examined) plus a *no-click* option whose
logit depends on the slate length ``L``: ``z_0 = w_0 + w_1 log L``. The likelihood of a click on item ``j`` is
the softmax ``exp(z_j) / (exp(z_0) + Σ_shown exp(z_i))``; a slate without clicks is a choice of the no-click
option; a slate with several clicks (cascade users) contributes one choice event per click.

**Posterior.** Online Laplace approximation over φ = (θ, w_0, w_1): the previous posterior is the prior of the
next batch; the new mean is the MAP (a few Newton steps — the log-likelihood is concave) and the new precision
is the prior precision plus the Hessian of the negative log-likelihood at the MAP. ``posterior="laplace"``
keeps the full precision matrix, ``posterior="diagonal"`` only its diagonal (Chapelle & Li's online diagonal
Laplace).

**Slates.** For a slate of K: draw K posterior samples, rank the candidates under each, and fill the slate
rank-major, draw-minor — every draw's first choice, then every draw's second, …, skipping candidates already
placed. ``greedy=True`` ranks by the posterior mean instead (the greedy counterpart).
"""

from __future__ import annotations

import numpy as np

from .base import BaseRecommender, Info, Observation, ObsSpec, diversified_top_k, feedback_mask
from .features import Featurizer, feature_dim


def rank_major_fill(
    rankings: np.ndarray, k: int, num_candidates: int | None = None, fallback: np.ndarray | None = None
) -> np.ndarray:
    """Fill slates from per-draw rankings, rank-major and draw-minor, skipping duplicates.

    ``rankings`` (N, D, L): for each row and draw, candidates in decreasing order of that draw's preference
    (L = C for full rankings). The sequence visited for a row is ``r[0,0], r[1,0], …, r[D-1,0], r[0,1], …``;
    the slate is its first ``k`` distinct candidates, in visiting order. For partial rankings (L < C) pass
    ``num_candidates``; candidates absent from every draw's list come last, ordered by ``fallback`` (N, C)
    ranks (by index when omitted). Returns (N, k) int64.
    """
    rankings = np.asarray(rankings, dtype=np.int64)
    n, d, length = rankings.shape
    c = length if num_candidates is None else int(num_candidates)
    # rank of every candidate under every draw (inverse permutation); absent candidates rank after the list
    if fallback is None:
        fallback = np.broadcast_to(np.arange(c), (n, c))
    rank = np.broadcast_to((length + np.asarray(fallback, dtype=np.int64))[:, None, :], (n, d, c)).copy()
    np.put_along_axis(rank, rankings, np.broadcast_to(np.arange(length), (n, d, length)), axis=2)
    # first visit of candidate j: min over draws of rank * D + draw  (distinct per candidate)
    first = (rank * d + np.arange(d)[None, :, None]).min(axis=1)  # (N, C)
    return np.argsort(first, axis=1, kind="stable")[:, :k].astype(np.int64)


class SlateChoicePosterior:
    """Online Laplace posterior of a multinomial-logit slate choice model with a length-dependent no-click."""

    def __init__(
        self,
        dim: int,
        prior_precision: float = 1.0,
        posterior: str = "laplace",
        newton_steps: int = 3,
        noclick_prior_mean: tuple[float, float] = (1.0, 0.0),
    ):
        if posterior not in ("laplace", "diagonal"):
            raise ValueError(f"posterior must be 'laplace' or 'diagonal', got {posterior!r}")
        self.dim = int(dim) + 2  # θ, then w0, w1
        self.posterior = posterior
        self.newton_steps = int(newton_steps)
        self.mean = np.zeros(self.dim)
        self.mean[-2:] = noclick_prior_mean
        if posterior == "laplace":
            self.precision = np.eye(self.dim) * prior_precision
        else:
            self.precision = np.full(self.dim, float(prior_precision))
        self._chol = None

    # ------------------------------------------------------------------ data layout
    @staticmethod
    def options(X: np.ndarray, shown: np.ndarray) -> np.ndarray:
        """(R, K + 1, D) option features: the no-click option first ([0…0, 1, log L]), then the slots."""
        r, k, d = X.shape
        out = np.zeros((r, k + 1, d + 2))
        out[:, 1:, :d] = X
        out[:, 0, d] = 1.0
        out[:, 0, d + 1] = np.log(np.maximum(shown.sum(axis=1), 1))
        return out

    @staticmethod
    def _probs(opts: np.ndarray, avail: np.ndarray, phi: np.ndarray) -> np.ndarray:
        z = opts @ phi
        z = np.where(avail, z, -np.inf)
        z -= z.max(axis=1, keepdims=True)
        p = np.exp(z)
        return p / p.sum(axis=1, keepdims=True)

    def neg_log_likelihood(
        self, phi: np.ndarray, opts: np.ndarray, avail: np.ndarray, counts: np.ndarray
    ) -> float:
        """Negative log-likelihood; ``counts`` (R, K + 1) is how often each option was chosen."""
        z = np.where(avail, opts @ phi, -np.inf)
        zmax = z.max(axis=1, keepdims=True)
        lse = (zmax + np.log(np.exp(z - zmax).sum(axis=1, keepdims=True)))[:, 0]
        chosen = np.where(counts > 0, np.where(avail, opts @ phi, 0.0) * counts, 0.0).sum(axis=1)
        return float((counts.sum(axis=1) * lse - chosen).sum())

    def grad_hess(self, phi: np.ndarray, opts: np.ndarray, avail: np.ndarray, counts: np.ndarray):
        """Gradient (D,) and Hessian (D, D) of the negative log-likelihood."""
        p = self._probs(opts, avail, phi)  # (R, O)
        ne = counts.sum(axis=1)  # events per row
        xbar = np.matmul(p[:, None, :], opts)[:, 0]  # (R, D) expected option features
        flat = opts.reshape(-1, opts.shape[-1])
        grad = ne @ xbar - counts.reshape(-1) @ flat
        w = (ne[:, None] * p).reshape(-1)
        hess = np.einsum("od,oe->de", flat * w[:, None], flat, optimize=True)
        hess -= np.einsum("rd,re->de", xbar * ne[:, None], xbar, optimize=True)
        return grad, hess

    def update(self, X: np.ndarray, shown: np.ndarray, clicks: np.ndarray) -> None:
        """One batch: ``X`` (R, K, d) features of the shown slots, ``shown`` (R, K) bool (the choice set),
        ``clicks`` (R, K) bool (clicked slots, within ``shown``)."""
        keep = shown.any(axis=1)
        if not keep.any():
            return
        X, shown, clicks = X[keep], shown[keep], clicks[keep] & shown[keep]
        opts = self.options(X, shown)
        avail = np.concatenate([np.ones((len(X), 1), dtype=bool), shown], axis=1)
        counts = np.concatenate([(~clicks.any(axis=1))[:, None], clicks], axis=1).astype(np.float64)
        prior_mean, prior_prec = self.mean, self.precision
        full = self.posterior == "laplace"
        phi = prior_mean.copy()
        for _ in range(self.newton_steps):
            g, h = self.grad_hess(phi, opts, avail, counts)
            if full:
                g = g + prior_prec @ (phi - prior_mean)
                h = h + prior_prec
                phi = phi - np.linalg.solve(h, g)
            else:
                g = g + prior_prec * (phi - prior_mean)
                phi = phi - g / (np.diag(h) + prior_prec)
        _, h = self.grad_hess(phi, opts, avail, counts)
        self.mean = phi
        self.precision = (prior_prec + h) if full else (prior_prec + np.maximum(np.diag(h), 0.0))
        if full:
            self.precision = 0.5 * (self.precision + self.precision.T)
        self._chol = None

    def covariance(self) -> np.ndarray:
        if self.posterior == "laplace":
            return np.linalg.inv(self.precision)
        return np.diag(1.0 / self.precision)

    def sample(self, rng: np.random.Generator, shape: tuple[int, ...], scale: float = 1.0) -> np.ndarray:
        """Posterior draws of φ, shape (*shape, D)."""
        z = rng.standard_normal((*shape, self.dim))
        if self.posterior == "diagonal":
            return self.mean + scale * z / np.sqrt(self.precision)
        if self._chol is None:  # precision = L Lᵀ  ⇒  draw = mean + L⁻ᵀ z
            L = np.linalg.cholesky(self.precision)
            self._chol = np.linalg.solve(L, np.eye(self.dim)).T  # L⁻ᵀ
        return self.mean + scale * z @ self._chol.T


class InSlateTS(BaseRecommender):
    """In-slate Thompson sampling over a Bayesian slate-choice model; ``greedy=True`` is its greedy
    counterpart.

    Arguments: ``posterior`` ("laplace" | "diagonal"), ``prior_precision``, ``scale`` (inflates the posterior
    standard deviation of the draws), ``draws`` (posterior samples per slate, default K), ``newton_steps``.
    """

    name = "inslate_ts"

    def __init__(
        self,
        *,
        slate_size: int = 10,
        seed: int | None = None,
        spec: ObsSpec | None = None,
        greedy: bool = False,
        posterior: str = "laplace",
        prior_precision: float = 1.0,
        scale: float = 1.0,
        draws: int | None = None,
        newton_steps: int = 3,
        use_exposure: bool = True,
        diversity: float = 1.0,
    ):
        self.greedy = bool(greedy)
        self.diversity = float(diversity)
        self.posterior_kind = posterior
        self.prior_precision = float(prior_precision)
        self.scale = float(scale)
        self.draws = draws
        self.newton_steps = int(newton_steps)
        self.posterior: SlateChoicePosterior | None = None
        self.features = Featurizer(use_exposure)
        if greedy:
            self.name = "inslate_greedy"
        super().__init__(slate_size=slate_size, seed=seed, spec=spec)

    def _reset_state(self) -> None:
        self.posterior = None
        if self.spec is not None:
            self._build(self.spec)

    def _reset_users(self) -> None:
        self.features.reset()

    def _build(self, spec: ObsSpec) -> None:
        self.posterior = SlateChoicePosterior(
            feature_dim(spec.embedding_dim), self.prior_precision, self.posterior_kind, self.newton_steps
        )

    def _check(self, obs: Observation) -> None:
        super()._check(obs)
        if self.posterior is None:
            self._build(self.spec)

    def _score(self, obs: Observation) -> np.ndarray:
        """Posterior-mean utilities (N, C)."""
        X = self.features.candidates(obs)
        return X @ self.posterior.mean[:-2]

    def _act(self, obs: Observation) -> np.ndarray:
        topics = np.asarray(obs["candidate_topic"], dtype=np.int64)
        k = self.slate_size
        if self.greedy:
            return diversified_top_k(self._score(obs), topics, k, self.diversity)
        X = self.features.candidates(obs)
        n, c, _ = X.shape
        d = self.draws or k
        theta = self.posterior.sample(self.rng, (n, d), self.scale)[..., :-2]  # (N, D, f)
        scores = np.einsum("ncf,nkf->nkc", X, theta)
        if self.diversity <= 0:
            return rank_major_fill(np.argsort(-scores, axis=2, kind="stable"), k)
        # every draw proposes a topic-diversified top-k list; the lists are merged rank-major, draw-minor
        lists = diversified_top_k(scores.reshape(n * d, c), np.repeat(topics, d, axis=0), k, self.diversity)
        mean_rank = np.argsort(np.argsort(-(X @ self.posterior.mean[:-2]), axis=1, kind="stable"), axis=1)
        return rank_major_fill(lists.reshape(n, d, k), k, num_candidates=c, fallback=mean_rank)

    def _update(self, obs: Observation, action: np.ndarray, reward: np.ndarray, info: Info) -> None:
        self._check(obs)
        n, k = action.shape
        shown = feedback_mask(info, n, k)
        if not shown.any():
            return
        clicked = np.asarray(info["clicked"], dtype=bool).reshape(n, k) & shown
        if self.learning:
            rows = np.flatnonzero(shown.any(axis=1))
            X = self.features.slots(obs, action, rows)
            self.posterior.update(X, shown[rows], clicked[rows])
        self.features.record(obs, action, clicked, shown)
