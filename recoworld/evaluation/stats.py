"""Confidence intervals for evaluation metrics: Student t intervals, paired differences, the jackknife.

Everything here is numpy + stdlib (no scipy at import time); the t quantile is computed from the regularised
incomplete beta function.

The unit of analysis is the simulated user. A metric is first computed per user, then averaged over users
(every user weighs the same). Two intervals are reported for each mean:

* ``ci95`` -- the Student t interval over all users of all seeds, ``mean ± t(0.975, n - 1) · sd / √n``.
  Users are independent draws of the population (each (seed, user) pair is its own random stream in a fixed
  world), so this is the natural interval for any policy that does not learn during the evaluation.
* ``ci95_seeds`` -- the Student t interval over the per-seed means, ``S - 1`` degrees of freedom (only when
  there are at least two seeds). It treats a seed as a cluster, so it stays valid when users of one seed are
  dependent, e.g. because a learning policy is shared by the users of a shard. It is wider (fewer degrees of
  freedom).

Both intervals are conditional on the world (``world_seed``): they do not cover world-to-world variation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np

__all__ = [
    "Estimate",
    "t_quantile",
    "mean_estimate",
    "paired_estimate",
    "coverage_estimate",
]


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (modified Lentz)."""
    tiny = 1e-300
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 400):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 1e-15:
            break
    return h


def _betainc(a: float, b: float, x: float) -> float:
    """Regularised incomplete beta function I_x(a, b)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    lbt = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(lbt) * _betacf(a, b, x) / a
    return 1.0 - math.exp(lbt) * _betacf(b, a, 1.0 - x) / b


def _t_sf(t: float, df: float) -> float:
    """P(T > t) for t >= 0 under Student's t with ``df`` degrees of freedom."""
    return 0.5 * _betainc(df / 2.0, 0.5, df / (df + t * t))


@lru_cache(maxsize=1024)
def t_quantile(p: float, df: float) -> float:
    """The ``p`` quantile of Student's t with ``df`` > 0 degrees of freedom (absolute error below 1e-7)."""
    if not 0.0 < p < 1.0:
        raise ValueError(f"p must lie in (0, 1), got {p}")
    if df <= 0:
        raise ValueError(f"df must be positive, got {df}")
    if p == 0.5:
        return 0.0
    if p < 0.5:
        return -t_quantile(1.0 - p, df)
    target = 1.0 - p
    lo, hi = 0.0, 1.0
    while _t_sf(hi, df) > target:
        hi *= 2.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if _t_sf(mid, df) > target:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-12 * max(1.0, hi):
            break
    return 0.5 * (lo + hi)


def _nan_pair() -> tuple[float, float]:
    return (math.nan, math.nan)


@dataclass(frozen=True)
class Estimate:
    """A mean with its 95% intervals (see the module docstring for what each interval means)."""

    mean: float
    ci95: tuple[float, float] = field(default_factory=_nan_pair)
    ci95_seeds: tuple[float, float] | None = None
    n: int = 0  # users that entered the mean (users for whom the metric is defined)
    method: str = "t"  # "t" (Student t over users) or "jackknife" (delete-one-user jackknife, t quantile)

    @property
    def half_width(self) -> float:
        return 0.5 * (self.ci95[1] - self.ci95[0])

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"mean": _num(self.mean), "ci95": [_num(self.ci95[0]), _num(self.ci95[1])]}
        if self.ci95_seeds is not None:
            out["ci95_seeds"] = [_num(self.ci95_seeds[0]), _num(self.ci95_seeds[1])]
        out["n"] = int(self.n)
        out["method"] = self.method
        return out

    def format(self, digits: int = 3) -> str:
        if not math.isfinite(self.mean):
            return "n/a"
        if not all(math.isfinite(v) for v in self.ci95):
            return f"{self.mean:.{digits}g}"
        return f"{self.mean:.{digits}g} [{self.ci95[0]:.{digits}g}, {self.ci95[1]:.{digits}g}]"


def _num(x: float) -> float | None:
    """JSON-safe float: NaN and infinities become None."""
    x = float(x)
    return x if math.isfinite(x) else None


def _t_interval(values: np.ndarray) -> tuple[float, float]:
    n = values.size
    if n < 2:
        return _nan_pair()
    m = float(values.mean())
    sd = float(values.std(ddof=1))
    h = t_quantile(0.975, n - 1) * sd / math.sqrt(n)
    return (m - h, m + h)


def _seed_interval(values: np.ndarray, groups: np.ndarray) -> tuple[float, float] | None:
    uniq = np.unique(groups)
    if uniq.size < 2:
        return None
    means = np.array([values[groups == g].mean() for g in uniq])
    return _t_interval(means)


def mean_estimate(values: np.ndarray, seeds: np.ndarray | None = None) -> Estimate:
    """Mean of per-user ``values`` (NaN = undefined for that user, dropped) with t intervals.

    ``seeds`` (same length) names each user's seed; with two or more seeds ``ci95_seeds`` is the t interval
    over the per-seed means.
    """
    values = np.asarray(values, dtype=np.float64)
    ok = np.isfinite(values)
    v = values[ok]
    if v.size == 0:
        return Estimate(math.nan, _nan_pair(), None, 0)
    seed_ci = None
    if seeds is not None:
        seed_ci = _seed_interval(v, np.asarray(seeds)[ok])
    return Estimate(float(v.mean()), _t_interval(v), seed_ci, int(v.size))


def paired_estimate(a: np.ndarray, b: np.ndarray, seeds: np.ndarray | None = None) -> Estimate:
    """Paired difference ``b - a`` over the same users (aligned arrays); users undefined in either are
    dropped."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"paired arrays must have the same shape, got {a.shape} and {b.shape}")
    return mean_estimate(b - a, seeds)


# ---------------------------------------------------------------------------------------------- coverage
def _coverage_parts(users: np.ndarray, items: np.ndarray, n_users: int, num_items: int):
    """(coverage, per-user delete-one coverage) for one seed from unique (user, item) pairs."""
    counts = np.bincount(items, minlength=num_items)
    covered = int(np.count_nonzero(counts))
    only = counts[items] == 1  # pairs whose item no other user saw
    unique_per_user = np.bincount(users[only], minlength=n_users)
    return covered / num_items, (covered - unique_per_user) / num_items


def _jackknife_var(leave_one_out: np.ndarray) -> float:
    n = leave_one_out.size
    if n < 2:
        return math.nan
    return float((n - 1) / n * np.sum((leave_one_out - leave_one_out.mean()) ** 2))


def coverage_estimate(
    shown: list[tuple[np.ndarray, np.ndarray, int]],
    num_items: int,
    reference: list[tuple[np.ndarray, np.ndarray, int]] | None = None,
) -> Estimate:
    """Catalogue coverage: per seed, the share of the catalogue shown to at least one of its users; averaged.

    ``shown`` holds, per seed, ``(user, item, n_users)``: the unique (user, item) pairs of that seed's users
    (``user`` indexes 0..n_users-1). With ``reference`` (same layout, same users) the estimate is the paired
    difference ``coverage(shown) - coverage(reference)``.

    ``ci95`` is a delete-one-user jackknife interval (variance summed over seeds, t quantile with n - 1
    degrees of freedom); ``ci95_seeds`` is the t interval over the per-seed values when there are two or more
    seeds.
    """
    if num_items <= 0:
        return Estimate(math.nan, _nan_pair(), None, 0, "jackknife")
    values, variances, n_total = [], [], 0
    for s, (users, items, n_users) in enumerate(shown):
        theta, loo = _coverage_parts(users, items, n_users, num_items)
        if reference is not None:
            r_users, r_items, r_n = reference[s]
            if r_n != n_users:
                raise ValueError("paired coverage needs the same users in both evaluations")
            r_theta, r_loo = _coverage_parts(r_users, r_items, r_n, num_items)
            theta, loo = theta - r_theta, loo - r_loo
        values.append(theta)
        variances.append(_jackknife_var(loo))
        n_total += n_users
    if not values:
        return Estimate(math.nan, _nan_pair(), None, 0, "jackknife")
    s_count = len(values)
    mean = float(np.mean(values))
    var = float(np.sum(variances)) / s_count**2
    if n_total >= 2 and math.isfinite(var):
        h = t_quantile(0.975, n_total - 1) * math.sqrt(var)
        ci = (mean - h, mean + h)
    else:
        ci = _nan_pair()
    seed_ci = _t_interval(np.asarray(values)) if s_count >= 2 else None
    return Estimate(mean, ci, seed_ci, n_total, "jackknife")
