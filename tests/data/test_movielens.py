"""Tests for recoworld.data.movielens (the real MovieLens-100K file from the recbole wheel)."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import numpy as np
import pytest

from recoworld.data import movielens
from recoworld.data.movielens import (
    DatasetNotInstalledError,
    interaction_statistics,
    load_ml100k,
    locate_ml100k,
    reference_statistics,
)


def _installed() -> bool:
    try:
        locate_ml100k()
    except FileNotFoundError:
        return False
    return True


needs_data = pytest.mark.skipif(not _installed(), reason="needs `pip install --no-deps recbole==1.2.1`")


@pytest.fixture(scope="module")
def ml() -> movielens.Interactions:
    return load_ml100k()


@needs_data
def test_loader_shapes(ml: movielens.Interactions) -> None:
    assert ml.num_interactions == 100_000
    assert ml.num_users == 943 and ml.num_items == 1682
    assert ml.user.min() == 0 and ml.user.max() == 942
    assert ml.item.min() == 0 and ml.item.max() == 1681
    assert ml.user.dtype == np.int64 and ml.item.dtype == np.int64
    assert set(np.unique(ml.rating).tolist()) == {1.0, 2.0, 3.0, 4.0, 5.0}
    assert ml.timestamp.min() > 8e8 and ml.timestamp.dtype == np.int64
    assert ml.user_ids[0] == "1" and ml.user_ids[-1] == "943"  # numeric order, not lexicographic
    assert ml.user_degrees().sum() == ml.item_degrees().sum() == 100_000
    indptr, indices = ml.to_csr()
    assert indptr[-1] == 100_000 and indices.shape == (100_000,)
    assert (np.diff(indptr) == ml.user_degrees()).all()


@needs_data
def test_reference_statistics(ml: movielens.Interactions) -> None:
    s = reference_statistics(ml)
    assert s.num_users == 943 and s.num_items == 1682 and s.num_interactions == 100_000
    assert round(s.density, 4) == 0.0630
    assert s.user_degree[0] == 20 and s.user_degree[1] == 65 and round(s.user_degree[2]) == 106
    assert s.user_degree[3] == 737
    assert s.item_degree[0] == 1 and s.item_degree[1] == 27 and round(s.item_degree[2], 1) == 59.5
    assert s.item_degree[3] == 583
    assert round(s.gini_users, 3) == 0.472 and round(s.gini_items, 3) == 0.629


def test_statistics_of_arbitrary_degrees() -> None:
    s = interaction_statistics(np.array([1, 1, 2]), np.array([2, 2]))
    assert s.num_interactions == 4 and s.density == pytest.approx(4 / 6)
    assert s.user_degree == (1.0, 1.0, 4 / 3, 2.0) and s.gini_items == pytest.approx(0.0)


def test_clear_error_when_recbole_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    def missing(name: str) -> None:
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(movielens.importlib.metadata, "distribution", missing)
    with pytest.raises(DatasetNotInstalledError, match=r"pip install --no-deps recbole==1\.2\.1"):
        load_ml100k()
    with pytest.raises(FileNotFoundError):  # the custom error is a FileNotFoundError
        locate_ml100k()


def test_clear_error_when_file_missing(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    class FakeDist:
        def locate_file(self, rel: str) -> Path:
            return tmp_path / rel

    monkeypatch.setattr(movielens.importlib.metadata, "distribution", lambda name: FakeDist())
    with pytest.raises(DatasetNotInstalledError, match="recbole==1.2.1"):
        load_ml100k()


def test_loader_on_a_small_file(tmp_path: Path) -> None:
    p = tmp_path / "x.inter"
    p.write_text(
        "user_id:token\titem_id:token\trating:float\ttimestamp:float\n"
        "10\t7\t4\t100\n2\t7\t5\t90\n10\t3\t1\t80\n"
    )
    d = load_ml100k(p)
    assert d.num_users == 2 and d.num_items == 2 and d.user_ids == ("2", "10") and d.item_ids == ("3", "7")
    np.testing.assert_array_equal(d.user, [1, 0, 1])
    np.testing.assert_array_equal(d.item, [1, 1, 0])
    bad = tmp_path / "bad.inter"
    bad.write_text("a\tb\n1\t2\n")
    with pytest.raises(ValueError, match="header"):
        load_ml100k(bad)
