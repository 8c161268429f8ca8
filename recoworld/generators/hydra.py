"""HYDRA preference generator (Mungari et al., KDD 2025), vectorised in numpy; the maths is in HYDRA.md.

``generate(config, seed)`` draws communities, latent topic mixtures (ρ for users, α for items), engagement ϱ
and popularity φ, then realises implicit feedback ``X_ui = 1[U_ui < T_ui]`` with
``T_ui = λ (δ A_ui + (1 − δ) 0.98) ϱ_u^ζ φ_i^ξ`` (capped, floored), ``A = ρ αᵀ``.

Randomness: ``SeedSequence(seed).spawn(7)`` gives independent streams for users, items, engagement,
popularity, realisation, top-up and jitter. Users are handled in granules of :data:`GRANULE` consecutive
users: each granule has its own child stream and its own matrix product, so every output is identical for
any ``chunk_size`` (chunks are whole granules; the chunk size only bounds memory).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from functools import cached_property

import numpy as np

from recoworld.generators.longtail import LongTail

GRANULE = 128  # users per matrix product and per child stream; large enough to keep BLAS efficient
_NOISE_MEAN, _CAP, _FLOOR, _JITTER_SD = 0.98, 0.99, 1e-9, 1e-5
_USER_BASE, _USER_SCALE, _ITEM_BASE, _ITEM_SCALE = 1.0, 10.0, 100.0, 0.1
_TARGET_RTOL, _TARGET_MAX_EVALS = 1e-3, 60
_TINY = 1e-100  # latent entries below are set to 0: subnormal products would slow the matrix product ~10x

Mixture = tuple[tuple[LongTail, float], ...]


def _check_int(name: str, value, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        kind = "a positive integer" if low == 1 else f"an integer >= {low}"
        raise ValueError(f"{name} must be {kind}, got {value!r}")


def _check_real(name: str, value, low: float, high: float = math.inf, *, open_low: bool = False) -> None:
    ok = isinstance(value, (int, float, np.floating, np.integer)) and not isinstance(value, bool)
    ok = ok and math.isfinite(value) and (value > low if open_low else value >= low) and value <= high
    if not ok:
        interval = f"{'(' if open_low else '['}{low:g}, {high:g}]"
        raise ValueError(f"{name} must be a finite number in {interval}, got {value!r}")


def _check_choice(name: str, value, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")


def _check_shares(name: str, shares: tuple[float, ...], num_attrs: int) -> None:
    if len(shares) == 0 or not all(math.isfinite(s) and s > 0.0 for s in shares):
        raise ValueError(f"{name} must be a non-empty tuple of positive shares, got {shares}")
    if abs(math.fsum(shares) - 1.0) > 1e-9:
        raise ValueError(f"{name} must sum to 1, got sum {math.fsum(shares)!r}")
    if len(shares) > num_attrs:
        raise ValueError(f"{name}: {len(shares)} groups need num_attrs >= {len(shares)}, got {num_attrs}")


def _as_tuple(name: str, value, convert) -> tuple:
    try:
        return tuple(convert(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a tuple, got {value!r}") from None


def _check_tail(name: str, spec, bound: int) -> None:
    if not isinstance(spec, LongTail):
        raise ValueError(f"{name} must be a LongTail, got {type(spec).__name__}")
    try:
        spec.cdf(spec.x_min, bound)  # checks the support [x_min, min(bound, x_max)] and its mass
    except ValueError as err:
        raise ValueError(f"{name}: {err}") from None


def _check_mixture(name: str, mixture, bound: int) -> None:
    if len(mixture) == 0:
        raise ValueError(f"{name} must hold at least one (LongTail, weight) pair")
    for entry in mixture:
        if len(entry) != 2:
            raise ValueError(f"{name} entries must be (LongTail, weight) pairs, got {entry!r}")
        _check_tail(name, entry[0], bound)
        _check_real(f"{name} weight", entry[1], 0.0)
    if abs(math.fsum(w for _, w in mixture) - 1.0) > 1e-9:
        raise ValueError(f"{name} weights must sum to 1")


@dataclass(frozen=True)
class HydraConfig:
    """Every HYDRA knob (HYDRA.md, "Parameters"); validated on construction, errors name the field.

    ``mixture="dataset"`` uses ``engagement``/``popularity`` for everyone; ``"per_entity"`` lets each
    user (item) draw its family from ``engagement_mixture`` (``popularity_mixture``), falling back to the
    single family when a mixture is None. ``block_mode``: ``"faithful"`` (ε on the own attribute block,
    clean only for two groups) or ``"own"`` (base concentration on the own block, ε elsewhere). ``cap``:
    ``"faithful"`` (T > 1 → 0.99) or ``"clean"`` (min(T, 0.99)). ``jitter``: Beta jitter of T (mean T,
    sd 1e-5; off by default, the law of one Bernoulli draw is unchanged). ``target_interactions``: solve λ
    so that the realised count, τ top-up included, lands within 0.1% of the target. ``chunk_size`` (users
    per step, rounded up to a multiple of :data:`GRANULE`) bounds memory and never changes the output.
    """

    num_users: int = 6000
    num_items: int = 5000
    num_attrs: int = 64
    engagement: LongTail = LongTail()
    popularity: LongTail = LongTail()
    engagement_mixture: Mixture | None = None
    popularity_mixture: Mixture | None = None
    mixture: str = "dataset"
    zeta: float = 1.2
    xi: float = 1.2
    Lambda: float = 8000.0
    delta: float = 1.0
    tau: int = 1
    user_shares: tuple[float, ...] = (1.0,)
    item_shares: tuple[float, ...] = (1.0,)
    epsilon: float = 0.02
    block_mode: str = "faithful"
    cap: str = "faithful"
    jitter: bool = False
    target_interactions: int | None = None
    chunk_size: int = 1024

    def __post_init__(self) -> None:
        for name in ("num_users", "num_items", "num_attrs", "chunk_size"):
            _check_int(name, getattr(self, name), 1)
        _check_int("tau", self.tau, 0)
        if self.tau > self.num_items:
            raise ValueError(f"tau must be <= num_items ({self.num_items}), got {self.tau}")
        for name in ("user_shares", "item_shares"):
            object.__setattr__(self, name, _as_tuple(name, getattr(self, name), float))
            _check_shares(name, getattr(self, name), self.num_attrs)
        _check_tail("engagement", self.engagement, self.num_items)
        _check_tail("popularity", self.popularity, self.num_users)
        _check_choice("mixture", self.mixture, ("dataset", "per_entity"))
        for name, bound in (("engagement_mixture", self.num_items), ("popularity_mixture", self.num_users)):
            mix = getattr(self, name)
            if mix is None:
                continue
            if self.mixture != "per_entity":
                raise ValueError(f"{name} needs mixture='per_entity', got mixture={self.mixture!r}")
            object.__setattr__(self, name, _as_tuple(name, mix, tuple))
            _check_mixture(name, getattr(self, name), bound)
        _check_real("zeta", self.zeta, 0.0)
        _check_real("xi", self.xi, 0.0)
        _check_real("Lambda", self.Lambda, 0.0, open_low=True)
        _check_real("delta", self.delta, 0.0, 1.0)
        _check_real("epsilon", self.epsilon, 0.0, open_low=True)
        _check_choice("block_mode", self.block_mode, ("faithful", "own"))
        _check_choice("cap", self.cap, ("faithful", "clean"))
        if not isinstance(self.jitter, bool):
            raise ValueError(f"jitter must be a bool, got {self.jitter!r}")
        if self.target_interactions is not None:
            _check_int("target_interactions", self.target_interactions, 1)
            low, high = self.tau * self.num_users, self.num_users * self.num_items
            if not low <= self.target_interactions <= high:
                raise ValueError(
                    f"target_interactions must lie in [tau * num_users, num_users * num_items] = "
                    f"[{low}, {high}], got {self.target_interactions}"
                )


def gini(x) -> float:
    """Gini coefficient of non-negative values (0: all equal; → 1: all mass on one entry)."""
    x = np.sort(np.asarray(x, dtype=float).ravel())
    if x.size == 0 or x[0] < 0.0 or not np.isfinite(x[-1]):
        raise ValueError("x must be a non-empty array of finite non-negative values")
    total = x.sum()
    if total == 0.0:
        return 0.0
    n = x.size
    return float(2.0 * (np.arange(1, n + 1) @ x) / (n * total) - (n + 1) / n)


@dataclass(frozen=True, eq=False)
class HydraWorld:
    """A generated world (arrays are read-only).

    ``Lambda``: the λ used (solved when targeting). ``rho`` (n, f) and ``alpha`` (m, f): topic mixtures
    (rows sum to 1). ``engagement`` ϱ_u = z_u / m and ``popularity`` φ_i = y_i / n, both in (0, 1].
    ``user_population`` / ``item_category``: group labels. ``indptr``/``indices``: CSR interactions (None
    when generated with ``realise=False``).
    """

    config: HydraConfig
    seed: int
    Lambda: float
    rho: np.ndarray = field(repr=False)
    alpha: np.ndarray = field(repr=False)
    engagement: np.ndarray = field(repr=False)
    popularity: np.ndarray = field(repr=False)
    user_population: np.ndarray = field(repr=False)
    item_category: np.ndarray = field(repr=False)
    indptr: np.ndarray | None = field(default=None, repr=False)
    indices: np.ndarray | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        for name in ("rho", "alpha", "engagement", "popularity", "user_population", "item_category"):
            getattr(self, name).setflags(write=False)
        for array in (self.indptr, self.indices):
            if array is not None:
                array.setflags(write=False)

    @property
    def num_users(self) -> int:
        return self.config.num_users

    @property
    def num_items(self) -> int:
        return self.config.num_items

    @cached_property
    def _popularity_factor(self) -> np.ndarray:
        return self.popularity**self.config.xi

    @cached_property
    def _item_weights(self) -> np.ndarray:
        """α_i φ_i^ξ, so one product gives A_ui φ_i^ξ."""
        return self.alpha * self._popularity_factor[:, None]

    def _probability_rows(self, lo: int, hi: int, lam: float) -> np.ndarray:
        """T for users lo..hi-1 (lo on a granule boundary) and all items, capped and floored.

        One matrix product per granule, so a row never depends on how many granules are computed together.
        """
        c = self.config
        out = np.empty((hi - lo, self.num_items))
        for g in range(lo, hi, GRANULE):
            end = min(g + GRANULE, hi)
            np.matmul(self.rho[g:end], self._item_weights.T, out=out[g - lo : end - lo])
        if c.delta < 1.0:
            out *= c.delta
            out += (1.0 - c.delta) * _NOISE_MEAN * self._popularity_factor
        out *= (lam * self.engagement[lo:hi] ** c.zeta)[:, None]
        if c.cap == "faithful":
            np.putmask(out, out > 1.0, _CAP)
        else:
            np.minimum(out, _CAP, out=out)
        return np.maximum(out, _FLOOR, out=out)

    def adoption_probability(self, users=None, items=None) -> np.ndarray:
        """T[users][:, items] (default: all), capped and floored, without jitter.

        Bit-identical to the probabilities used in the realisation; cost grows with the number of
        granules that ``users`` touches (each computes a granule's row block over all items).
        """
        users = np.arange(self.num_users) if users is None else np.asarray(users, dtype=np.int64).ravel()
        cols = slice(None) if items is None else np.asarray(items, dtype=np.int64).ravel()
        if users.size and (users.min() < 0 or users.max() >= self.num_users):
            raise ValueError(f"users must lie in [0, {self.num_users}), got {users.min()}..{users.max()}")
        if items is not None and cols.size and (cols.min() < 0 or cols.max() >= self.num_items):
            raise ValueError(f"items must lie in [0, {self.num_items})")
        width = self.num_items if items is None else cols.size
        out = np.empty((users.size, width))
        granule = users // GRANULE
        for g in np.unique(granule):
            rows = np.flatnonzero(granule == g)
            lo = int(g) * GRANULE
            block = self._probability_rows(lo, min(lo + GRANULE, self.num_users), self.Lambda)
            out[rows] = block[users[rows] - lo][:, cols]
        return out

    @property
    def interactions(self) -> tuple[np.ndarray, np.ndarray]:
        """CSR over users: user u's items are ``indices[indptr[u]:indptr[u + 1]]``, sorted."""
        if self.indptr is None or self.indices is None:
            raise ValueError("interactions: this world was generated with realise=False")
        return self.indptr, self.indices

    def user_degrees(self) -> np.ndarray:
        return np.diff(self.interactions[0])

    def item_degrees(self) -> np.ndarray:
        return np.bincount(self.interactions[1], minlength=self.num_items)

    @property
    def num_interactions(self) -> int:
        return int(self.interactions[1].size)

    @property
    def density(self) -> float:
        """nnz / (num_users · num_items)."""
        return self.num_interactions / (self.num_users * self.num_items)

    @property
    def active_density(self) -> float:
        """nnz / (users with ≥ 1 interaction · items with ≥ 1 interaction): the reference's density."""
        active = np.count_nonzero(self.user_degrees()) * np.count_nonzero(self.item_degrees())
        return self.num_interactions / active if active else 0.0

    @property
    def item_coverage(self) -> float:
        """Share of items with at least one interaction."""
        return float(np.count_nonzero(self.item_degrees()) / self.num_items)


def _granule_rng(stream: np.random.SeedSequence, granule: int) -> np.random.Generator:
    """The child stream of ``stream`` that belongs to one granule of users (independent of chunking)."""
    key = (*stream.spawn_key, granule)
    return np.random.default_rng(np.random.SeedSequence(stream.entropy, spawn_key=key))


def _groups(total: int, shares: tuple[float, ...]) -> np.ndarray:
    """Contiguous group labels: ⌊total·η_g⌋ each, the remainder to the last group (nobody is dropped)."""
    sizes = [math.floor(total * s) for s in shares[:-1]]
    return np.repeat(np.arange(len(shares)), [*sizes, total - sum(sizes)])


def _log_concentration(groups: int, num_attrs: int, base: float, epsilon: float, mode: str) -> np.ndarray:
    """(groups, num_attrs) log Dirichlet concentrations of the group-level μ (HYDRA.md step 1)."""
    width = num_attrs // groups
    attrs = np.arange(num_attrs)
    own = (attrs[None, :] // width == np.arange(groups)[:, None]) & (attrs[None, :] < groups * width)
    if mode == "own":
        return np.log(np.where(own, base, epsilon))
    return np.log(np.where(own & (groups > 1), epsilon, base))


def _log_dirichlet(rng: np.random.Generator, log_conc: np.ndarray) -> np.ndarray:
    """Row-wise log Dirichlet draws from log concentrations: log G = log Gamma(a+1) + log(U)/a, then a
    log-softmax (tiny concentrations would give zero rows and NaNs with plain gamma normalisation)."""
    with np.errstate(divide="ignore", over="ignore"):
        log_gamma = np.log(rng.standard_gamma(np.exp(log_conc) + 1.0))
        log_g = log_gamma - np.exp(np.log(-np.log1p(-rng.random(log_conc.shape))) - log_conc)
    top = log_g.max(axis=1, keepdims=True)
    return log_g - (top + np.log(np.exp(log_g - top).sum(axis=1, keepdims=True)))


def _latents(rng, labels, log_conc: np.ndarray, scale: float) -> np.ndarray:
    """μ ~ Dir(c_group), then Dir(scale · μ), both in log space; probabilities below 1e-100 set to 0."""
    log_mu = _log_dirichlet(rng, log_conc[labels])
    probs = np.exp(_log_dirichlet(rng, math.log(scale) + log_mu))
    return np.where(probs < _TINY, 0.0, probs)


def _draw_tail(rng, spec: LongTail, mixture: Mixture | None, size: int, bound: int) -> np.ndarray:
    """Activity levels: one family, or a family per entity drawn from the mixture weights."""
    if mixture is None:
        return spec.sample(rng, size, bound)
    specs, weights = zip(*mixture, strict=True)
    which = rng.choice(len(specs), size=size, p=np.asarray(weights, dtype=float))
    out = np.empty(size)
    for k, family in enumerate(specs):
        chosen = which == k
        out[chosen] = family.sample(rng, int(chosen.sum()), bound)
    return out


def _jitter(t: np.ndarray, rng: np.random.Generator) -> None:
    """Replace T by a Beta draw of mean T and sd 1e-5 where such a Beta exists, then floor (in place)."""
    k = t * (1.0 - t) / _JITTER_SD**2 - 1.0
    ok = k > 0.0
    draws = rng.beta(np.where(ok, t * k, 1.0), np.where(ok, (1.0 - t) * k, 1.0))
    np.copyto(t, np.maximum(draws, _FLOOR), where=ok)


def _top_up(x: np.ndarray, t: np.ndarray, lo: int, tau: int, stream: np.random.SeedSequence) -> None:
    """Retry users with fewer than τ interactions on their missing items with fresh uniforms (in place).

    Exact shortcut for the retry loop: missing item i first succeeds in round K_i ~ Geometric(T_i) (one
    top-up uniform per entry); rounds run until the τ-th success, R = τ-th smallest K, and the user keeps
    every item with K_i ≤ R (base interactions have K = 0).
    """
    short = np.count_nonzero(x, axis=1) < tau
    for g in np.unique(np.flatnonzero(short) // GRANULE):
        start = g * GRANULE
        rng = _granule_rng(stream, (lo + start) // GRANULE)
        v = 1.0 - rng.random((min(GRANULE, x.shape[0] - start), x.shape[1]))
        rows = np.flatnonzero(short[start : start + GRANULE]) + start
        k = np.floor(np.log(v[rows - start]) / np.log1p(-t[rows])) + 1.0
        k[x[rows]] = 0.0
        last_round = k.min(axis=1) if tau == 1 else np.partition(k, tau - 1, axis=1)[:, tau - 1]
        x[rows] = k <= last_round[:, None]


def _realise(world: HydraWorld, lam: float, streams) -> tuple[np.ndarray, np.ndarray]:
    """Bernoulli realisation plus τ top-up at intensity ``lam``; returns CSR (indptr, indices)."""
    c = world.config
    real, top, jit = streams
    step = -(-c.chunk_size // GRANULE) * GRANULE
    degrees, columns = [np.zeros(1, dtype=np.int64)], []
    for lo in range(0, c.num_users, step):
        hi = min(lo + step, c.num_users)
        t = world._probability_rows(lo, hi, lam)
        u = np.empty_like(t)
        for g in range(lo, hi, GRANULE):
            block = slice(g - lo, min(g + GRANULE, hi) - lo)
            if c.jitter:
                _jitter(t[block], _granule_rng(jit, g // GRANULE))
            _granule_rng(real, g // GRANULE).random(out=u[block])
        x = u < t
        if c.tau > 0:
            _top_up(x, t, lo, c.tau, top)
        degrees.append(np.count_nonzero(x, axis=1))
        columns.append(np.nonzero(x)[1])
    return np.cumsum(np.concatenate(degrees)), np.concatenate(columns).astype(np.int64)


def _solve_lambda(realise_at, lam0: float, target: int) -> tuple[float, tuple[np.ndarray, np.ndarray]]:
    """λ whose realised count (τ top-up included) is within 0.1% of ``target``.

    Works on g(x) = log(count / target), x = log λ: every evaluation reuses the same latents and uniforms, so
    g is a fixed, nearly monotone step function. Secant steps (slope from the last two points) until the
    target is bracketed, then Illinois regula falsi, which keeps the bracket like bisection does.
    """
    tol = max(1.0, _TARGET_RTOL * target)
    best = (math.inf, lam0, None)
    lo = hi = prev = None  # (x, g): below target, above target, previous evaluation
    side, x = 0, math.log(lam0)
    counts = []
    for _ in range(_TARGET_MAX_EVALS):
        csr = realise_at(math.exp(x))
        counts.append(csr[1].size)
        if abs(csr[1].size - target) < best[0]:
            best = (abs(csr[1].size - target), math.exp(x), csr)
        if abs(csr[1].size - target) <= tol:
            break
        g = math.log(max(csr[1].size, 0.5) / target)
        if g < 0.0:
            if side == -1 and hi is not None:
                hi = (hi[0], hi[1] / 2.0)
            lo, side = (x, g), -1
        else:
            if side == 1 and lo is not None:
                lo = (lo[0], lo[1] / 2.0)
            hi, side = (x, g), 1
        if lo is not None and hi is not None:
            if abs(hi[0] - lo[0]) < 1e-12:
                break
            x_next = lo[0] - lo[1] * (hi[0] - lo[0]) / (hi[1] - lo[1])
        else:
            slope = (g - prev[1]) / (x - prev[0]) if prev is not None else 1.0
            step = -1.2 * g / min(max(slope, 0.01), 1.0)
            x_next = min(max(x + math.copysign(max(abs(step), 0.01), step), -700.0), 700.0)
        prev, x = (x, g), x_next
    if (lo is None or hi is None) and best[0] > tol:
        raise ValueError(
            f"target_interactions={target} is not reachable: counts ranged {min(counts)}..{max(counts)}"
        )
    return best[1], best[2]


def generate(config: HydraConfig, seed: int = 0, *, realise: bool = True) -> HydraWorld:
    """Generate a HYDRA world; ``realise=False`` skips the interactions (latents and T only)."""
    if not isinstance(config, HydraConfig):
        raise TypeError(f"config must be a HydraConfig, got {type(config).__name__}")
    if config.target_interactions is not None and not realise:
        raise ValueError("realise: target_interactions needs realise=True (λ is solved on realised counts)")
    c, n, m = config, config.num_users, config.num_items
    users, items, eng, pop, *realisation = np.random.SeedSequence(seed).spawn(7)
    user_population, item_category = _groups(n, c.user_shares), _groups(m, c.item_shares)
    user_conc = _log_concentration(len(c.user_shares), c.num_attrs, _USER_BASE, c.epsilon, c.block_mode)
    item_conc = _log_concentration(len(c.item_shares), c.num_attrs, _ITEM_BASE, c.epsilon, c.block_mode)
    world = HydraWorld(
        config=c,
        seed=seed,
        Lambda=float(c.Lambda),
        rho=_latents(np.random.default_rng(users), user_population, user_conc, _USER_SCALE),
        alpha=_latents(np.random.default_rng(items), item_category, item_conc, _ITEM_SCALE),
        engagement=_draw_tail(np.random.default_rng(eng), c.engagement, c.engagement_mixture, n, m) / m,
        popularity=_draw_tail(np.random.default_rng(pop), c.popularity, c.popularity_mixture, m, n) / n,
        user_population=user_population,
        item_category=item_category,
    )
    if not realise:
        return world
    if c.target_interactions is None:
        lam, csr = float(c.Lambda), _realise(world, c.Lambda, realisation)
    else:
        solve_at = lambda value: _realise(world, value, realisation)  # noqa: E731
        lam, csr = _solve_lambda(solve_at, c.Lambda, c.target_interactions)
    return replace(world, Lambda=lam, indptr=csr[0], indices=csr[1])
