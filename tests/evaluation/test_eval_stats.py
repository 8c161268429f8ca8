"""Confidence intervals: t quantiles, user and seed intervals, paired differences, coverage jackknife."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as sps

from recoworld.evaluation.stats import Estimate, coverage_estimate, mean_estimate, paired_estimate, t_quantile


@pytest.mark.parametrize("df", [1, 2, 3, 5, 10, 30, 100, 1000])
@pytest.mark.parametrize("p", [0.6, 0.9, 0.975, 0.995, 0.025])
def test_t_quantile_matches_scipy(df, p):
    assert t_quantile(p, df) == pytest.approx(sps.t.ppf(p, df), rel=1e-8, abs=1e-7)


def test_t_quantile_rejects_bad_arguments():
    with pytest.raises(ValueError):
        t_quantile(1.0, 3)
    with pytest.raises(ValueError):
        t_quantile(0.5, 0)


def test_mean_estimate_matches_scipy_t_interval_and_seed_clusters():
    rng = np.random.default_rng(0)
    values = rng.normal(3.0, 2.0, size=60)
    seeds = np.repeat([0, 1, 2], 20)
    est = mean_estimate(values, seeds)
    lo, hi = sps.t.interval(0.95, df=59, loc=values.mean(), scale=sps.sem(values))
    assert est.mean == pytest.approx(values.mean())
    assert est.ci95 == pytest.approx((lo, hi))
    per_seed = values.reshape(3, 20).mean(axis=1)
    slo, shi = sps.t.interval(0.95, df=2, loc=per_seed.mean(), scale=sps.sem(per_seed))
    assert est.ci95_seeds == pytest.approx((slo, shi))
    assert est.n == 60


def test_mean_estimate_drops_undefined_users_and_single_seed_has_no_seed_interval():
    est = mean_estimate(np.array([1.0, np.nan, 3.0]), np.zeros(3, int))
    assert est.mean == 2.0 and est.n == 2 and est.ci95_seeds is None
    empty = mean_estimate(np.array([np.nan]))
    assert math.isnan(empty.mean) and empty.n == 0
    js = empty.to_json()
    assert js["mean"] is None and js["ci95"] == [None, None]
    json.dumps(js, allow_nan=False)


def test_paired_estimate_is_mean_of_differences():
    a = np.array([1.0, 2.0, 3.0, 4.0])
    b = a + np.array([0.5, 0.4, 0.6, 0.5])
    est = paired_estimate(a, b)
    assert est.mean == pytest.approx(0.5)
    assert est.ci95[0] > 0.3 and est.ci95[1] < 0.7
    with pytest.raises(ValueError):
        paired_estimate(a, b[:3])


def _coverage(users_items: list[list[int]], m: int) -> float:
    return len(set().union(*map(set, users_items))) / m if users_items else 0.0


def _shown(users_items: list[list[int]]):
    users = np.array([u for u, its in enumerate(users_items) for _ in set(its)], dtype=np.int64)
    items = np.array([i for its in users_items for i in sorted(set(its))], dtype=np.int64)
    return users, items, len(users_items)


def test_coverage_estimate_value_and_jackknife_against_brute_force():
    m = 10
    seed0 = [[0, 1, 2], [2, 3], [4], [0, 1]]
    seed1 = [[5, 6], [6], [7, 8, 9], [5]]
    est = coverage_estimate([_shown(seed0), _shown(seed1)], m)
    assert est.mean == pytest.approx((_coverage(seed0, m) + _coverage(seed1, m)) / 2)
    var = 0.0
    for s in (seed0, seed1):
        loo = np.array([_coverage(s[:u] + s[u + 1 :], m) for u in range(len(s))])
        n = len(s)
        var += (n - 1) / n * np.sum((loo - loo.mean()) ** 2)
    var /= 4
    half = sps.t.ppf(0.975, 7) * math.sqrt(var)
    assert est.ci95 == pytest.approx((est.mean - half, est.mean + half))
    assert est.ci95_seeds is not None and est.method == "jackknife"


def test_paired_coverage_difference():
    m = 8
    a = [[0], [1], [2]]
    b = [[0, 3], [1, 4], [2, 5]]
    est = coverage_estimate([_shown(b)], m, reference=[_shown(a)])
    assert est.mean == pytest.approx(3 / 8)


def test_estimate_format():
    assert Estimate(0.5, (0.4, 0.6)).format() == "0.5 [0.4, 0.6]"
    assert Estimate(math.nan).format() == "n/a"


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(-100, 100, allow_nan=False), min_size=2, max_size=40))
def test_interval_contains_mean_and_is_ordered(values):
    est = mean_estimate(np.array(values))
    assert est.ci95[0] <= est.mean + 1e-9 <= est.ci95[1] + 2e-9
