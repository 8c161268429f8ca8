"""The retrieval stage: per request, ``C`` distinct candidate items for each user.

A mix of the user's likely topics (those of randomly picked recently consumed items), popular items and
uniform exploration, as in a retrieval -> ranking cascade. Candidates come sorted by item id, which the world
orders by descending popularity: index 0 is the retrieval stage's best guess.
"""

from __future__ import annotations

import numpy as np

from recoworld.arrays import take_rows
from recoworld.catalog import Catalog
from recoworld.rng import Streams

P_RETRIEVE, P_REFILL = 20, 40  # P_REFILL + round for each refill round
_REFILL_ROUNDS = 6
_QUANTILES = 4096  # resolution of the inverse-CDF lookup tables


def _quantile_table(items: np.ndarray, cdf: np.ndarray) -> np.ndarray:
    """Item at each of ``_QUANTILES`` evenly spaced quantiles of a popularity CDF: O(1) sampling by lookup."""
    q = (np.arange(_QUANTILES) + 0.5) / _QUANTILES
    return items[np.minimum(np.searchsorted(cdf, q, side="right"), len(items) - 1)]


class Retrieval:
    """Draws candidate sets from per-slot random streams; row-wise, so batch invariant."""

    def __init__(
        self,
        catalog: Catalog,
        num_candidates: int,
        topic_share: float,
        popular_share: float,
        *,
        compiled: bool = False,
    ):
        self.catalog = catalog
        self.num_candidates = num_candidates
        if num_candidates > catalog.num_items:
            raise ValueError(
                f"num_candidates: {num_candidates} exceeds the catalogue's {catalog.num_items} items"
            )
        self.n_topic = int(round(num_candidates * topic_share))
        self.n_popular = int(round(num_candidates * popular_share))
        self.n_random = num_candidates - self.n_topic - self.n_popular
        self.popular_table = _quantile_table(catalog.popular_items, catalog.popularity_cdf)
        self.topic_table = np.empty((catalog.num_topics, _QUANTILES), dtype=np.int64)
        for g in range(catalog.num_topics):  # an empty topic falls back to the popular items
            lo, hi = catalog.topic_offsets[g], catalog.topic_offsets[g + 1]
            if hi > lo:
                self.topic_table[g] = _quantile_table(
                    catalog.items_by_topic[lo:hi], catalog.topic_popularity_cdf[lo:hi]
                )
            else:
                self.topic_table[g] = self.popular_table
        # one lookup for all three sources: topic quantiles, then popular quantiles, then every item id
        self._lookup = np.concatenate(
            [self.topic_table.ravel(), self.popular_table, np.arange(catalog.num_items)]
        )
        self._popular_start = catalog.num_topics * _QUANTILES
        self._uniform_start = self._popular_start + _QUANTILES
        self._topic_or_empty = np.append(catalog.topic, -1)  # item id m marks an empty history slot
        self._kernel = None
        if compiled:
            from recoworld.kernels import retrieve

            sizes = (
                self.n_topic, self.n_popular, self.n_random, catalog.num_topics, _QUANTILES,
                self._popular_start, self._uniform_start, catalog.num_items, P_RETRIEVE, P_REFILL,
            )  # fmt: skip
            self._kernel = retrieve.retrieve
            # item ids in the narrowest integer type: the kernel's random gathers from the lookup then stay in
            # the CPU cache (int16: 82 kB instead of 680 kB in the default world; measured 6-10% per step)
            ids = np.int16 if catalog.num_items < 2**15 else np.int32
            self.tables = (self._topic_or_empty, self._lookup.astype(ids), tuple(int(x) for x in sizes))

    def __call__(self, streams: Streams, rows: np.ndarray, history: np.ndarray) -> np.ndarray:
        """Candidates (R, C) for ``rows`` given every slot's recently consumed items ``history`` (B, H), in
        which item id ``num_items`` marks an empty slot."""
        if self._kernel is not None:
            out = np.empty((len(rows), self.num_candidates), dtype=np.int64)
            self._kernel(rows, streams.keys, streams.counter, history, self.tables, out)
            return out
        recent_topics = self._topic_or_empty[history[rows]]
        c, m = self.catalog, self.catalog.num_items
        nt, npop = self.n_topic, self.n_popular
        u = streams.uniform(rows, P_RETRIEVE, 2 * nt + npop + self.n_random)
        # a likely topic: that of a random recent item; an empty slot explores a uniformly random topic
        h = recent_topics.shape[1]
        slot = np.minimum((u[:, :nt] * h).astype(np.int64), h - 1)
        topics = take_rows(recent_topics, slot)
        empty = topics < 0
        if empty.any():
            g = c.num_topics
            topics[empty] = np.minimum((u[:, :nt][empty] * h * g).astype(np.int64) % g, g - 1)
        index = np.empty((len(u), self.num_candidates), dtype=np.int64)  # into self._lookup
        quantile = index[:, : nt + npop]
        np.multiply(u[:, nt : 2 * nt + npop], _QUANTILES, out=quantile, casting="unsafe")
        quantile[:, :nt] += topics * _QUANTILES
        quantile[:, nt:] += self._popular_start
        uniform = index[:, nt + npop :]
        np.multiply(u[:, 2 * nt + npop :], m, out=uniform, casting="unsafe")
        np.minimum(uniform, m - 1, out=uniform)
        uniform += self._uniform_start
        items = np.take(self._lookup, index)
        items.sort(axis=1)
        return self._make_distinct(streams, rows, items)

    def _make_distinct(self, streams: Streams, rows: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Replace repeated items with uniform draws until every row is distinct (deterministic per row).

        Round ``r`` redraws the repeats (all but the first of equal items, in sorted order) of the rows that
        have any, from purpose ``P_REFILL + r`` at their positions; only those rows and cells are drawn and
        re-sorted.
        """
        m = self.catalog.num_items
        active = np.arange(len(items))  # rows that may still hold repeats
        block = items
        for round_ in range(_REFILL_ROUNDS):
            dup = block[:, 1:] == block[:, :-1]
            has_dup = dup.any(axis=1)
            if not has_dup.any():
                return items
            active, block = active[has_dup], block[has_dup]
            r, k = np.nonzero(dup[has_dup])
            k += 1
            fresh = streams.uniform_at(rows[active], P_REFILL + round_, r, k)
            block[r, k] = np.minimum((fresh * m).astype(np.int64), m - 1)
            block.sort(axis=1)
            items[active] = block
        for r in np.flatnonzero((items[:, 1:] == items[:, :-1]).any(axis=1)):  # vanishingly rare
            unique = np.unique(items[r])
            spare = np.setdiff1d(np.arange(m), unique)[: items.shape[1] - unique.size]
            items[r] = np.sort(np.concatenate([unique, spare]))
        return items
