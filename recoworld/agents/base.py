"""The batched :class:`Recommender` protocol and the helpers every agent of :mod:`recoworld.agents` shares.

One agent instance serves a whole vector environment: every observation entry carries a leading batch
dimension
``N`` (one row per sub-environment / simulated user), :meth:`Recommender.act` returns one slate per row and
:meth:`Recommender.update` learns from the feedback of all rows at once (keys as in ``docs/interfaces.md``).
A single environment's observation (no batch dimension) is accepted too: it is treated as a batch of one and
``act`` then returns a ``(K,)`` slate.

Conventions shared by the agents here:

* ``reset(seed)`` re-seeds the agent's own random generator and clears its per-user state (what it tracks
about
  the users currently served); what it has *learned* is kept, so a trained agent can be reset for an
  evaluation. ``forget(seed)`` also forgets everything learned (a fresh agent). Given its seed and what it is
  shown, an agent's behaviour is deterministic.
* ``update(observation, action, reward, info)`` receives the observation ``act`` was called on, the slates it
  returned, the step's rewards ``(N,)`` and the step's ``info``. Rows whose ``info`` masks
  (``info["_clicked"]``)
  are False, and slots that were not ``examined``, carry no feedback and are ignored — this covers the
  NEXT_STEP autoreset step of Gymnasium vector environments, whose action is ignored by the environment.
* Setting ``agent.learning = False`` freezes an agent (``update`` still tracks per-user session state but
  learns nothing); useful to evaluate a trained agent.
* Score-based agents expose ``score(observation) -> (N, C)`` (higher is better); their slate is the top ``K``
  candidates (stable, ties broken by candidate index). Wrappers such as
  :class:`~recoworld.agents.instruct.InstructionAware` re-rank those scores.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

Observation = dict[str, np.ndarray]
Info = dict[str, Any]

# positions in the ``context`` observation vector (docs/interfaces.md)
CTX_TURN, CTX_GAP, CTX_DAY, CTX_SESSIONS, CTX_FIRST = 0, 1, 2, 3, 4
# positions of the instruction one-hot types
INSTR_NONE, INSTR_AVOID, INSTR_RELATED, INSTR_NEW = 0, 1, 2, 3
NUM_INSTRUCTION_TYPES = 4


@runtime_checkable
class Recommender(Protocol):
    """A batched recommender: one instance serves every row (user) of a vector environment."""

    slate_size: int

    def reset(self, seed: int | None = None) -> None:
        """Re-seed the agent and clear its per-user state (learned parameters are kept)."""

    def act(self, observation: Observation) -> np.ndarray:
        """Slates ``(N, K)`` int64 of candidate indices for a batch of observations ((K,) if unbatched)."""

    def update(self, observation: Observation, action: np.ndarray, reward: np.ndarray, info: Info) -> None:
        """Learn from ``info`` (leading ``N``), the feedback to slates ``action`` shown on ``observation``."""


@dataclass(frozen=True)
class ObsSpec:
    """The dimensions of RecoWorld observations an agent needs (read from an observation space or a batch)."""

    num_candidates: int
    num_topics: int
    embedding_dim: int
    history_length: int
    has_latent: bool = False

    @classmethod
    def from_space(cls, space: Any) -> ObsSpec:
        """From a single-env ``gymnasium.spaces.Dict`` observation space (no batch dimension)."""
        try:
            sub = space.spaces
            c, e = sub["candidate_embedding"].shape[-2:]
            g = sub["topic_histogram"].shape[-1]
            h = sub["history_embedding"].shape[-2]
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            raise ValueError(
                "observation space is not a RecoWorld Dict space (needs candidate_embedding, "
                f"topic_histogram, history_embedding): {space!r}"
            ) from exc
        return cls(int(c), int(g), int(e), int(h), "latent" in sub)

    @classmethod
    def from_observation(cls, obs: Observation) -> ObsSpec:
        """From a batched observation dict."""
        n, c, e = obs["candidate_embedding"].shape
        return cls(
            int(c),
            int(obs["topic_histogram"].shape[-1]),
            int(e),
            int(obs["history_embedding"].shape[-2]),
            "latent" in obs,
        )


def as_batch(observation: Observation) -> tuple[Observation, bool]:
    """``(batched observation, was_single)``: adds a leading batch axis to an unbatched observation."""
    if "candidate_topic" not in observation:
        raise KeyError("observation lacks 'candidate_topic': not a RecoWorld observation")
    single = np.ndim(observation["candidate_topic"]) == 1
    if single:
        return {k: np.asarray(v)[None] for k, v in observation.items()}, True
    return observation, False


def info_as_batch(info: Info, single: bool) -> Info:
    """Adds a leading batch axis to a single environment's info (scalars become length-1 arrays)."""
    if not single:
        return info
    return {k: np.asarray(v)[None] if not isinstance(v, str) else np.asarray([v]) for k, v in info.items()}


def feedback_mask(info: Info, n: int, k: int) -> np.ndarray:
    """(N, K) bool: slots whose feedback is real (``examined`` and the row's info mask set)."""
    if "examined" in info:
        examined = np.asarray(info["examined"], dtype=bool).reshape(n, k)
    else:
        examined = np.ones((n, k), dtype=bool)
    for key in ("_examined", "_clicked"):
        if key in info:
            examined = examined & np.asarray(info[key], dtype=bool).reshape(n, 1)
    return examined


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """(N, k) int64 indices of the ``k`` highest scores per row, best first; ties broken by lower index."""
    return np.argsort(-scores, axis=1, kind="stable")[:, :k].astype(np.int64)


def diversified_top_k(scores: np.ndarray, topics: np.ndarray, k: int, penalty: float) -> np.ndarray:
    """Greedy slate (N, k) that discounts a candidate by ``penalty`` × (row's score spread) for every
    candidate
    of its topic already placed (a maximal-marginal-relevance re-ranking: topic boredom grows with same-topic
    consumption, which a per-item score cannot see). ``penalty=0`` is :func:`top_k`."""
    if penalty <= 0:
        return top_k(scores, k)
    scores = np.asarray(scores, dtype=np.float64)
    n, c = scores.shape
    finite = np.where(np.isfinite(scores), scores, np.nan)
    spread = np.nan_to_num(np.nanstd(finite, axis=1), nan=1.0)
    step = penalty * np.where(spread > 0, spread, 1.0)
    work = scores.copy()
    rows = np.arange(n)
    slate = np.empty((n, k), dtype=np.int64)
    for j in range(k):
        pick = np.argmax(work, axis=1)
        slate[:, j] = pick
        same = topics == topics[rows, pick][:, None]
        work -= step[:, None] * same
        work[rows, pick] = -np.inf
    return slate


def new_episode_rows(observation: Observation) -> np.ndarray:
    """(N,) bool: rows whose observation is the first request of a user's life (sessions so far 0, turn 0)."""
    ctx = np.asarray(observation["context"])
    return (ctx[:, CTX_FIRST] > 0.5) & (ctx[:, CTX_SESSIONS] <= 0.0) & (ctx[:, CTX_DAY] <= 0.0)


class BaseRecommender:
    """Common machinery: seeding, batching, lazy sizing, ``learning`` switch; subclasses implement
    :meth:`_act` (batched) and optionally :meth:`_update` and :meth:`_reset_state`."""

    name = "base"

    def __init__(self, *, slate_size: int = 10, seed: int | None = None, spec: ObsSpec | None = None):
        if not isinstance(slate_size, (int, np.integer)) or slate_size < 1:
            raise ValueError(f"slate_size must be a positive integer, got {slate_size!r}")
        self.slate_size = int(slate_size)
        self.spec = spec
        self.learning = True
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        self._reset_state()
        self._reset_users()

    # ----------------------------------------------------------------- protocol
    def reset(self, seed: int | None = None) -> None:
        """Re-seed (``seed=None`` keeps the current seed) and clear per-user state; learning is kept."""
        if seed is not None:
            self.seed = seed
        self.rng = np.random.default_rng(self.seed)
        self._reset_users()

    def forget(self, seed: int | None = None) -> None:
        """Re-seed and forget everything, learned parameters included: the agent is as newly built."""
        if seed is not None:
            self.seed = seed
        self.rng = np.random.default_rng(self.seed)
        self._reset_state()
        self._reset_users()

    def act(self, observation: Observation) -> np.ndarray:
        obs, single = as_batch(observation)
        self._check(obs)
        slates = np.asarray(self._act(obs), dtype=np.int64)
        return slates[0] if single else slates

    def update(self, observation: Observation, action: np.ndarray, reward: Any, info: Info) -> None:
        obs, single = as_batch(observation)
        n = obs["candidate_topic"].shape[0]
        action = np.asarray(action, dtype=np.int64).reshape(n, -1)
        reward = np.asarray(reward, dtype=np.float64).reshape(n)
        self._update(obs, action, reward, info_as_batch(info, single))

    def score(self, observation: Observation) -> np.ndarray:
        """(N, C) candidate scores, higher is better (score-based agents only)."""
        obs, single = as_batch(observation)
        self._check(obs)
        s = self._score(obs)
        return s[0] if single else s

    # ----------------------------------------------------------------- hooks
    def _reset_state(self) -> None:
        """Clear learned parameters."""

    def _reset_users(self) -> None:
        """Clear per-user (per-row) state."""

    def _score(self, obs: Observation) -> np.ndarray:
        raise NotImplementedError(f"{type(self).__name__} is not score-based")

    def _act(self, obs: Observation) -> np.ndarray:
        return top_k(self._score(obs), self.slate_size)

    def _update(self, obs: Observation, action: np.ndarray, reward: np.ndarray, info: Info) -> None:
        pass

    # ----------------------------------------------------------------- helpers
    def _check(self, obs: Observation) -> None:
        c = obs["candidate_topic"].shape[1]
        if self.slate_size > c:
            raise ValueError(f"slate_size={self.slate_size} exceeds the {c} candidates of the observation")
        if self.spec is None:
            self.spec = ObsSpec.from_observation(obs)
        elif self.spec.num_candidates != c:
            raise ValueError(f"agent built for {self.spec.num_candidates} candidates, observation has {c}")

    def __repr__(self) -> str:
        return f"{type(self).__name__}(slate_size={self.slate_size}, seed={self.seed})"
