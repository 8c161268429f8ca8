"""Long-tailed activity laws for HYDRA engagement and popularity (see HYDRA.md, "Long-tail families").

Every family is a continuous law on ``[x_min, ∞)`` truncated to ``[x_min, upper]`` with
``upper = min(bound, x_max)`` (``x_max = -1``: no cap of its own). Samplers are exact: inverse-CDF for
the four closed-form families, rejection for ``power_law_with_cutoff``. Only numpy and the stdlib are used.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

FAMILIES: dict[str, tuple[str, ...]] = {
    "power_law": ("alpha",),
    "exponential": ("lam",),
    "stretched_exponential": ("lam", "beta"),
    "log_normal": ("mu", "sigma"),
    "power_law_with_cutoff": ("alpha", "lam"),
}

# Strict lower limits of the parameters (mu of log_normal is free).
_LOWER: dict[str, dict[str, float]] = {
    "power_law": {"alpha": 1.0},
    "exponential": {"lam": 0.0},
    "stretched_exponential": {"lam": 0.0, "beta": 0.0},
    "log_normal": {"sigma": 0.0},
    "power_law_with_cutoff": {"alpha": 0.0, "lam": 0.0},
}
_SQRT2 = math.sqrt(2.0)
_ERFC = np.frompyfunc(math.erfc, 1, 1)
# Quadrature for power_law_with_cutoff: panels in v = ln(x / x_min), Gauss-Legendre nodes per panel.
_PANELS = 512
_GL_NODES, _GL_WEIGHTS = np.polynomial.legendre.leggauss(8)


def _phi(z):
    """Standard normal CDF, vectorised (via math.erfc, accurate in both tails)."""
    return 0.5 * np.asarray(_ERFC(-np.asarray(z, dtype=float) / _SQRT2), dtype=float)


def _ndtri(p: np.ndarray) -> np.ndarray:
    """Standard normal quantile: Acklam's rational approximation plus one Halley step (~1e-15)."""
    a = (-39.69683028665376, 220.9460984245205, -275.9285104469687, 138.3577518672690, -30.66479806614716)
    b = (-54.47609879822406, 161.5858368580409, -155.6989798598866, 66.80131188771972, -13.28068155288572)
    c = (
        -7.784894002430293e-3,
        -0.3223964580411365,
        -2.400758277161838,
        -2.549732539343734,
        4.374664141464968,
    )
    d = (7.784695709041462e-03, 0.3224671290700398, 2.445134137142996, 3.754408661907416)
    p = np.asarray(p, dtype=float)
    with np.errstate(all="ignore"):
        tail = np.minimum(p, 1.0 - p)
        q = np.sqrt(-2.0 * np.log(tail))
        num = ((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + 2.938163982698783
        x_tail = num / ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1.0)
        x_tail = np.where(p < 0.5, x_tail, -x_tail)
        r = (p - 0.5) ** 2
        num = (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + 2.506628277459239) * (p - 0.5)
        x_mid = num / (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1.0)
        x = np.where(tail < 0.02425, x_tail, x_mid)
        x = np.where(p <= 0.0, -np.inf, np.where(p >= 1.0, np.inf, x))
        e = _phi(x) - p
        u = e * math.sqrt(2.0 * math.pi) * np.exp(0.5 * x * x)
        refined = x - u / (1.0 + 0.5 * x * u)
    return np.where(np.isfinite(refined), refined, x)


@dataclass(frozen=True)
class LongTail:
    """One long-tailed family with its parameters and support ``[x_min, min(bound, x_max)]``.

    ``params`` follow :data:`FAMILIES`: power_law (alpha > 1), exponential (lam > 0), stretched_exponential
    (lam > 0, beta > 0), log_normal (mu, sigma > 0; parameters of ln x), power_law_with_cutoff
    (alpha > 0, lam > 0; density ∝ x^-alpha e^(-lam x)).
    """

    family: str = "power_law"
    params: tuple[float, ...] = (1.5,)
    x_min: float = 1.0
    x_max: float = -1.0

    def __post_init__(self) -> None:
        if self.family not in FAMILIES:
            raise ValueError(f"family: unknown long-tail family {self.family!r}; one of {sorted(FAMILIES)}")
        names = FAMILIES[self.family]
        params = tuple(float(p) for p in self.params)
        object.__setattr__(self, "params", params)
        if len(params) != len(names):
            raise ValueError(f"params: {self.family} takes {len(names)} parameter(s) {names}, got {params}")
        if not all(math.isfinite(p) for p in params):
            raise ValueError(f"params: {self.family} parameters must be finite, got {params}")
        for name, value in zip(names, params, strict=True):
            lower = _LOWER[self.family].get(name)
            if lower is not None and not value > lower:
                raise ValueError(f"{name}: {self.family} needs {name} > {lower:g}, got {name}={value}")
        if not (math.isfinite(self.x_min) and self.x_min > 0.0):
            raise ValueError(f"x_min must be positive and finite, got {self.x_min}")
        if self.x_max != -1.0 and not self.x_max > self.x_min:
            raise ValueError(f"x_min must be < x_max (x_max = -1: none), got {self.x_min} >= {self.x_max}")
        if self.family == "log_normal" and (math.log(self.x_min) - params[0]) / params[1] > 37.0:
            raise ValueError("x_min: log_normal is truncated more than 37 sigma into its upper tail")

    def upper(self, bound: float) -> float:
        """Upper end of the support: ``min(bound, x_max)`` (``bound`` alone when ``x_max = -1``)."""
        upper = float(bound) if self.x_max == -1.0 else min(float(bound), self.x_max)
        if not upper > self.x_min:
            raise ValueError(f"x_min must be < the upper bound min(bound, x_max) = {upper}, got {self.x_min}")
        return upper

    # --- closed-form pieces -------------------------------------------------------------------------------
    def _log_sf(self, x: np.ndarray) -> np.ndarray:
        """ln S(x) of the untruncated law on [x_min, ∞) for the three survival-form families."""
        p, x0 = self.params, self.x_min
        if self.family == "power_law":
            return (1.0 - p[0]) * np.log(x / x0)
        if self.family == "exponential":
            return -p[0] * (x - x0)
        return -((p[0] * x) ** p[1] - (p[0] * x0) ** p[1])

    def _log_normal_ends(self, upper: float) -> tuple[float, float, float]:
        """(a, b, mass): standardised truncation points of ln x and the normal mass between them."""
        mu, sigma = self.params
        a = (math.log(self.x_min) - mu) / sigma
        b = (math.log(upper) - mu) / sigma if math.isfinite(upper) else math.inf
        # in the upper tail a difference of survival functions keeps precision
        mass = float(_phi(-a) - _phi(-b)) if a > 0.0 else float(_phi(b) - _phi(a))
        if not mass > 0.0:
            raise ValueError(f"x_min: log_normal has no representable mass on [x_min, {upper}]")
        return a, b, mass

    def _cutoff_grid(self, upper: float) -> tuple[float, np.ndarray]:
        """(panel width, cumulative integral at panel edges) of (x/x_min)^-alpha e^(-lam (x - x_min))."""
        alpha, lam = self.params
        x0 = self.x_min
        end = min(upper, x0 + 745.0 / lam)  # beyond, e^(-lam (x - x_min)) underflows
        width = math.log(end / x0) / _PANELS
        v = (np.arange(_PANELS)[:, None] + 0.5 * (_GL_NODES + 1.0)) * width
        panel = 0.5 * width * (self._cutoff_h(v) @ _GL_WEIGHTS)
        return width, np.concatenate([[0.0], np.cumsum(panel)])

    def _cutoff_h(self, v: np.ndarray) -> np.ndarray:
        """Integrand in v = ln(x/x_min): x_min (x/x_min)^(1-alpha) e^(-lam (x - x_min))."""
        alpha, lam = self.params
        return self.x_min * np.exp((1.0 - alpha) * v - lam * self.x_min * np.expm1(v))

    def _cutoff_integral(self, x: np.ndarray, upper: float) -> np.ndarray:
        """∫_{x_min}^{x} h, for x in [x_min, upper], by composite Gauss-Legendre quadrature."""
        width, cum = self._cutoff_grid(upper)
        v = np.minimum(np.log(x / self.x_min), width * _PANELS)
        j = np.minimum((v / width).astype(np.int64), _PANELS - 1)
        start = j * width
        nodes = start[..., None] + 0.5 * (v - start)[..., None] * (_GL_NODES + 1.0)
        return cum[j] + 0.5 * (v - start) * (self._cutoff_h(nodes) @ _GL_WEIGHTS)

    # --- public API --------------------------------------------------------------------------------------
    def ppf(self, u: np.ndarray, bound: float) -> np.ndarray:
        """Inverse truncated CDF at ``u`` in [0, 1) (all families except power_law_with_cutoff)."""
        upper = self.upper(bound)
        u = np.asarray(u, dtype=float)
        p, x0 = self.params, self.x_min
        if self.family == "power_law_with_cutoff":
            raise ValueError("family: power_law_with_cutoff has no closed-form inverse CDF; use sample()")
        with np.errstate(over="ignore"):  # an unbounded law may exceed the float range
            if self.family == "log_normal":
                a, b, mass = self._log_normal_ends(upper)
                z = -_ndtri(_phi(-a) - u * mass) if a > 0.0 else _ndtri(_phi(a) + u * mass)
                x = np.exp(p[0] + p[1] * z)
            else:
                f_upper = -math.expm1(float(self._log_sf(np.float64(upper)))) if math.isfinite(upper) else 1.0
                log_s = np.log1p(-u * f_upper)
                if self.family == "power_law":
                    x = x0 * np.exp(log_s / (1.0 - p[0]))
                elif self.family == "exponential":
                    x = x0 - log_s / p[0]
                else:
                    x = ((p[0] * x0) ** p[1] - log_s) ** (1.0 / p[1]) / p[0]
        return np.clip(x, x0, min(upper, np.finfo(float).max))  # guards rounding and overflow only

    def sample(self, rng: np.random.Generator, size: int, bound: float) -> np.ndarray:
        """``size`` exact draws from the law truncated to ``[x_min, min(bound, x_max)]``.

        Takes a Generator rather than uniforms because ``power_law_with_cutoff`` uses rejection: it proposes
        from whichever of the truncated exponential and the truncated power law accepts more often.
        """
        if self.family != "power_law_with_cutoff":
            return self.ppf(rng.random(size), bound)
        upper = self.upper(bound)
        alpha, lam = self.params
        x0 = self.x_min
        mass = float(self._cutoff_integral(np.float64(upper), upper))
        z_exp = -math.expm1(-lam * (upper - x0)) / lam
        log_r = math.log(upper / x0)
        z_pow = x0 * log_r if alpha == 1.0 else x0 * math.expm1((1.0 - alpha) * log_r) / (1.0 - alpha)
        use_exp = mass / z_exp >= mass / z_pow
        rate = max(mass / z_exp, mass / z_pow)
        out = np.empty(size)
        filled = 0
        while filled < size:
            k = min(int((size - filled) / rate * 1.2) + 16, 1 << 22)
            u = rng.random(k)
            if use_exp:
                x = x0 - np.log1p(u * math.expm1(-lam * (upper - x0))) / lam
                keep = rng.random(k) < (x / x0) ** -alpha
            else:
                if alpha == 1.0:
                    x = x0 * np.exp(u * log_r)
                else:
                    x = x0 * np.exp(np.log1p(u * math.expm1((1.0 - alpha) * log_r)) / (1.0 - alpha))
                keep = rng.random(k) < np.exp(-lam * (x - x0))
            x = np.clip(x[keep], x0, upper)[: size - filled]
            out[filled : filled + x.size] = x
            filled += x.size
        return out

    def cdf(self, x, bound: float) -> np.ndarray:
        """Truncated CDF on ``[x_min, min(bound, x_max)]`` (0 below, 1 above)."""
        upper = self.upper(bound)
        x = np.clip(np.asarray(x, dtype=float), self.x_min, upper)
        if self.family == "log_normal":
            a, _, mass = self._log_normal_ends(upper)
            z = (np.log(x) - self.params[0]) / self.params[1]
            return np.clip(((_phi(-a) - _phi(-z)) if a > 0.0 else (_phi(z) - _phi(a))) / mass, 0.0, 1.0)
        if self.family == "power_law_with_cutoff":
            mass = self._cutoff_integral(np.float64(upper), upper)
            return np.clip(self._cutoff_integral(x, upper) / mass, 0.0, 1.0)
        log_s_upper = self._log_sf(np.float64(upper)) if math.isfinite(upper) else -math.inf
        return np.clip(np.expm1(self._log_sf(x)) / np.expm1(log_s_upper), 0.0, 1.0)

    def logpdf(self, x, bound: float) -> np.ndarray:
        """Log density of the truncated law (``-inf`` outside the support); sum it for a log-likelihood."""
        upper = self.upper(bound)
        x = np.asarray(x, dtype=float)
        inside = (x >= self.x_min) & (x <= upper)
        xs = np.where(inside, x, self.x_min)
        p, x0 = self.params, self.x_min
        if self.family == "log_normal":
            mass = self._log_normal_ends(upper)[2]
            z = (np.log(xs) - p[0]) / p[1]
            out = -np.log(xs) - math.log(p[1]) - 0.5 * math.log(2.0 * math.pi) - 0.5 * z * z - math.log(mass)
        elif self.family == "power_law_with_cutoff":
            norm = float(self._cutoff_integral(np.float64(upper), upper))
            out = -p[0] * np.log(xs / x0) - p[1] * (xs - x0) - math.log(norm)
        else:
            log_f_upper = (
                math.log(-math.expm1(float(self._log_sf(np.float64(upper))))) if math.isfinite(upper) else 0.0
            )
            if self.family == "power_law":
                log_pdf = math.log(p[0] - 1.0) - math.log(x0) - p[0] * np.log(xs / x0)
            elif self.family == "exponential":
                log_pdf = math.log(p[0]) - p[0] * (xs - x0)
            else:
                log_pdf = (
                    math.log(p[1]) + p[1] * math.log(p[0]) + (p[1] - 1.0) * np.log(xs) + self._log_sf(xs)
                )
            out = log_pdf - log_f_upper
        return np.where(inside, out, -np.inf)
