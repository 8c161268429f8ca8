"""Observation spaces and their construction from the simulator state (docs/interfaces.md)."""

from __future__ import annotations

import numpy as np
from gymnasium import spaces

from recoworld.arrays import take_rows
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

    def __init__(self, config: WorldConfig, catalog, *, compiled: bool = False):
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
        self._compiled_build = None
        if compiled:
            from recoworld.kernels.observe import observe

            self._compiled_build = observe
            self._sizes = (
                catalog.embedding_dim,
                config.history_length,
                self.num_topics,
                NUM_INSTRUCTION_TYPES + self.num_topics,
            )
            self._tables = (self.embedding, self.topic, self.popularity01, self.context_scale,
                            float(config.user.novelty_share), NUM_INSTRUCTION_TYPES)  # fmt: skip

    def build(self, sim) -> dict[str, np.ndarray]:
        """Observations of every slot of ``sim`` (a :class:`recoworld.envs.core.Simulator`); fresh arrays."""
        if self._compiled_build is not None:
            return self.with_latent(self._compiled_build(sim.candidates, *self.compiled_inputs(sim)), sim)
        return self.with_latent(self._numpy(sim), sim)

    def with_latent(self, obs: dict[str, np.ndarray], sim) -> dict[str, np.ndarray]:
        """``obs`` with the ``latent`` entry when the configuration observes it."""
        if self.config.observe_latent:
            obs["latent"] = sim.users.latent(np.arange(sim.batch_size))
        return obs

    def compiled_inputs(self, sim) -> tuple[tuple, tuple, tuple]:
        """(tables, state, sizes) for :func:`recoworld.kernels.observe.observe`."""
        u = sim.users
        state = (sim.hist_items, sim.hist_watch, sim.hist_ptr, sim.turn, sim.days_since, sim.day, sim.session,
                 u.topic_share, u.pending_type, u.pending_topic)  # fmt: skip
        return self._tables, state, self._sizes

    def _numpy(self, sim) -> dict[str, np.ndarray]:
        cands, users = sim.candidates, sim.users
        b, h = cands.shape[0], self.config.history_length
        topics = np.take(self.topic, cands)
        share = users.topic_share
        novelty = take_rows(share, topics) < users.params.novelty_share
        order = (sim.hist_ptr[:, None] - 1 - np.arange(h)) % h
        hist = take_rows(sim.hist_items, order)
        context = np.empty((b, CONTEXT_SIZE), dtype=np.float32)
        for j, value in enumerate((sim.turn, sim.days_since, sim.day, sim.session, sim.turn == 0)):
            context[:, j] = value
        context *= self.context_scale
        np.minimum(context, 1.0, out=context)
        instruction = np.zeros((b, NUM_INSTRUCTION_TYPES + self.num_topics), dtype=np.float32)
        flat = instruction.reshape(-1)
        width = instruction.shape[1]
        starts = np.arange(0, b * width, width)
        flat[starts + users.pending_type] = 1.0
        target = users.pending_topic
        has_target = target >= 0
        flat[starts[has_target] + NUM_INSTRUCTION_TYPES + target[has_target]] = 1.0
        obs = {
            "candidate_embedding": np.take(self.embedding, cands, axis=0),
            "candidate_topic": topics,
            "candidate_popularity": np.take(self.popularity01, cands),
            "candidate_novelty": novelty.view(np.int8),
            "history_embedding": np.take(self.embedding, hist, axis=0),
            "history_feedback": take_rows(sim.hist_watch, order),
            "topic_histogram": share.astype(np.float32),
            "context": context,
            "instruction": instruction,
        }
        return obs
