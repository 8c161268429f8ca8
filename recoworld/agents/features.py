"""User ⊗ item features built from RecoWorld observations, vectorised over ``N`` users × ``C`` candidates.

:func:`pair_features` is the representation the linear bandits, in-slate Thompson sampling and the HRL low
level
share. For user ``u`` and candidate ``i`` (embedding ``v_i``, topic ``g_i``) it concatenates

* ``p_u ⊙ v_i`` (E): elementwise product of the user's profile (feedback-weighted mean of the history
  embeddings, unit norm) with the candidate's embedding — a bilinear user ⊗ item affinity;
* ``v_i`` (E): the candidate's embedding (global item/topic appeal);
* ``h_u[g_i]``: the user's decayed consumption share of the candidate's topic;
* ``r_ui``: mean cosine of ``v_i`` with the user's 3 most recent consumed items (recent same-topic repetition,
  a proxy for boredom);
* the candidate's popularity and novelty flag;
* ``x_u[g_i]``: the agent's own record of how much it has exposed the user to the candidate's topic lately
  (:class:`TopicExposure`: clicks count 1, unclicked views 0.25, decayed per request and per session gap) —
  the
  recommender knows what it showed, and topic boredom follows exposure;
* ``log(1 + position)``: 0 when scoring (top position), the slot's position when learning from feedback, so
  that the position bias of the cascade is absorbed by its own weight rather than by the item weights;
* a constant 1.

The dimension is ``2E + 7``.
"""

from __future__ import annotations

import numpy as np

from .base import Observation

RECENT = 3


def feature_dim(embedding_dim: int) -> int:
    return 2 * embedding_dim + 7


class TopicExposure:
    """Per-row (user) decayed topic exposure kept by an agent from its own slates and the users' feedback.

    ``exposure[g] ← decay · exposure[g] + Σ_slots 1[topic = g] · (click_weight · clicked + view_weight ·
    examined)`` after every request, multiplied by ``session_decay`` when a new session starts and reset when
    a
    row starts a new user's life.
    """

    def __init__(
        self,
        decay: float = 0.9,
        session_decay: float = 0.4,
        click_weight: float = 1.0,
        view_weight: float = 0.25,
    ):
        self.decay, self.session_decay = float(decay), float(session_decay)
        self.click_weight, self.view_weight = float(click_weight), float(view_weight)
        self.values: np.ndarray | None = None

    def reset(self) -> None:
        self.values = None

    def observe(self, obs: Observation) -> np.ndarray:
        """Account for new users / sessions in this observation; return the (N, G) exposure."""
        from .base import CTX_FIRST, new_episode_rows

        n, g = np.shape(obs["topic_histogram"])
        if self.values is None or self.values.shape != (n, g):
            self.values = np.zeros((n, g))
            self._seen_first = np.zeros(n, dtype=bool)
        first = np.asarray(obs["context"])[:, CTX_FIRST] > 0.5
        # decay once per session start (act may be called more than once on the same observation)
        start = first & ~self._seen_first
        self.values[start] *= self.session_decay
        self.values[new_episode_rows(obs)] = 0.0
        self._seen_first = first
        return self.values

    def record(self, obs: Observation, action: np.ndarray, clicked: np.ndarray, examined: np.ndarray) -> None:
        """Add the exposure of slates ``action`` (N, K) given ``clicked`` / ``examined`` (N, K)."""
        self.observe(obs)
        n, g = self.values.shape
        topics = np.take_along_axis(np.asarray(obs["candidate_topic"], dtype=np.int64), action, axis=1)
        w = self.click_weight * clicked + self.view_weight * (examined & ~clicked)
        rows = examined.any(axis=1)
        add = np.zeros((n, g))
        np.add.at(add, (np.broadcast_to(np.arange(n)[:, None], topics.shape), topics), w)
        self.values = np.where(rows[:, None], self.decay * self.values + add, self.values)
        self._seen_first = self._seen_first & ~rows


def user_profile(obs: Observation) -> np.ndarray:
    """(N, E) feedback-weighted mean of the history embeddings, unit norm (zeros for an empty history)."""
    return _profile(np.asarray(obs["history_embedding"], dtype=np.float64), obs["history_feedback"])


def _profile(hist: np.ndarray, feedback: np.ndarray) -> np.ndarray:
    w = np.asarray(feedback, dtype=np.float64)
    w = np.where(np.abs(hist).sum(axis=2) > 0, 0.25 + w, 0.0)  # every consumed item counts, watched ones more
    p = np.matmul(w[:, None, :], hist)[:, 0]
    norm = np.linalg.norm(p, axis=1, keepdims=True)
    return np.where(norm > 0, p / np.where(norm > 0, norm, 1.0), 0.0)


def topic_share(obs: Observation) -> np.ndarray:
    """(N, C) the user's consumption share of each candidate's topic."""
    hist = np.asarray(obs["topic_histogram"], dtype=np.float64)
    topics = np.asarray(obs["candidate_topic"], dtype=np.int64)
    return np.take_along_axis(hist, topics, axis=1)


def pair_features(
    obs: Observation,
    positions: np.ndarray | None = None,
    rows: np.ndarray | None = None,
    candidates: np.ndarray | None = None,
    exposure: np.ndarray | None = None,
) -> np.ndarray:
    """(N, C, 2E + 7) features of every (user, candidate) pair, or (N, K, ·) for ``candidates`` (N, K)
    indices.

    ``positions`` (same shape as ``candidates``) fills the position feature (0 = top slot when omitted);
    ``exposure`` (N, G) the agent's topic exposure (zeros when omitted); ``rows`` restricts the batch (and
    ``exposure``) to those rows first.
    """

    def take(key: str) -> np.ndarray:
        v = np.asarray(obs[key])
        return v if rows is None else v[rows]

    if rows is not None and exposure is not None:
        exposure = exposure[rows]
    emb = take("candidate_embedding")
    topics = take("candidate_topic").astype(np.int64, copy=False)
    pop, nov = take("candidate_popularity"), take("candidate_novelty")
    if candidates is not None:  # gather the shown slots first: everything below is per (user, slot)
        candidates = np.asarray(candidates, dtype=np.int64)
        emb = np.take_along_axis(emb, candidates[:, :, None], axis=1)
        topics, pop, nov = (np.take_along_axis(a, candidates, axis=1) for a in (topics, pop, nov))
    hist_emb = take("history_embedding").astype(np.float64, copy=False)
    emb = emb.astype(np.float64, copy=False)
    share = np.take_along_axis(take("topic_histogram"), topics, axis=1)
    expo = 0.0 if exposure is None else np.take_along_axis(exposure, topics, axis=1)
    hist = hist_emb[:, :RECENT]
    filled = np.maximum((np.abs(hist).sum(axis=2) > 0).sum(axis=1), 1)
    recent = np.matmul(emb, hist.transpose(0, 2, 1)).sum(axis=2) / filled[:, None]
    prof = _profile(hist_emb, take("history_feedback"))
    n, c, e = emb.shape
    out = np.empty((n, c, 2 * e + 7), dtype=np.float64)
    np.multiply(prof[:, None, :], emb, out=out[:, :, :e])
    out[:, :, e : 2 * e] = emb
    out[:, :, 2 * e] = share
    out[:, :, 2 * e + 1] = recent
    out[:, :, 2 * e + 2] = pop
    out[:, :, 2 * e + 3] = nov
    out[:, :, 2 * e + 4] = expo
    out[:, :, 2 * e + 5] = 0.0 if positions is None else np.log1p(np.asarray(positions, dtype=np.float64))
    out[:, :, 2 * e + 6] = 1.0
    return out


def slot_targets(info: dict, target: str, n: int, k: int) -> np.ndarray:
    """(N, K) learning targets per slot: ``click`` (0/1), ``watch`` (minutes) or ``log_watch`` (log1p)."""
    if target == "click":
        return np.asarray(info["clicked"], dtype=np.float64).reshape(n, k)
    minutes = np.asarray(info["watch_minutes"], dtype=np.float64).reshape(n, k)
    if target == "watch":
        return minutes
    if target == "log_watch":
        return np.log1p(np.maximum(minutes, 0.0))
    raise ValueError(f"target must be one of ('click', 'watch', 'log_watch'), got {target!r}")


def intra_slate_diversity(topics: np.ndarray) -> np.ndarray:
    """(N,) 1 − mean pairwise same-topic indicator over the slates' topics (N, K) (Chen et al.)."""
    topics = np.asarray(topics)
    k = topics.shape[1]
    if k < 2:
        return np.ones(topics.shape[0])
    same = (topics[:, :, None] == topics[:, None, :]).sum(axis=(1, 2)) - k
    return 1.0 - same / (k * (k - 1))


class Featurizer:
    """Pair features plus the agent-side :class:`TopicExposure` state, as the learning agents use them."""

    def __init__(self, use_exposure: bool = True):
        self.use_exposure = bool(use_exposure)
        self.exposure = TopicExposure()

    def reset(self) -> None:
        self.exposure.reset()

    def _expo(self, obs: Observation) -> np.ndarray | None:
        return self.exposure.observe(obs) if self.use_exposure else None

    def candidates(self, obs: Observation) -> np.ndarray:
        """(N, C, d) features of every candidate, scored at the top position."""
        return pair_features(obs, exposure=self._expo(obs))

    def slots(self, obs: Observation, action: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """(R, K, d) features of the shown slots of ``rows``, with their positions."""
        k = action.shape[1]
        return pair_features(
            obs,
            positions=np.broadcast_to(np.arange(k), (len(rows), k)),
            rows=rows,
            candidates=action[rows],
            exposure=self._expo(obs),
        )

    def record(self, obs: Observation, action: np.ndarray, clicked: np.ndarray, examined: np.ndarray) -> None:
        if self.use_exposure:
            self.exposure.record(obs, action, clicked, examined)
