"""An instruction-aware re-ranker that wraps any base agent and honours the user's pending instruction.

The observation key ``instruction`` is a one-hot type (none, avoid, related, new) followed by a one-hot target
topic. For rows without a pending instruction the base agent's slate is returned unchanged (its exploration is
kept). For the others the wrapper ranks the candidates by the base agent's preference — its slate first, in
order, then the rest by ``base.score`` when the base agent is score-based (by popularity otherwise) — and

* **avoid g**: drops every candidate of topic ``g``;
* **related g**: fills at least ``share`` of the slate with the best candidates of topics related to ``g``
  (and, with ``related_avoids_target=True``, drops topic ``g`` itself: the user asked for something
  different);
* **new**: fills at least ``share`` of the slate with the best novel candidates (``candidate_novelty``).

Topic relatedness, in order of preference: an explicit ``related_topics`` array — ``(G, r)`` topic ids (−1
pads)
or a ``(G, G)`` boolean matrix; :func:`recoworld.agents.make_agent` fetches the catalogue's ``related_topics``
from the environment when it exposes one — or, with ``relatedness="cooccurrence"`` (default), the cosine of
topic co-consumption across the users observed so far (topic histograms), or with ``"embedding"`` the cosine
of
per-topic mean candidate embeddings; the ``related_k`` most related topics count.
"""

from __future__ import annotations

import math

import numpy as np

from .base import (
    INSTR_AVOID,
    INSTR_NEW,
    INSTR_RELATED,
    NUM_INSTRUCTION_TYPES,
    BaseRecommender,
    Info,
    Observation,
)


class InstructionAware(BaseRecommender):
    """Wraps ``base`` (any :class:`~recoworld.agents.base.Recommender`); see the module docstring."""

    def __init__(
        self,
        base,
        *,
        share: float = 0.5,
        related_topics: np.ndarray | None = None,
        relatedness: str = "cooccurrence",
        related_k: int = 3,
        related_avoids_target: bool = True,
        honour: tuple[str, ...] = ("avoid", "related", "new"),
        seed: int | None = None,
    ):
        if not 0.0 < share <= 1.0:
            raise ValueError(f"share must lie in (0, 1], got {share}")
        if relatedness not in ("cooccurrence", "embedding"):
            raise ValueError(f"relatedness must be 'cooccurrence' or 'embedding', got {relatedness!r}")
        unknown = set(honour) - {"avoid", "related", "new"}
        if unknown:
            raise ValueError(f"honour: unknown instruction types {sorted(unknown)}")
        self.honour = tuple(honour)
        self._honoured = np.array([False] + [t in self.honour for t in ("avoid", "related", "new")])
        self.base = base
        self.share = float(share)
        self.relatedness = relatedness
        self.related_k = int(related_k)
        self.related_avoids_target = bool(related_avoids_target)
        self.related_topics = None if related_topics is None else np.asarray(related_topics)
        self.name = f"instruct:{getattr(base, 'name', type(base).__name__)}"
        super().__init__(slate_size=base.slate_size, seed=seed, spec=getattr(base, "spec", None))

    # the wrapper's own learning switch follows the base agent's
    @property
    def learning(self) -> bool:
        return getattr(self.base, "learning", True)

    @learning.setter
    def learning(self, value: bool) -> None:
        if hasattr(self, "base"):
            self.base.learning = value

    def reset(self, seed: int | None = None) -> None:
        super().reset(seed)
        self.base.reset(seed)

    def forget(self, seed: int | None = None) -> None:
        super().forget(seed)
        forget = getattr(self.base, "forget", None)
        if callable(forget):
            forget(seed)
        else:
            self.base.reset(seed)

    def _reset_state(self) -> None:
        self._cooc = None
        self._emb_sum = None
        self._emb_count = None

    # ------------------------------------------------------------------ relatedness
    def _observe(self, obs: Observation) -> None:
        g = obs["topic_histogram"].shape[1]
        if self._cooc is None:
            self._cooc = np.zeros((g, g))
            self._emb_sum = np.zeros((g, obs["candidate_embedding"].shape[2]))
            self._emb_count = np.zeros(g)
        if self.related_topics is not None:
            return
        if self.relatedness == "cooccurrence":
            h = np.asarray(obs["topic_histogram"], dtype=np.float64)
            self._cooc += h.T @ h
        else:
            topics = np.asarray(obs["candidate_topic"], dtype=np.int64).ravel()
            emb = np.asarray(obs["candidate_embedding"], dtype=np.float64).reshape(topics.size, -1)
            np.add.at(self._emb_sum, topics, emb)
            self._emb_count += np.bincount(topics, minlength=g)

    def related_matrix(self, num_topics: int) -> np.ndarray:
        """(G, G) bool: ``[g, h]`` is True when ``h`` counts as related to ``g`` (never ``g`` itself)."""
        g = num_topics
        if self.related_topics is not None:
            rel = self.related_topics
            if rel.shape == (g, g) and rel.dtype == bool:
                out = rel.copy()
            else:
                out = np.zeros((g, g), dtype=bool)
                rows, cols = np.nonzero(rel >= 0)
                out[rows, rel[rows, cols]] = True
            np.fill_diagonal(out, False)
            return out
        if self.relatedness == "cooccurrence" and self._cooc is not None:
            sim = self._cooc.copy()
        elif self._emb_sum is not None:
            cent = self._emb_sum / np.maximum(self._emb_count, 1)[:, None]
            sim = cent @ cent.T
        else:
            return np.zeros((g, g), dtype=bool)
        d = np.sqrt(np.maximum(np.diag(sim), 1e-12))
        sim = sim / d[:, None] / d[None, :]
        np.fill_diagonal(sim, -np.inf)
        order = np.argsort(-sim, axis=1, kind="stable")[:, : self.related_k]
        out = np.zeros((g, g), dtype=bool)
        np.put_along_axis(out, order, True, axis=1)
        return out

    # ------------------------------------------------------------------ acting
    def _preference(self, obs: Observation, slate: np.ndarray) -> np.ndarray:
        """(N, C) scores consistent with the base agent: its slate first, in order, then the rest."""
        n, c = obs["candidate_topic"].shape
        k = slate.shape[1]
        if hasattr(self.base, "score"):
            try:
                rest = np.asarray(self.base.score(obs), dtype=np.float64)
            except NotImplementedError:
                rest = np.asarray(obs["candidate_popularity"], dtype=np.float64)
        else:
            rest = np.asarray(obs["candidate_popularity"], dtype=np.float64)
        # map the rest into (-1, 0) preserving order, then put the base slate above it
        ranks = np.argsort(np.argsort(-rest, axis=1, kind="stable"), axis=1)
        pref = -(ranks + 1.0) / (c + 1.0)
        np.put_along_axis(pref, slate, np.broadcast_to(float(k) - np.arange(k), slate.shape), axis=1)
        return pref

    def _act(self, obs: Observation) -> np.ndarray:
        self._observe(obs)
        slate = np.asarray(self.base.act(obs), dtype=np.int64).reshape(obs["candidate_topic"].shape[0], -1)
        instr = np.asarray(obs["instruction"], dtype=np.float64)
        kind = np.argmax(instr[:, :NUM_INSTRUCTION_TYPES], axis=1)
        has = instr[:, :NUM_INSTRUCTION_TYPES].max(axis=1) > 0.5
        kind = np.where(has & self._honoured[kind], kind, 0)
        rows = np.flatnonzero(kind > 0)
        if rows.size == 0:
            return slate
        sub = {key: np.asarray(v)[rows] for key, v in obs.items() if key != "instruction_text"}
        pref = self._preference(sub, slate[rows])
        topics = np.asarray(sub["candidate_topic"], dtype=np.int64)
        g = sub["topic_histogram"].shape[1]
        target = np.argmax(instr[rows, NUM_INSTRUCTION_TYPES:], axis=1)
        related = self.related_matrix(g)
        k = self.slate_size
        need = math.ceil(self.share * k)
        out = slate.copy()
        for j, r in enumerate(rows):
            p = pref[j].copy()
            t = kind[r]
            if t == INSTR_AVOID or (t == INSTR_RELATED and self.related_avoids_target):
                p[topics[j] == target[j]] = -np.inf
            honour = None
            if t == INSTR_RELATED:
                honour = related[target[j], topics[j]]
            elif t == INSTR_NEW:
                honour = np.asarray(sub["candidate_novelty"][j], dtype=bool)
            order = np.argsort(-p, kind="stable")
            if honour is not None:
                good = [i for i in order if honour[i] and np.isfinite(p[i])][:need]
                chosen = set(good)
                rest = [i for i in order if i not in chosen][: k - len(good)]
                picked = np.array(good + rest, dtype=np.int64)
                picked = picked[np.argsort(-p[picked], kind="stable")]
            else:
                picked = order[:k]
            out[r] = picked
        return out

    def _score(self, obs: Observation) -> np.ndarray:
        return np.asarray(self.base.score(obs), dtype=np.float64)

    def update(self, observation: Observation, action: np.ndarray, reward, info: Info) -> None:
        self.base.update(observation, action, reward, info)

    def __repr__(self) -> str:
        return f"InstructionAware({self.base!r}, share={self.share})"
