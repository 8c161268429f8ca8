"""The simulator's fast paths equal the plain computations they replace (streams, gathers, selections)."""

import numpy as np
import pytest

from recoworld import rng as rw
from recoworld.arrays import selector, take_rows
from recoworld.config import WorldConfig
from recoworld.users.synthetic import novelty_traits
from recoworld.world import build_world


def _streams(n: int, seed: int = 0) -> rw.Streams:
    streams = rw.Streams(n)
    streams.assign(np.arange(n), rw.user_key(np.arange(n) + seed, np.zeros(n, dtype=np.int64)))
    streams.counter[:] = np.arange(n, dtype=np.uint64) * np.uint64(3)
    return streams


def _splitmix_reference(x: np.ndarray) -> np.ndarray:
    z = x.astype(np.uint64) + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def test_splitmix64_matches_the_textbook_finaliser(rng):
    x = rng.integers(0, 2**63, (17, 5)).astype(np.uint64)
    before = x.copy()
    mixed = rw.splitmix64(x)
    assert mixed.dtype == np.uint64
    np.testing.assert_array_equal(mixed, _splitmix_reference(x))
    np.testing.assert_array_equal(x, before)  # the input is left untouched


def test_uniform_is_the_mixed_base_plus_index():
    streams = _streams(6)
    rows = np.array([4, 1, 5])
    base = rw.splitmix64(
        streams.keys[rows] ^ rw.splitmix64((streams.counter[rows] << np.uint64(16)) | np.uint64(7))
    )
    words = _splitmix_reference(base[:, None] + np.arange(9, dtype=np.uint64) * rw._GOLDEN)
    expected = ((words >> np.uint64(11)).astype(np.float64) + 0.5) / 2.0**53
    np.testing.assert_array_equal(streams.uniform(rows, 7, 9), expected)


def test_draw_gives_each_purpose_its_own_uniforms():
    streams = _streams(8, seed=3)
    rows = np.array([0, 2, 3, 7])
    layout = rw.Layout({5: 20, 6: 2, 1: 21, 3: 10})
    drawn = streams.draw(rows, layout)
    assert set(drawn) == {5, 6, 1, 3}
    for purpose, n in {5: 20, 6: 2, 1: 21, 3: 10}.items():
        np.testing.assert_array_equal(drawn[purpose], streams.uniform(rows, purpose, n))
    np.testing.assert_array_equal(streams.draw(slice(None), layout)[1], streams.uniform(np.arange(8), 1, 21))


def test_uniform_at_draws_exactly_the_requested_cells():
    streams = _streams(5, seed=11)
    rows = np.array([3, 0, 4])
    full = streams.uniform(rows, 41, 50)
    row, index = np.array([0, 0, 2, 1, 2]), np.array([3, 49, 0, 17, 17])
    np.testing.assert_array_equal(streams.uniform_at(rows, 41, row, index), full[row, index])


def test_beta_sampler_is_row_wise():
    """Each row's Beta variate depends only on its own shapes and uniforms (batch invariance)."""
    u = rw.to_unit(_splitmix_reference(np.arange(9 * rw.BETA_UNIFORMS).reshape(9, -1)))
    a, b = np.linspace(0.3, 4.0, 9), np.linspace(2.0, 0.5, 9)
    together = rw.beta_from_uniforms(a, b, u)
    alone = [rw.beta_from_uniforms(a[i : i + 1], b[i : i + 1], u[i : i + 1])[0] for i in range(9)]
    np.testing.assert_array_equal(together, alone)
    assert ((together > 0) & (together < 1)).all()


def test_take_rows_equals_take_along_axis(rng):
    matrix = rng.random((6, 9))
    columns = rng.integers(0, 9, (6, 4))
    np.testing.assert_array_equal(take_rows(matrix, columns), np.take_along_axis(matrix, columns, axis=1))
    view = matrix[::2]  # a non-contiguous selection works too
    np.testing.assert_array_equal(take_rows(view, columns[:3]), np.take_along_axis(view, columns[:3], axis=1))


@pytest.mark.parametrize(
    "rows, batch, full",
    [
        (np.arange(5), 5, True),
        (np.arange(1), 1, True),
        (np.array([0, 2, 2, 4]), 5, False),
        (np.array([0, 3, 2, 1, 4]), 5, False),
        (np.array([0, 1, 2]), 5, False),
        (np.zeros(0, dtype=np.int64), 0, False),
    ],
)
def test_selector_is_a_view_only_for_every_slot_in_order(rows, batch, full):
    sel = selector(rows, batch)
    assert isinstance(sel, slice) == full
    data = np.arange(batch) * 10
    np.testing.assert_array_equal(data[sel], data[rows])


def test_novelty_traits_are_the_members_own_and_cached():
    world = build_world(WorldConfig())
    traits = novelty_traits(world, 2.0, 2.0)
    assert traits.shape == (world.num_users,) and not traits.flags.writeable
    assert novelty_traits(world, 2.0, 2.0) is traits
    skewed = novelty_traits(world, 8.0, 1.0)
    assert skewed.mean() > traits.mean() + 0.2  # Beta(8, 1) has mean 0.89, Beta(2, 2) 0.5
    assert abs(traits.mean() - 0.5) < 0.02
