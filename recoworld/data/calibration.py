"""Fit a HYDRA world to interaction data (e.g. MovieLens-100K).

Two steps, as in HYDRA.md:

1. per side (user degrees, item degrees) pick the long-tail family by AIC: each of the five families'
   truncated continuous likelihood is maximised (Nelder–Mead in an unconstrained parametrisation) with
   x_min = the minimum degree and the HYDRA truncation bound (users: number of items; items: number of users);
2. search (ζ, ξ) on a grid (then a finer grid around the best cell) with λ solved per candidate for the
   observed interaction count, scoring each candidate by two-sample KS distances of the degree distributions
   plus Gini gaps, averaged over a few calibration seeds.

Everything is numpy; the result is a :class:`CalibrationResult` whose :meth:`~CalibrationResult.config` is the
fitted :class:`~recoworld.generators.hydra.HydraConfig`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from recoworld.generators.hydra import HydraConfig, HydraWorld, generate, gini
from recoworld.generators.longtail import LongTail

__all__ = [
    "FAMILIES",
    "CalibrationResult",
    "FamilyFit",
    "WorldScores",
    "calibrate",
    "evaluate_config",
    "fit_family",
    "ks_two_sample",
    "nelder_mead",
    "score_world",
    "select_family",
]

FAMILIES = ("power_law", "exponential", "stretched_exponential", "log_normal", "power_law_with_cutoff")


# ---------------------------------------------------------------------------------------------- statistics
def ks_two_sample(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sample Kolmogorov–Smirnov distance sup_x |F_a(x) − F_b(x)| (exact with ties)."""
    a, b = np.sort(np.asarray(a, dtype=np.float64)), np.sort(np.asarray(b, dtype=np.float64))
    if a.size == 0 or b.size == 0:
        raise ValueError("ks_two_sample needs two non-empty samples")
    v = np.concatenate([a, b])
    fa = np.searchsorted(a, v, side="right") / a.size
    fb = np.searchsorted(b, v, side="right") / b.size
    return float(np.max(np.abs(fa - fb)))


# ---------------------------------------------------------------------------------------------- optimiser
def nelder_mead(
    fun: Callable[[np.ndarray], float],
    x0: Sequence[float],
    step: float = 0.5,
    max_iter: int = 400,
    xtol: float = 1e-7,
    ftol: float = 1e-10,
) -> tuple[np.ndarray, float]:
    """Minimise ``fun`` from ``x0`` by the Nelder–Mead simplex (standard coefficients); returns (x, f(x))."""
    x0 = np.asarray(x0, dtype=np.float64)
    d = x0.size
    simplex = np.vstack([x0] + [x0 + step * e for e in np.eye(d)])
    values = np.array([fun(p) for p in simplex])
    for _ in range(max_iter):
        order = np.argsort(values, kind="stable")
        simplex, values = simplex[order], values[order]
        spread = values[-1] - values[0] if np.isfinite(values[-1]) else np.inf
        if np.max(np.abs(simplex[1:] - simplex[0])) < xtol and spread < ftol:
            break
        centroid = simplex[:-1].mean(axis=0)
        reflected = centroid + (centroid - simplex[-1])
        fr = fun(reflected)
        if fr < values[0]:
            expanded = centroid + 2.0 * (centroid - simplex[-1])
            fe = fun(expanded)
            simplex[-1], values[-1] = (expanded, fe) if fe < fr else (reflected, fr)
        elif fr < values[-2]:
            simplex[-1], values[-1] = reflected, fr
        else:
            outside = fr < values[-1]
            contracted = centroid + 0.5 * ((reflected if outside else simplex[-1]) - centroid)
            fc = fun(contracted)
            if fc < (fr if outside else values[-1]):
                simplex[-1], values[-1] = contracted, fc
            else:  # shrink towards the best vertex
                simplex[1:] = simplex[0] + 0.5 * (simplex[1:] - simplex[0])
                values[1:] = [fun(p) for p in simplex[1:]]
    best = int(np.argmin(values))
    return simplex[best], float(values[best])


# ---------------------------------------------------------------------------------------------- family fits
@dataclass(frozen=True)
class FamilyFit:
    """Maximum-likelihood fit of one long-tail family to a degree sample."""

    family: str
    params: tuple[float, ...]
    x_min: float
    bound: float
    log_likelihood: float
    aic: float

    def long_tail(self) -> LongTail:
        return LongTail(self.family, self.params, x_min=self.x_min)


def _to_params(family: str, theta: np.ndarray) -> tuple[float, ...]:
    if family == "power_law":
        return (1.0 + math.exp(theta[0]),)
    if family == "exponential":
        return (math.exp(theta[0]),)
    if family == "stretched_exponential":
        return (math.exp(theta[0]), math.exp(theta[1]))
    if family == "log_normal":
        return (float(theta[0]), math.exp(theta[1]))
    if family == "power_law_with_cutoff":  # α > 0, the generator's domain (LongTail)
        return (math.exp(theta[0]), math.exp(theta[1]))
    raise ValueError(f"unknown long-tail family {family!r}; known: {', '.join(FAMILIES)}")


def _starts(family: str, x: np.ndarray, x_min: float) -> list[list[float]]:
    logs = np.log(x / x_min)
    mean_excess = max(float(x.mean() - x_min), 1e-3)
    if family == "power_law":
        return [[math.log(max(x.size / max(logs.sum(), 1e-12), 1e-3))]]
    if family == "exponential":
        return [[-math.log(mean_excess)]]
    if family == "stretched_exponential":
        lam = -math.log(float(x.mean()))
        return [[lam, math.log(b)] for b in (0.3, 0.6, 1.0)]
    if family == "log_normal":
        lx = np.log(x)
        return [[float(lx.mean()), math.log(max(float(lx.std()), 1e-2))], [math.log(x_min), math.log(2.0)]]
    return [[math.log(a), -math.log(float(x.mean()))] for a in (0.5, 1.0, 1.5)]


def fit_family(x: np.ndarray, family: str, x_min: float | None = None, bound: float = -1.0) -> FamilyFit:
    """MLE of ``family`` on the sample ``x`` over [x_min, bound] (bound ≤ 0: no upper truncation)."""
    if family not in FAMILIES:
        raise ValueError(f"unknown long-tail family {family!r}; known: {', '.join(FAMILIES)}")
    x = np.asarray(x, dtype=np.float64)
    x_min = float(x.min()) if x_min is None else float(x_min)
    x = x[x >= x_min]
    if x.size < 2:
        raise ValueError("need at least two observations at or above x_min")
    bound_arg = float(bound) if bound > 0 else float("inf")

    def nll(theta: np.ndarray) -> float:
        try:
            params = _to_params(family, theta)
            with np.errstate(all="ignore"):
                ll = float(np.sum(LongTail(family, params, x_min=x_min).logpdf(x, bound_arg)))
        except (ValueError, OverflowError, ZeroDivisionError, FloatingPointError):
            return math.inf
        return -ll if math.isfinite(ll) else math.inf

    best_theta, best = None, math.inf
    for start in _starts(family, x, x_min):
        theta, value = nelder_mead(nll, start)
        theta, value = nelder_mead(nll, theta, step=0.05)  # restart: guards against a collapsed simplex
        if value < best:
            best_theta, best = theta, value
    if best_theta is None or not math.isfinite(best):
        raise ValueError(f"could not fit {family} to the sample")
    params = tuple(float(p) for p in _to_params(family, best_theta))
    k = len(params)
    return FamilyFit(family, params, x_min, float(bound), -best, 2.0 * k + 2.0 * best)


def select_family(
    x: np.ndarray, x_min: float | None = None, bound: float = -1.0, families: Sequence[str] = FAMILIES
) -> tuple[FamilyFit, tuple[FamilyFit, ...]]:
    """Fit every family and return (the lowest-AIC fit, all fits in ``families`` order)."""
    fits = tuple(fit_family(x, fam, x_min, bound) for fam in families)
    return min(fits, key=lambda r: r.aic), fits


# ---------------------------------------------------------------------------------------------- world scores
@dataclass(frozen=True)
class WorldScores:
    """How closely one generated world matches reference degree distributions."""

    seed: int
    ks_users: float
    ks_items: float
    gini_users: float
    gini_items: float
    gini_gap_users: float
    gini_gap_items: float
    num_interactions: int
    item_coverage: float
    Lambda: float

    def score(self, gini_weight: float = 1.0) -> float:
        return self.ks_users + self.ks_items + gini_weight * (self.gini_gap_users + self.gini_gap_items)


def score_world(
    world: HydraWorld, user_degrees: np.ndarray, item_degrees: np.ndarray, seed: int = -1
) -> WorldScores:
    """Compare a world's degree distributions (zeros included) to reference degree vectors."""
    du, di = np.asarray(world.user_degrees()), np.asarray(world.item_degrees())
    gu, gi = float(gini(du)), float(gini(di))
    return WorldScores(
        seed=int(seed),
        ks_users=ks_two_sample(du, user_degrees),
        ks_items=ks_two_sample(di, item_degrees),
        gini_users=gu,
        gini_items=gi,
        gini_gap_users=abs(gu - float(gini(user_degrees))),
        gini_gap_items=abs(gi - float(gini(item_degrees))),
        num_interactions=int(world.num_interactions),
        item_coverage=float(world.item_coverage),
        Lambda=float(world.Lambda),
    )


def evaluate_config(
    config: HydraConfig, user_degrees: np.ndarray, item_degrees: np.ndarray, seeds: Sequence[int]
) -> list[WorldScores]:
    """Generate ``config`` once per seed and score each world against the reference degrees."""
    return [score_world(generate(config, seed=int(s)), user_degrees, item_degrees, int(s)) for s in seeds]


# ---------------------------------------------------------------------------------------------- calibration
@dataclass(frozen=True, eq=False)
class CalibrationResult:
    """Fitted families, (ζ, ξ), the solved λ and the search record."""

    user_fit: FamilyFit
    item_fit: FamilyFit
    user_candidates: tuple[FamilyFit, ...]
    item_candidates: tuple[FamilyFit, ...]
    zeta: float
    xi: float
    Lambda: float
    score: float
    base_config: HydraConfig
    scores: tuple[WorldScores, ...]  # at the optimum, one per calibration seed
    search: tuple[tuple[float, float, float], ...] = field(repr=False)  # (zeta, xi, mean score) per candidate

    def config(self, **overrides: Any) -> HydraConfig:
        """The fitted world configuration (density targeting on); keyword overrides are applied last."""
        return replace(self.base_config, zeta=self.zeta, xi=self.xi, **overrides)

    def summary(self) -> dict[str, Any]:
        """A JSON-friendly summary."""
        keys = ("ks_users", "ks_items", "gini_gap_users", "gini_gap_items")
        mean = {k: float(np.mean([getattr(s, k) for s in self.scores])) for k in keys}

        def side(fit: FamilyFit, candidates: tuple[FamilyFit, ...]) -> dict[str, Any]:
            aic = {f.family: f.aic for f in candidates}
            return {"family": fit.family, "params": fit.params, "x_min": fit.x_min, "aic": aic}

        return {
            "users": side(self.user_fit, self.user_candidates),
            "items": side(self.item_fit, self.item_candidates),
            "zeta": self.zeta,
            "xi": self.xi,
            "Lambda": self.Lambda,
            "score": self.score,
            "calibration_scores": mean,
            "candidates_evaluated": len(self.search),
        }


def _grid_around(best: float, fine_step: float) -> np.ndarray:
    return np.round(best + fine_step * np.arange(-2, 3), 6)


def calibrate(
    user_degrees: np.ndarray,
    item_degrees: np.ndarray,
    *,
    num_attrs: int = 64,
    tau: int | None = None,
    zetas: Sequence[float] = tuple(np.round(np.arange(1.0, 2.81, 0.2), 6)),
    xis: Sequence[float] = tuple(np.round(np.arange(1.0, 2.41, 0.2), 6)),
    seeds: Sequence[int] = (0, 1),
    refine: bool = True,
    families: Sequence[str] = FAMILIES,
    gini_weight: float = 1.0,
    config_overrides: dict[str, Any] | None = None,
    log: Callable[[str], None] | None = None,
) -> CalibrationResult:
    """Fit a HYDRA world to the degree vectors of an interaction data set (see the module docstring).

    ``tau`` defaults to the minimum user degree; λ is solved per world for the observed interaction count;
    ``refine`` adds a 5×5 grid of half the coarse step around the best coarse cell.
    """
    du = np.asarray(user_degrees, dtype=np.float64)
    di = np.asarray(item_degrees, dtype=np.float64)
    n, m = du.size, di.size
    nnz = int(round(du.sum()))
    if nnz != int(round(di.sum())):
        raise ValueError("user and item degrees must sum to the same interaction count")
    say = log or (lambda _msg: None)
    user_fit, user_all = select_family(du[du > 0], None, float(m), families)
    item_fit, item_all = select_family(di[di > 0], None, float(n), families)
    for side, fits, best in (("users", user_all, user_fit), ("items", item_all, item_fit)):
        for r in fits:
            mark = " *" if r is best else ""
            say(f"{side}: {r.family:22s} params={np.round(r.params, 5)} AIC={r.aic:.1f}{mark}")
    base = HydraConfig(
        num_users=n,
        num_items=m,
        num_attrs=num_attrs,
        engagement=user_fit.long_tail(),
        popularity=item_fit.long_tail(),
        tau=int(du.min()) if tau is None else int(tau),
        target_interactions=nnz,
        **(config_overrides or {}),
    )
    cache: dict[tuple[float, float], tuple[float, list[WorldScores]]] = {}

    def run(zeta: float, xi: float) -> float:
        key = (round(float(zeta), 6), round(float(xi), 6))
        if key not in cache:
            scores = evaluate_config(replace(base, zeta=key[0], xi=key[1]), du, di, seeds)
            cache[key] = (float(np.mean([s.score(gini_weight) for s in scores])), scores)
            say(f"zeta={key[0]:.3f} xi={key[1]:.3f} score={cache[key][0]:.4f}")
        return cache[key][0]

    for z in zetas:
        for x in xis:
            run(z, x)
    if refine and len(zetas) > 1 and len(xis) > 1:
        bz, bx = min(cache, key=lambda k: cache[k][0])
        zs = _grid_around(bz, float(np.min(np.diff(np.sort(zetas)))) / 2)
        xs = _grid_around(bx, float(np.min(np.diff(np.sort(xis)))) / 2)
        for z in zs[zs > 0]:
            for x in xs[xs > 0]:
                run(z, x)
    (bz, bx), (best_score, best_scores) = min(cache.items(), key=lambda kv: kv[1][0])
    return CalibrationResult(
        user_fit=user_fit,
        item_fit=item_fit,
        user_candidates=user_all,
        item_candidates=item_all,
        zeta=bz,
        xi=bx,
        Lambda=float(np.mean([s.Lambda for s in best_scores])),
        score=best_score,
        base_config=base,
        scores=tuple(best_scores),
        search=tuple((k[0], k[1], v[0]) for k, v in cache.items()),
    )
