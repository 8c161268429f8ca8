"""The retrieval stage: per request, ``C`` distinct candidate items for each user.

A mix of the user's likely topics (from the observable consumption history), popular items and uniform
exploration, as in a retrieval -> ranking cascade. Candidates come sorted by item id, which the world orders by
descending popularity: index 0 is the retrieval stage's best guess.
"""

from __future__ import annotations

import numpy as np

from recoworld.catalog import Catalog
from recoworld.rng import Streams

P_RETRIEVE, P_REFILL = 20, 40  # P_REFILL + round for each refill round
_REFILL_ROUNDS = 6
_TOPIC_PRIOR = 0.02


class Retrieval:
    """Draws candidate sets from per-slot random streams; row-wise, so batch invariant."""

    def __init__(self, catalog: Catalog, num_candidates: int, topic_share: float, popular_share: float):
        self.catalog = catalog
        self.num_candidates = num_candidates
        if num_candidates > catalog.num_items:
            raise ValueError(f"num_candidates: {num_candidates} exceeds the catalogue's {catalog.num_items} items")
        self.n_topic = int(round(num_candidates * topic_share))
        self.n_popular = int(round(num_candidates * popular_share))
        self.n_random = num_candidates - self.n_topic - self.n_popular

    def __call__(self, streams: Streams, rows: np.ndarray, topic_share: np.ndarray) -> np.ndarray:
        c, m = self.catalog, self.catalog.num_items
        nt, npop = self.n_topic, self.n_popular
        u = streams.uniform(rows, P_RETRIEVE, 3 * nt + npop + self.n_random)
        weights = topic_share + _TOPIC_PRIOR
        cdf = np.cumsum(weights, axis=1)
        cdf /= cdf[:, -1:]
        topics = np.minimum((u[:, :nt, None] > cdf[:, None, :]).sum(axis=2), c.num_topics - 1)
        by_topic = c.sample_in_topics(topics, u[:, nt : 2 * nt])
        popular = c.sample_popular(u[:, 2 * nt : 2 * nt + npop + nt])
        by_topic = np.where(by_topic < 0, popular[:, npop:], by_topic)  # empty topics fall back to popular items
        uniform = np.minimum((u[:, 3 * nt + npop :] * m).astype(np.int64), m - 1)
        items = np.sort(np.concatenate([by_topic, popular[:, :npop], uniform], axis=1), axis=1)
        return self._make_distinct(streams, rows, items)

    def _make_distinct(self, streams: Streams, rows: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Replace repeated items with uniform draws until every row is distinct (deterministic per row)."""
        m = self.catalog.num_items
        for round_ in range(_REFILL_ROUNDS):
            dup = np.zeros(items.shape, dtype=bool)
            dup[:, 1:] = items[:, 1:] == items[:, :-1]
            if not dup.any():
                return items
            fresh = np.minimum((streams.uniform(rows, P_REFILL + round_, items.shape[1]) * m).astype(np.int64), m - 1)
            items = np.sort(np.where(dup, fresh, items), axis=1)
        for r in np.flatnonzero((items[:, 1:] == items[:, :-1]).any(axis=1)):  # vanishingly rare
            unique = np.unique(items[r])
            spare = np.setdiff1d(np.arange(m), unique)[: items.shape[1] - unique.size]
            items[r] = np.sort(np.concatenate([unique, spare]))
        return items
