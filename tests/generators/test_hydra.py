"""HYDRA generator: structure, laws, determinism, chunk invariance, top-up, density targeting, validation."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
from scipy import stats

from recoworld.generators.hydra import GRANULE, HydraConfig, HydraWorld, _top_up, generate, gini
from recoworld.generators.longtail import LongTail

SMALL = HydraConfig(num_users=600, num_items=500)
TWO = replace(SMALL, user_shares=(0.5, 0.5), item_shares=(0.5, 0.5), target_interactions=20000)


@pytest.fixture(scope="module")
def world() -> HydraWorld:
    return generate(SMALL, seed=1)


def _within_share(w: HydraWorld) -> float:
    """Share of interactions whose user population equals the item category."""
    indptr, indices = w.interactions
    users = np.repeat(np.arange(w.num_users), np.diff(indptr))
    return float(np.mean(w.user_population[users] == w.item_category[indices]))


def _pairs(w: HydraWorld) -> set[tuple[int, int]]:
    indptr, indices = w.interactions
    return set(
        zip(np.repeat(np.arange(w.num_users), np.diff(indptr)).tolist(), indices.tolist(), strict=True)
    )


# --- latents ----------------------------------------------------------------------------------------------
def test_shapes_and_latent_laws(world: HydraWorld) -> None:
    n, m, f = 600, 500, 64
    assert world.rho.shape == (n, f) and world.alpha.shape == (m, f)
    assert world.rho.dtype == world.alpha.dtype == np.float64
    np.testing.assert_allclose(world.rho.sum(axis=1), 1.0, atol=1e-12)
    np.testing.assert_allclose(world.alpha.sum(axis=1), 1.0, atol=1e-12)
    assert np.all(np.isfinite(world.rho)) and np.all(np.isfinite(world.alpha))
    assert world.alpha.max(axis=1).mean() > 0.9  # Dir(0.1 μ): nearly one topic per item
    assert 0.2 < world.rho.max(axis=1).mean() < 0.9  # Dir(10 μ): spread over several topics
    assert world.engagement.shape == (n,) and world.popularity.shape == (m,)
    assert world.engagement.min() >= 1.0 / m and world.engagement.max() <= 1.0
    assert world.popularity.min() >= 1.0 / n and world.popularity.max() <= 1.0
    with pytest.raises(ValueError):
        world.rho[0, 0] = 0.5  # frozen world: read-only arrays


def test_engagement_and_popularity_follow_their_truncated_laws() -> None:
    config = replace(
        SMALL,
        num_users=3000,
        engagement=LongTail("stretched_exponential", (0.05, 0.6), x_min=2.0),
        popularity=LongTail("log_normal", (1.0, 1.5), x_min=1.0, x_max=400.0),
    )
    w = generate(config, seed=3, realise=False)
    z, y = w.engagement * config.num_items, w.popularity * config.num_users
    assert stats.kstest(z, lambda x: config.engagement.cdf(x, config.num_items)).pvalue > 0.01
    assert stats.kstest(y, lambda x: config.popularity.cdf(x, config.num_users)).pvalue > 0.01
    assert y.max() <= 400.0
    wrong = LongTail("stretched_exponential", (0.05, 0.7), x_min=2.0)
    assert stats.kstest(z, lambda x: wrong.cdf(x, config.num_items)).pvalue < 1e-3


def test_groups_are_contiguous_blocks_and_nobody_is_dropped() -> None:
    config = replace(SMALL, num_users=601, num_items=499, user_shares=(1 / 3,) * 3, item_shares=(0.25, 0.75))
    w = generate(config, seed=0, realise=False)
    assert np.bincount(w.user_population).tolist() == [200, 200, 201]
    assert np.bincount(w.item_category).tolist() == [124, 375]
    assert np.all(np.diff(w.user_population) >= 0) and np.all(np.diff(w.item_category) >= 0)


def test_faithful_blocks_exclude_the_own_block() -> None:
    w = generate(replace(SMALL, user_shares=(0.5, 0.5), item_shares=(0.5, 0.5)), seed=0, realise=False)
    own_mass = [w.rho[w.user_population == g][:, g * 32 : (g + 1) * 32].sum(axis=1).mean() for g in (0, 1)]
    assert max(own_mass) < 0.1  # ε = 0.02 on the own block
    item_topic = w.alpha.argmax(axis=1)
    assert np.mean(item_topic // 32 != w.item_category) > 0.95


# --- adoption probability -----------------------------------------------------------------------------------
@pytest.mark.parametrize("delta", [1.0, 0.7, 0.0])
def test_adoption_probability_matches_the_formula(delta: float) -> None:
    config = replace(SMALL, delta=delta, Lambda=30000.0)
    w = generate(config, seed=2, realise=False)
    affinity = np.einsum("uf,if->ui", w.rho, w.alpha)
    noisy = delta * affinity + (1.0 - delta) * 0.98
    t = config.Lambda * noisy * w.engagement[:, None] ** config.zeta * w.popularity[None, :] ** config.xi
    t = np.maximum(np.where(t > 1.0, 0.99, t), 1e-9)
    got = w.adoption_probability()
    np.testing.assert_allclose(got, t, rtol=1e-10, atol=1e-300)
    assert got.min() >= 1e-9 and got.max() <= 1.0


def test_caps_faithful_and_clean() -> None:
    big = replace(SMALL, Lambda=1e8)
    faithful = generate(big, seed=0, realise=False).adoption_probability()
    clean = generate(replace(big, cap="clean"), seed=0, realise=False).adoption_probability()
    assert clean.max() == 0.99
    assert np.any(faithful == 0.99) and np.any((faithful > 0.99) & (faithful <= 1.0))
    np.testing.assert_array_equal(np.minimum(faithful, 0.99)[faithful <= 1.0], clean[faithful <= 1.0])


def test_adoption_probability_is_batch_invariant(world: HydraWorld) -> None:
    full = world.adoption_probability()
    users, items = np.array([5, 599, 300, 5, 0]), np.array([3, 1, 499])
    np.testing.assert_array_equal(world.adoption_probability(users, items), full[users][:, items])
    np.testing.assert_array_equal(world.adoption_probability([123]), full[[123]])
    with pytest.raises(ValueError, match="users"):
        world.adoption_probability([600])


# --- realisation ----------------------------------------------------------------------------------------
def test_csr_and_helpers(world: HydraWorld) -> None:
    indptr, indices = world.interactions
    assert indptr.shape == (601,) and indptr[0] == 0 and indptr[-1] == indices.size == world.num_interactions
    for u in range(0, 600, 37):
        row = indices[indptr[u] : indptr[u + 1]]
        assert np.all(np.diff(row) > 0)
    assert world.user_degrees().sum() == world.item_degrees().sum() == world.num_interactions
    assert world.density == pytest.approx(world.num_interactions / (600 * 500))
    active = np.count_nonzero(world.user_degrees()) * np.count_nonzero(world.item_degrees())
    assert world.active_density == pytest.approx(world.num_interactions / active)
    assert world.item_coverage == pytest.approx(np.mean(world.item_degrees() > 0))
    assert 0.0 < world.item_coverage <= 1.0


def test_realised_count_matches_the_sum_of_probabilities() -> None:
    config = replace(SMALL, tau=0)
    w = generate(config, seed=4)
    t = w.adoption_probability()
    sd = math.sqrt(float(np.sum(t * (1.0 - t))))
    assert abs(w.num_interactions - t.sum()) < 4.0 * sd
    # heavier users and more popular items interact more (Spearman on the realised degrees)
    assert stats.spearmanr(w.engagement, w.user_degrees())[0] > 0.3
    assert stats.spearmanr(w.popularity, w.item_degrees())[0] > 0.3


def test_interactions_grow_with_lambda() -> None:
    config = replace(SMALL, cap="clean", tau=0)
    worlds = [generate(replace(config, Lambda=lam), seed=5) for lam in (2000.0, 8000.0, 32000.0)]
    counts = [w.num_interactions for w in worlds]
    assert counts[0] < counts[1] < counts[2]
    assert _pairs(worlds[0]) <= _pairs(worlds[1]) <= _pairs(worlds[2])  # same uniforms: nested sets
    defaults = [
        generate(replace(SMALL, Lambda=lam), seed=5).num_interactions for lam in (2000.0, 8000.0, 32000.0)
    ]
    assert defaults[0] < defaults[1] < defaults[2]  # faithful cap and τ top-up too


@pytest.mark.parametrize("tau", [1, 5])
def test_every_user_gets_tau_interactions_and_keeps_its_own(tau: int) -> None:
    config = replace(SMALL, Lambda=500.0)
    base = generate(replace(config, tau=0), seed=6)
    assert base.user_degrees().min() == 0  # the top-up has work to do
    topped = generate(replace(config, tau=tau), seed=6)
    assert topped.user_degrees().min() >= tau
    assert _pairs(base) <= _pairs(topped)
    assert (topped.user_degrees() == np.maximum(base.user_degrees(), tau)).mean() > 0.8  # few ties


def test_top_up_has_the_law_of_the_retry_loop() -> None:
    """The geometric shortcut against an explicit loop of rounds with fresh uniforms."""
    reps, tau = 3000, 3
    probs = np.linspace(0.002, 0.1, 12)
    rng = np.random.default_rng(0)
    base = rng.random((reps, probs.size)) < probs
    t = np.tile(probs, (reps, 1))
    fast = base.copy()
    _top_up(fast, t, 0, tau, np.random.SeedSequence(1))
    slow = base.copy()
    short = slow.sum(axis=1) < tau
    while short.any():
        slow[short] |= rng.random((int(short.sum()), probs.size)) < probs
        short = slow.sum(axis=1) < tau
    assert stats.ttest_ind(fast.sum(axis=1), slow.sum(axis=1)).pvalue > 0.001
    np.testing.assert_allclose(fast.mean(axis=0), slow.mean(axis=0), atol=4.5 * math.sqrt(0.25 / reps))
    assert fast.sum(axis=1).min() >= tau and np.all(fast[base])
    freq = [np.bincount(x.sum(axis=1), minlength=probs.size + 1) for x in (fast, slow)]
    keep = (freq[0] + freq[1]) > 10
    assert stats.chi2_contingency(np.array(freq)[:, keep]).pvalue > 0.001


# --- communities ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("epsilon, low, high", [(0.02, 0.9, 1.0), (0.2, 0.76, 0.86), (1.0, 0.45, 0.55)])
def test_within_community_share_in_faithful_mode(epsilon: float, low: float, high: float) -> None:
    shares = [_within_share(generate(replace(TWO, epsilon=epsilon), seed)) for seed in range(3)]
    assert low <= np.mean(shares) <= high


def test_own_block_mode_separates_three_communities() -> None:
    three = replace(TWO, user_shares=(1 / 3,) * 3, item_shares=(1 / 3,) * 3)
    own = _within_share(generate(replace(three, block_mode="own"), seed=0))
    faithful = _within_share(generate(three, seed=0))
    assert own >= 0.9 > 0.6 > faithful


# --- determinism and chunk invariance -----------------------------------------------------------------
def _assert_same(a: HydraWorld, b: HydraWorld) -> None:
    for name in ("rho", "alpha", "engagement", "popularity", "user_population", "item_category"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    np.testing.assert_array_equal(a.interactions[0], b.interactions[0])
    np.testing.assert_array_equal(a.interactions[1], b.interactions[1])
    assert a.Lambda == b.Lambda


@pytest.mark.parametrize(
    "config",
    [
        SMALL,
        replace(SMALL, Lambda=400.0, tau=4, jitter=True, delta=0.9),
        replace(SMALL, target_interactions=9000, cap="clean"),
    ],
    ids=["default", "topup-jitter-noise", "targeted"],
)
def test_output_is_identical_for_any_chunk_size(config: HydraConfig) -> None:
    worlds = [generate(replace(config, chunk_size=k), seed=8) for k in (7, 100, 200, 5000)]
    assert -(-100 // GRANULE) != -(-200 // GRANULE) != -(-5000 // GRANULE)  # three different chunkings
    for other in worlds[1:]:
        _assert_same(worlds[0], other)


def test_same_seed_same_world_other_seed_other_world(world: HydraWorld) -> None:
    _assert_same(world, generate(SMALL, seed=1))
    other = generate(SMALL, seed=2)
    assert not np.array_equal(world.rho, other.rho)
    assert not np.array_equal(world.engagement, other.engagement)


def test_streams_are_independent() -> None:
    a = generate(SMALL, seed=9)
    b = generate(
        replace(SMALL, Lambda=100.0, tau=3, cap="clean", popularity=LongTail("exponential", (0.1,))), 9
    )
    for name in ("rho", "alpha", "engagement"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert not np.array_equal(a.popularity, b.popularity)


def test_jitter_leaves_the_count_about_unchanged() -> None:
    plain = generate(SMALL, seed=10)
    jittered = generate(replace(SMALL, jitter=True), seed=10)
    assert abs(jittered.num_interactions - plain.num_interactions) <= 0.01 * plain.num_interactions


# --- mixtures -------------------------------------------------------------------------------------------
def test_per_entity_mixture() -> None:
    narrow, heavy = LongTail("exponential", (1.0,)), LongTail("power_law", (1.3,))
    config = replace(
        SMALL,
        num_users=4000,
        mixture="per_entity",
        engagement_mixture=((narrow, 0.6), (heavy, 0.4)),
    )
    w = generate(config, seed=11)
    z = w.engagement * config.num_items

    def mixture_cdf(x):
        return 0.6 * narrow.cdf(x, 500) + 0.4 * heavy.cdf(x, 500)

    assert stats.kstest(z, mixture_cdf).pvalue > 0.01
    assert stats.kstest(z, lambda x: heavy.cdf(x, 500)).pvalue < 1e-6
    assert (
        stats.kstest(w.popularity * config.num_users, lambda x: config.popularity.cdf(x, 4000)).pvalue > 0.01
    )
    assert w.num_interactions > 0 and w.user_degrees().min() >= 1


# --- density targeting ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "target, tau, cap",
    [(3000, 1, "faithful"), (20000, 1, "faithful"), (12000, 10, "clean"), (60000, 0, "faithful")],
)
def test_density_targeting_lands_within_half_a_percent(target: int, tau: int, cap: str) -> None:
    w = generate(replace(SMALL, target_interactions=target, tau=tau, cap=cap), seed=12)
    assert abs(w.num_interactions - target) <= 0.005 * target
    assert w.Lambda != SMALL.Lambda and w.user_degrees().min() >= tau
    again = generate(replace(SMALL, Lambda=w.Lambda, tau=tau, cap=cap), seed=12)
    assert again.num_interactions == w.num_interactions  # the solved λ reproduces the world


def test_unreachable_target_is_reported() -> None:
    with pytest.raises(ValueError, match="target_interactions"):
        generate(replace(SMALL, num_users=20, num_items=10, tau=0, target_interactions=200), seed=0)


# --- API errors ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"num_users": 0}, "num_users must be a positive integer"),
        ({"num_items": -5}, "num_items"),
        ({"num_attrs": 0}, "num_attrs"),
        ({"num_users": 2.5}, "num_users"),
        ({"num_users": True}, "num_users"),
        ({"chunk_size": 0}, "chunk_size"),
        ({"tau": -1}, "tau"),
        ({"tau": 501}, "tau"),
        ({"user_shares": (0.5, 0.6)}, "user_shares must sum to 1"),
        ({"item_shares": (1.0, 0.0)}, "item_shares"),
        ({"user_shares": ()}, "user_shares"),
        ({"user_shares": 0.5}, "user_shares"),
        ({"item_shares": ("a", "b")}, "item_shares"),
        ({"popularity": LongTail("log_normal", (0.0, 0.05), x_min=1e-3, x_max=2e-3)}, "popularity"),
        ({"user_shares": (1 / 65,) * 65}, "user_shares"),
        ({"engagement": LongTail(x_min=500.0)}, "engagement"),
        ({"popularity": LongTail(x_min=10.0, x_max=700.0), "num_users": 8}, "popularity"),
        ({"engagement": "power_law"}, "engagement"),
        ({"mixture": "both"}, "mixture"),
        ({"block_mode": "mine"}, "block_mode"),
        ({"cap": "soft"}, "cap"),
        ({"zeta": -1.0}, "zeta"),
        ({"xi": math.nan}, "xi"),
        ({"Lambda": 0.0}, "Lambda"),
        ({"delta": 1.5}, "delta"),
        ({"epsilon": 0.0}, "epsilon"),
        ({"jitter": "yes"}, "jitter"),
        ({"target_interactions": 10}, "target_interactions"),
        ({"target_interactions": 600 * 500 + 1}, "target_interactions"),
        ({"engagement_mixture": ((LongTail(), 1.0),)}, "engagement_mixture"),
        ({"mixture": "per_entity", "popularity_mixture": ((LongTail(), 0.5),)}, "popularity_mixture"),
        ({"mixture": "per_entity", "engagement_mixture": ((LongTail(), -0.5), (LongTail(), 1.5))}, "weight"),
    ],
)
def test_invalid_config_names_the_field(kwargs: dict, field: str) -> None:
    with pytest.raises(ValueError, match=field):
        replace(SMALL, **kwargs)


def test_invalid_long_tail_inside_config_names_the_parameter() -> None:
    with pytest.raises(ValueError, match="alpha"):
        HydraConfig(engagement=LongTail("power_law", (1.0,)))
    with pytest.raises(ValueError, match="family"):
        HydraConfig(popularity=LongTail("zipf", (2.0,)))
    with pytest.raises(ValueError, match="x_min must be < x_max"):
        HydraConfig(engagement=LongTail(x_min=3.0, x_max=2.0))


def test_unrealised_world() -> None:
    w = generate(SMALL, seed=0, realise=False)
    assert w.indptr is None
    with pytest.raises(ValueError, match="realise"):
        _ = w.interactions
    with pytest.raises(ValueError, match="realise"):
        generate(replace(SMALL, target_interactions=5000), realise=False)
    with pytest.raises(TypeError):
        generate({"num_users": 10})


def test_gini() -> None:
    assert gini([3.0, 3.0, 3.0]) == 0.0
    assert gini([0.0, 0.0, 0.0, 1.0]) == pytest.approx(0.75)
    assert gini(np.zeros(5)) == 0.0
    x = np.random.default_rng(0).pareto(1.5, 500)
    mad = np.abs(x[:, None] - x[None, :]).mean()
    assert gini(x) == pytest.approx(mad / (2.0 * x.mean()))
    with pytest.raises(ValueError):
        gini([1.0, -1.0])
