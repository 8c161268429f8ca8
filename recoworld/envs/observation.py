"""Observation spaces and their construction from the simulator state (docs/interfaces.md)."""

from __future__ import annotations

import numpy as np
from gymnasium import spaces

from recoworld.config import WorldConfig

CONTEXT_SIZE = 5
NUM_INSTRUCTION_TYPES = 4


def observation_space(config: WorldConfig, num_topics: int) -> spaces.Dict:
    """The single-user observation space of a world."""
    c, e, h, g = config.num_candidates, config.embedding_dim, config.history_length, num_topics
    entries = {
        "candidate_embedding": spaces.Box(-1.0, 1.0, (c, e), np.float32),
        "candidate_topic": spaces.Box(0, g - 1, (c,), np.int64),
        "candidate_popularity": spaces.Box(0.0, 1.0, (c,), np.float32),
        "candidate_novelty": spaces.MultiBinary(c),
        "history_embedding": spaces.Box(-1.0, 1.0, (h, e), np.float32),
        "history_feedback": spaces.Box(0.0, 1.0, (h,), np.float32),
        "topic_histogram": spaces.Box(0.0, 1.0, (g,), np.float32),
        "context": spaces.Box(0.0, 1.0, (CONTEXT_SIZE,), np.float32),
        "instruction": spaces.Box(0.0, 1.0, (NUM_INSTRUCTION_TYPES + g,), np.float32),
    }
    if config.observe_latent:
        entries["latent"] = spaces.Box(-np.inf, np.inf, (2 * g + 4,), np.float32)
    return spaces.Dict(entries)


class ObservationBuilder:
    """Builds batched observations; per-item lookups are precomputed once per world."""

    def __init__(self, config: WorldConfig, catalog):
        self.config = config
        m, e = catalog.num_items, catalog.embedding_dim
        self.embedding = np.zeros((m + 1, e), dtype=np.float32)  # row m: the empty history slot
        self.embedding[:m] = catalog.embedding
        self.topic = catalog.topic
        lp = catalog.log_popularity
        self.popularity01 = ((lp - lp.min()) / max(lp.max() - lp.min(), 1e-12)).astype(np.float32)
        self.num_topics = catalog.num_topics
        self.context_scale = np.array(
            [1.0 / config.max_turns, 1.0 / config.max_gap_days, 1.0 / max(config.horizon_days, 1),
             1.0 / (config.horizon_days + 1), 1.0],
            dtype=np.float32,
        )  # fmt: skip

    def build(self, sim) -> dict[str, np.ndarray]:
        """Observations of every slot of ``sim`` (a :class:`recoworld.envs.core.Simulator`)."""
        cands, users = sim.candidates, sim.users
        b = cands.shape[0]
        topics = self.topic[cands]
        share = users.topic_share
        novelty = np.take_along_axis(share, topics, axis=1) < users.params.novelty_share
        order = (
            sim.hist_ptr[:, None] - 1 - np.arange(self.config.history_length)
        ) % self.config.history_length
        hist = np.take_along_axis(sim.hist_items, order, axis=1)
        context = np.stack([sim.turn, sim.days_since, sim.day, sim.session, sim.turn == 0], axis=1)
        context = np.minimum(context.astype(np.float32) * self.context_scale, 1.0)
        instruction = np.zeros((b, NUM_INSTRUCTION_TYPES + self.num_topics), dtype=np.float32)
        rows = np.arange(b)
        instruction[rows, users.pending_type] = 1.0
        target = users.pending_topic
        has_target = target >= 0
        instruction[rows[has_target], NUM_INSTRUCTION_TYPES + target[has_target]] = 1.0
        obs = {
            "candidate_embedding": self.embedding[cands],
            "candidate_topic": topics,
            "candidate_popularity": self.popularity01[cands],
            "candidate_novelty": novelty.astype(np.int8),
            "history_embedding": self.embedding[hist],
            "history_feedback": np.take_along_axis(sim.hist_watch, order, axis=1),
            "topic_histogram": share.astype(np.float32),
            "context": context,
            "instruction": instruction,
        }
        if self.config.observe_latent:
            obs["latent"] = users.latent(rows)
        return obs
