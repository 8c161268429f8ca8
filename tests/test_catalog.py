"""Tests for recoworld.catalog."""

from __future__ import annotations

import pickle
import time
from types import SimpleNamespace

import numpy as np
import pytest

from recoworld.catalog import TOPIC_VOCABULARY, Catalog, kmeans, residual_kmeans, topic_vocabulary


def _world(m: int = 2000, f: int = 20, seed: int = 0) -> SimpleNamespace:
    """A HYDRA-like catalogue: nearly one-hot α, long-tailed popularity."""
    rng = np.random.default_rng(seed)
    mu = rng.dirichlet(np.full(f, 1.0), size=m)
    alpha = np.array([rng.dirichlet(0.1 * r + 1e-3) for r in mu])
    popularity = (1.0 - rng.random(m)) ** (-1.0 / 0.5) / 1000.0
    return SimpleNamespace(alpha=alpha, popularity=popularity)


@pytest.fixture(scope="module")
def world() -> SimpleNamespace:
    return _world()


@pytest.fixture(scope="module")
def cat(world: SimpleNamespace) -> Catalog:
    return Catalog.from_world(world, seed=7)


def test_shapes_and_dtypes(cat: Catalog, world: SimpleNamespace) -> None:
    m, f = world.alpha.shape
    assert cat.num_items == m and cat.num_topics == f and cat.embedding_dim == 16
    assert cat.embedding.shape == (m, 16) and cat.embedding.dtype == np.float32
    assert cat.semantic_id.shape == (m, 3) and cat.semantic_id.min() >= 0 and cat.semantic_id.max() < 16
    assert cat.related_topics.shape == (f, 3)
    assert cat.topic_offsets.shape == (f + 1,) and cat.topic_offsets[-1] == m
    for a in (cat.topic, cat.popularity, cat.log_popularity, cat.duration, cat.items_by_topic):
        assert a.shape == (m,)
    assert len(cat.title) == len(cat.description) == m
    assert len(cat.topic_names) == len(cat.topic_keywords) == f
    np.testing.assert_allclose(cat.log_popularity, np.log(world.popularity))
    assert not cat.embedding.flags.writeable and not cat.alpha.flags.writeable


def test_deterministic_and_seed_dependent(world: SimpleNamespace, cat: Catalog) -> None:
    again = Catalog.from_world(world, seed=7)
    for name in (
        "embedding",
        "duration",
        "semantic_id",
        "related_topics",
        "items_by_topic",
        "popularity_cdf",
    ):
        np.testing.assert_array_equal(getattr(cat, name), getattr(again, name))
    assert cat.title == again.title and cat.description == again.description
    other = Catalog.from_world(world, seed=8)
    assert not np.array_equal(cat.embedding, other.embedding)
    np.testing.assert_array_equal(cat.topic, other.topic)  # the latent side does not depend on the seed


def test_unit_norm_embeddings_and_topic(cat: Catalog, world: SimpleNamespace) -> None:
    np.testing.assert_allclose(np.linalg.norm(cat.embedding, axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(cat.topic, np.argmax(world.alpha, axis=1))
    # same-topic items are close in the embedding space
    e, t = cat.embedding.astype(np.float64), cat.topic
    sim = e[:300] @ e[:300].T
    same = t[:300, None] == t[None, :300]
    assert sim[same].mean() > sim[~same].mean() + 0.3


def test_semantic_ids_separate_topics(cat: Catalog) -> None:
    t, s = cat.topic, cat.semantic_id
    same_topic = t[:, None] == t[None, :]
    same_code = s[:, 0, None] == s[None, :, 0]
    assert same_code[same_topic].mean() > 3 * same_code.mean()
    full = (s[:, None, :] == s[None, :, :]).all(-1)
    # sharing the whole code almost implies sharing the topic
    assert same_topic[full].mean() > 0.8
    # the codes are residual: deeper levels still carry information (several codes used)
    assert all(len(np.unique(s[:, level])) > 4 for level in range(s.shape[1]))


def test_residual_kmeans_reduces_error() -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((500, 4))
    c1, l1 = kmeans(x, 8, np.random.default_rng(1))
    codes = residual_kmeans(x, 2, 8, np.random.default_rng(1))
    np.testing.assert_array_equal(codes[:, 0], l1)
    err1 = ((x - c1[l1]) ** 2).sum()
    assert err1 < ((x - x.mean(0)) ** 2).sum()
    c_a, _ = kmeans(x, 8, np.random.default_rng(1))
    np.testing.assert_array_equal(c1, c_a)
    # fewer points than codes
    c, lab = kmeans(x[:3], 8, np.random.default_rng(0))
    assert c.shape == (3, 4) and sorted(lab.tolist()) == [0, 1, 2]


def test_related_topics(cat: Catalog) -> None:
    f = cat.num_topics
    rel = cat.related_topics
    assert (rel != np.arange(f)[:, None]).all()
    assert ((rel >= 0) & (rel < f)).all()
    assert all(len(set(r)) == 3 for r in rel.tolist())
    small = Catalog.from_arrays(np.eye(3)[[0, 1, 2, 0]] + 0.01, np.ones(4), seed=0)
    assert (small.related_topics[:, 2] == -1).all()
    assert (small.related_topics[:, :2] != np.arange(3)[:, None]).all()


def test_topic_index_and_cdfs(cat: Catalog) -> None:
    f = cat.num_topics
    off = cat.topic_offsets
    ibt = cat.items_by_topic
    assert sorted(ibt.tolist()) == list(range(cat.num_items))
    for k in range(f):
        block = ibt[off[k] : off[k + 1]]
        assert (cat.topic[block] == k).all()
        assert (np.diff(cat.popularity[block]) <= 0).all()
        if len(block):
            cdf = cat.topic_popularity_cdf[off[k] : off[k + 1]]
            assert cdf[-1] == 1.0 and (np.diff(cdf) >= 0).all() and cdf[0] > 0
            expected = np.cumsum(cat.popularity[block]) / cat.popularity[block].sum()
            np.testing.assert_allclose(cdf, expected, rtol=1e-9)
    assert cat.popularity_cdf[-1] == 1.0 and (np.diff(cat.popularity_cdf) >= 0).all()
    assert (np.diff(cat.popularity[cat.popular_items]) <= 0).all()


def test_sampling_helpers(cat: Catalog) -> None:
    rng = np.random.default_rng(3)
    u = rng.random(20000)
    items = cat.sample_popular(u)
    top = cat.popular_items[0]
    share = (items == top).mean()
    assert abs(share - cat.popularity[top] / cat.popularity.sum()) < 0.02
    topics = rng.integers(0, cat.num_topics, 20000)
    picked = cat.sample_in_topics(topics, u)
    assert (cat.topic[picked] == topics).all()
    edge = cat.sample_in_topics(np.arange(cat.num_topics), np.full(cat.num_topics, np.nextafter(1.0, 0.0)))
    assert (cat.topic[edge] == np.arange(cat.num_topics)).all()


def test_empty_topics() -> None:
    alpha = np.zeros((6, 5))
    alpha[[0, 1, 2], 0] = 1.0
    alpha[[3, 4, 5], 3] = 1.0
    alpha += 1e-3
    cat = Catalog.from_arrays(alpha, np.arange(1.0, 7.0), seed=0)
    np.testing.assert_array_equal(cat.topic_sizes, [3, 0, 0, 3, 0])
    np.testing.assert_array_equal(cat.topic_offsets, [0, 3, 3, 3, 6, 6])
    out = cat.sample_in_topics(np.array([0, 1, 3, 4]), np.array([0.5, 0.5, 0.0, 0.99]))
    assert out[1] == -1 and out[3] == -1 and cat.topic[out[0]] == 0 and cat.topic[out[2]] == 3
    assert out[2] == 5  # u = 0 picks the most popular item of the topic


def test_texts_readable(cat: Catalog) -> None:
    assert len(set(cat.title)) == cat.num_items  # de-duplicated
    for i in range(0, cat.num_items, 97):
        title, desc = cat.title[i], cat.description[i]
        assert 2 <= len(title.split()) <= 9 and title[0].isupper()
        assert desc.endswith(".") and desc.split()[0] in ("A", "An")
        assert cat.topic_names[cat.topic[i]] in desc
        assert any(kw in desc for kw in cat.topic_keywords[cat.topic[i]])
        assert cat.title[i] in cat.item_text(i)


def test_vocabulary() -> None:
    names = [n for n, _ in TOPIC_VOCABULARY]
    assert len(set(names)) == len(names) >= 64
    assert all(len(kws) >= 4 for _, kws in TOPIC_VOCABULARY)
    many, _ = topic_vocabulary(150)
    assert len(set(many)) == 150


def test_duration(cat: Catalog) -> None:
    assert cat.duration.min() >= 0.25 and cat.duration.max() <= 60.0
    assert 2.5 < np.median(cat.duration) < 6.5


def test_project_and_pickle(cat: Catalog) -> None:
    v = cat.project(np.eye(cat.num_topics)[[0, 1]])
    assert v.shape == (2, 16)
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    back = pickle.loads(pickle.dumps(cat))
    np.testing.assert_array_equal(back.semantic_id, cat.semantic_id)


def test_validation() -> None:
    with pytest.raises(ValueError, match="alpha"):
        Catalog.from_arrays(np.ones(3), np.ones(3))
    with pytest.raises(ValueError, match="popularity"):
        Catalog.from_arrays(np.ones((3, 2)), np.ones(4))
    with pytest.raises(ValueError, match="popularity"):
        Catalog.from_arrays(np.ones((3, 2)), np.array([1.0, 0.0, 1.0]))


def test_fast() -> None:
    w = _world(m=5000, f=20, seed=1)
    t0 = time.perf_counter()
    Catalog.from_world(w, seed=0)
    assert time.perf_counter() - t0 < 1.5  # typically ~0.1 s; loose for loaded CI machines


def test_from_hydra_world() -> None:
    hydra = pytest.importorskip("recoworld.generators.hydra")
    cfg = hydra.HydraConfig(num_users=200, num_items=300, num_attrs=8)
    world = hydra.generate(cfg, seed=0)
    cat = Catalog.from_world(world, seed=0)
    np.testing.assert_array_equal(cat.topic, np.argmax(world.alpha, axis=1))
    assert cat.num_items == 300 and cat.num_topics == 8
