"""User ⊗ item features built from RecoWorld observations, vectorised over ``N`` users × ``C`` candidates.

:func:`pair_features` is the representation the linear bandits, in-slate Thompson sampling and the HRL low level
share. For user ``u`` and candidate ``i`` (embedding ``v_i``, topic ``g_i``) it concatenates

* ``p_u ⊙ v_i`` (E): elementwise product of the user's profile (feedback-weighted mean of the history
  embeddings, unit norm) with the candidate's embedding — a bilinear user ⊗ item affinity;
* ``v_i`` (E): the candidate's embedding (global item/topic appeal);
* ``h_u[g_i]``: the user's decayed consumption share of the candidate's topic;
* ``r_ui``: mean cosine of ``v_i`` with the user's 3 most recent consumed items (recent same-topic repetition,
  a proxy for boredom);
* the candidate's popularity and novelty flag;
* ``log(1 + position)``: 0 when scoring (top position), the slot's position when learning from feedback, so
  that the position bias of the cascade is absorbed by its own weight rather than by the item weights;
* a constant 1.

The dimension is ``2E + 6``.
"""

from __future__ import annotations

import numpy as np

from .base import Observation

RECENT = 3


def feature_dim(embedding_dim: int) -> int:
    return 2 * embedding_dim + 6


def user_profile(obs: Observation) -> np.ndarray:
    """(N, E) feedback-weighted mean of the history embeddings, unit norm (zeros for an empty history)."""
    hist = np.asarray(obs["history_embedding"], dtype=np.float64)
    w = np.asarray(obs["history_feedback"], dtype=np.float64)
    w = np.where(np.abs(hist).sum(axis=2) > 0, 0.25 + w, 0.0)  # every consumed item counts, watched ones more
    p = np.einsum("nh,nhe->ne", w, hist)
    norm = np.linalg.norm(p, axis=1, keepdims=True)
    return np.where(norm > 0, p / np.where(norm > 0, norm, 1.0), 0.0)


def topic_share(obs: Observation) -> np.ndarray:
    """(N, C) the user's consumption share of each candidate's topic."""
    hist = np.asarray(obs["topic_histogram"], dtype=np.float64)
    topics = np.asarray(obs["candidate_topic"], dtype=np.int64)
    return np.take_along_axis(hist, topics, axis=1)


def pair_features(obs: Observation, positions: np.ndarray | None = None, rows: np.ndarray | None = None,
                  candidates: np.ndarray | None = None) -> np.ndarray:  # fmt: skip
    """(N, C, 2E + 6) features of every (user, candidate) pair, or (N, K, ·) for ``candidates`` (N, K) indices.

    ``positions`` (same shape as ``candidates``) fills the position feature (0 = top slot when omitted);
    ``rows`` restricts the batch to those rows first.
    """
    if rows is not None:
        obs = {k: np.asarray(v)[rows] for k, v in obs.items() if k != "instruction_text"}
    emb = np.asarray(obs["candidate_embedding"], dtype=np.float64)
    pop = np.asarray(obs["candidate_popularity"], dtype=np.float64)
    nov = np.asarray(obs["candidate_novelty"], dtype=np.float64)
    share = topic_share(obs)
    hist = np.asarray(obs["history_embedding"], dtype=np.float64)[:, :RECENT]
    filled = np.maximum((np.abs(hist).sum(axis=2) > 0).sum(axis=1), 1)
    recent = np.einsum("nce,nhe->nc", emb, hist) / filled[:, None]
    if candidates is not None:
        candidates = np.asarray(candidates, dtype=np.int64)
        emb = np.take_along_axis(emb, candidates[:, :, None], axis=1)
        pop, nov, share, recent = (np.take_along_axis(a, candidates, axis=1) for a in (pop, nov, share, recent))
    prof = user_profile(obs)
    n, c, e = emb.shape
    out = np.empty((n, c, 2 * e + 6), dtype=np.float64)
    out[:, :, :e] = prof[:, None, :] * emb
    out[:, :, e : 2 * e] = emb
    out[:, :, 2 * e] = share
    out[:, :, 2 * e + 1] = recent
    out[:, :, 2 * e + 2] = pop
    out[:, :, 2 * e + 3] = nov
    out[:, :, 2 * e + 4] = 0.0 if positions is None else np.log1p(np.asarray(positions, dtype=np.float64))
    out[:, :, 2 * e + 5] = 1.0
    return out


def slot_targets(info: dict, target: str, n: int, k: int) -> np.ndarray:
    """(N, K) learning targets per slot: ``click`` (0/1), ``watch`` (minutes) or ``log_watch`` (log1p minutes)."""
    if target == "click":
        return np.asarray(info["clicked"], dtype=np.float64).reshape(n, k)
    minutes = np.asarray(info["watch_minutes"], dtype=np.float64).reshape(n, k)
    if target == "watch":
        return minutes
    if target == "log_watch":
        return np.log1p(np.maximum(minutes, 0.0))
    raise ValueError(f"target must be one of ('click', 'watch', 'log_watch'), got {target!r}")


def intra_slate_diversity(topics: np.ndarray) -> np.ndarray:
    """(N,) 1 − mean pairwise same-topic indicator over the slate's topic ids ``topics`` (N, K) (Chen et al.)."""
    topics = np.asarray(topics)
    k = topics.shape[1]
    if k < 2:
        return np.ones(topics.shape[0])
    same = (topics[:, :, None] == topics[:, None, :]).sum(axis=(1, 2)) - k
    return 1.0 - same / (k * (k - 1))
