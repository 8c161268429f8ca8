"""Long-tail families: exact truncated samplers, analytic CDFs and log-densities against scipy."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate, stats

from recoworld.generators.longtail import FAMILIES, LongTail

SPECS = {
    "power_law": LongTail("power_law", (1.5,), x_min=1.0),
    "exponential": LongTail("exponential", (0.05,), x_min=2.0),
    "stretched_exponential": LongTail("stretched_exponential", (0.024, 0.62), x_min=20.0),
    "log_normal": LongTail("log_normal", (2.0, 1.2), x_min=1.0),
    "power_law_with_cutoff": LongTail("power_law_with_cutoff", (1.3, 0.01), x_min=1.0),
}
# (bound, x_max): no upper end at all, the entity bound only, and an x_max below the bound.
BOUNDS = [(math.inf, -1.0), (300.0, -1.0), (5000.0, 120.0)]


def _reference_cdf(spec: LongTail):
    """Untruncated CDF on [x_min, ∞) from scipy (quadrature for the cutoff family)."""
    p, x0 = spec.params, spec.x_min
    if spec.family == "power_law":
        return stats.pareto(b=p[0] - 1.0, scale=x0).cdf
    if spec.family == "exponential":
        return stats.expon(loc=x0, scale=1.0 / p[0]).cdf
    if spec.family == "stretched_exponential":
        law = stats.weibull_min(c=p[1], scale=1.0 / p[0])
        return lambda x: (law.cdf(x) - law.cdf(x0)) / law.sf(x0)
    if spec.family == "log_normal":
        law = stats.lognorm(s=p[1], scale=math.exp(p[0]))
        return lambda x: (law.cdf(x) - law.cdf(x0)) / law.sf(x0)

    def density(t):
        return t ** -p[0] * math.exp(-p[1] * t)

    total = integrate.quad(density, x0, np.inf, limit=200)[0]
    return np.vectorize(lambda x: integrate.quad(density, x0, x, limit=200)[0] / total)


def _truncated(cdf, upper: float):
    top = 1.0 if math.isinf(upper) else cdf(upper)
    return lambda x: np.minimum(cdf(np.asarray(x, dtype=float)) / top, 1.0)


@pytest.mark.parametrize("bound, x_max", BOUNDS)
@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_samples_pass_ks_against_analytic_truncated_cdf(family: str, bound: float, x_max: float) -> None:
    spec = LongTail(family, SPECS[family].params, SPECS[family].x_min, x_max)
    x = spec.sample(np.random.default_rng(12345), 4000, bound)
    upper = spec.upper(bound)
    assert x.min() >= spec.x_min and x.max() <= upper
    assert stats.kstest(x, lambda t: spec.cdf(t, bound)).pvalue > 0.01
    # the KS test has power: a slightly different law is rejected on the same sample
    wrong = LongTail(family, tuple(v * 1.25 for v in spec.params), spec.x_min, x_max)
    assert stats.kstest(x, lambda t: wrong.cdf(t, bound)).pvalue < 1e-3


@pytest.mark.parametrize("bound, x_max", BOUNDS)
@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_cdf_matches_scipy(family: str, bound: float, x_max: float) -> None:
    spec = LongTail(family, SPECS[family].params, SPECS[family].x_min, x_max)
    upper = spec.upper(bound)
    reference = _truncated(_reference_cdf(spec), upper)
    grid = np.geomspace(spec.x_min, min(upper, 1e5), 25)
    np.testing.assert_allclose(spec.cdf(grid, bound), reference(grid), rtol=1e-7, atol=1e-10)
    assert spec.cdf(spec.x_min * 0.5, bound) == 0.0
    assert spec.cdf(min(upper, 1e300) * 2.0, bound) == 1.0


@pytest.mark.parametrize("bound, x_max", BOUNDS[:2])
@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_logpdf_is_the_normalised_derivative_of_the_cdf(family: str, bound: float, x_max: float) -> None:
    spec = LongTail(family, SPECS[family].params, SPECS[family].x_min, x_max)
    upper = min(spec.upper(bound), 1e6)
    edges = np.geomspace(spec.x_min, upper, 60)
    pieces = [
        integrate.quad(lambda t: math.exp(spec.logpdf(t, bound)), a, b)[0]
        for a, b in zip(edges[:-1], edges[1:], strict=True)
    ]
    np.testing.assert_allclose(np.cumsum(pieces), spec.cdf(edges[1:], bound), atol=1e-8)
    x = np.geomspace(spec.x_min * 1.01, min(upper, 1e4) * 0.99, 9)
    h = 1e-6 * x
    slope = (spec.cdf(x + h, bound) - spec.cdf(x - h, bound)) / (2.0 * h)
    np.testing.assert_allclose(np.exp(spec.logpdf(x, bound)), slope, rtol=1e-4, atol=1e-9)
    outside = spec.logpdf(np.array([spec.x_min * 0.9, upper * 1.1 if upper < 1e6 else np.nan]), bound)
    assert outside[0] == -np.inf


def test_ppf_is_the_inverse_cdf() -> None:
    u = np.linspace(0.0, 0.999, 37)
    for family, spec in SPECS.items():
        if family == "power_law_with_cutoff":
            with pytest.raises(ValueError, match="family"):
                spec.ppf(u, 100.0)
            continue
        np.testing.assert_allclose(spec.cdf(spec.ppf(u, 500.0), 500.0), u, atol=1e-9)
        assert spec.ppf(np.array([0.0]), 500.0)[0] == pytest.approx(spec.x_min, rel=1e-12)


def test_sampling_is_reproducible_per_generator() -> None:
    for spec in SPECS.values():
        a = spec.sample(np.random.default_rng(7), 50, 1000.0)
        b = spec.sample(np.random.default_rng(7), 50, 1000.0)
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"family": "power_law", "params": (1.0,)}, "alpha"),
        ({"family": "power_law", "params": (0.5,)}, "alpha"),
        ({"family": "exponential", "params": (0.0,)}, "lam"),
        ({"family": "stretched_exponential", "params": (0.1, -1.0)}, "beta"),
        ({"family": "log_normal", "params": (0.0, 0.0)}, "sigma"),
        ({"family": "power_law_with_cutoff", "params": (1.5, -0.1)}, "lam"),
        ({"family": "power_law", "params": (1.5, 2.0)}, "params"),
        ({"family": "power_law", "params": (math.nan,)}, "params"),
        ({"family": "zipf", "params": (1.5,)}, "family"),
        ({"x_min": 0.0}, "x_min"),
        ({"x_min": 5.0, "x_max": 5.0}, "x_min must be < x_max"),
        ({"x_min": 5.0, "x_max": 2.0}, "x_max"),
    ],
)
def test_invalid_parameters_name_the_field(kwargs: dict, field: str) -> None:
    with pytest.raises(ValueError, match=field):
        LongTail(**kwargs)


def test_bound_below_x_min_is_rejected() -> None:
    with pytest.raises(ValueError, match="x_min"):
        LongTail(x_min=10.0).sample(np.random.default_rng(0), 5, 10.0)


_PARAMS = {
    "power_law": st.tuples(st.floats(1.05, 4.0)),
    "exponential": st.tuples(st.floats(1e-4, 5.0)),
    "stretched_exponential": st.tuples(st.floats(1e-3, 2.0), st.floats(0.1, 3.0)),
    "log_normal": st.tuples(st.floats(-5.0, 30.0), st.floats(0.05, 3.0)),
    "power_law_with_cutoff": st.tuples(st.floats(0.05, 4.0), st.floats(1e-4, 3.0)),
}


@st.composite
def _laws(draw):
    family = draw(st.sampled_from(sorted(FAMILIES)))
    x_min = draw(st.floats(0.1, 50.0))
    x_max = draw(st.one_of(st.just(-1.0), st.floats(1.001, 1e4).map(lambda r: x_min * r)))
    bound = draw(st.one_of(st.just(math.inf), st.floats(1.001, 1e6).map(lambda r: x_min * r)))
    params = draw(_PARAMS[family])
    if family == "log_normal":  # first entry: a = (ln x_min - mu) / sigma, LongTail rejects a > 37
        params = (math.log(x_min) - params[0] * params[1], params[1])
    return LongTail(family, params, x_min, x_max), bound


@settings(max_examples=150, deadline=None)
@given(law=_laws(), seed=st.integers(0, 2**32 - 1))
def test_samples_stay_in_the_support(law, seed: int) -> None:
    spec, bound = law
    upper = spec.upper(bound)
    x = spec.sample(np.random.default_rng(seed), 200, bound)
    assert x.shape == (200,)
    assert np.all(np.isfinite(x)) and x.min() >= spec.x_min and x.max() <= upper
    if spec.family != "power_law_with_cutoff":
        ends = spec.ppf(np.array([0.0, 0.5, np.nextafter(1.0, 0.0)]), bound)
        assert ends[0] >= spec.x_min and spec.cdf(ends[0], bound) < 1e-9 and ends[-1] <= upper
        assert np.all(np.diff(ends) >= 0.0)
