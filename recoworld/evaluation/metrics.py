"""Per-user evaluation records, the metrics derived from them, Kaplan–Meier survival and return gaps.

A :class:`TrajectoryRecorder` watches the steps of a batch of episodes (one user per row, exactly one episode
per row) and accumulates, per user, the counts every metric needs. :func:`user_metrics` turns those records
into one value per user and per metric; :mod:`recoworld.evaluation.stats` averages them with confidence
intervals.

Metric definitions (all per user, then averaged over users; see ``docs/evaluation.md``):

- ``day1_retention``: 1 if the user had a session on day >= 1 (came back at least once), else 0.
- ``day7_retention``: 1 if the user had a session on day >= 7 (NaN, undefined, when ``horizon_days`` < 7).
- ``sessions_per_user``: number of sessions in the episode.
- ``session_length``: requests per session (requests / sessions).
- ``watch_time_per_user``: minutes watched over the whole episode (``info["watch_minutes"]`` summed).
- ``ctr``: clicks / items shown.
- ``diversity``: intra-slate diversity, 1 - mean over item pairs of [same main topic], averaged over slates.
- ``novelty``: mean over shown items of -log2 p(item), p = the item's share of catalogue popularity.
- ``serendipity``: share of the user's clicks on items whose topic is not among the user's top-3 history
  topics at that moment (``topic_histogram``); clicks made with an empty history do not count; undefined for
  users without such clicks.
- ``coverage``: share of the catalogue shown to at least one user (per seed; not a per-user metric).
- ``instruction_rate``: reflective instructions per request.
- ``instruction_follow_rate``: requests that honoured a pending instruction / requests with an instruction
  pending; undefined for users who never had one pending.
- ``regret``: the oracle's watch time minus the policy's, for the same user (paired).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "METRICS",
    "METRIC_INFO",
    "SERENDIPITY_TOP_TOPICS",
    "SurvivalCurve",
    "TrajectoryRecorder",
    "kaplan_meier",
    "novelty_bits",
    "popularity_share",
    "return_gap_histogram",
    "serendipitous_clicks",
    "slate_diversity",
    "slate_topics",
    "user_metrics",
]

METRICS = (
    "day1_retention",
    "day7_retention",
    "sessions_per_user",
    "session_length",
    "watch_time_per_user",
    "ctr",
    "diversity",
    "novelty",
    "serendipity",
    "coverage",
    "instruction_rate",
    "instruction_follow_rate",
    "regret",
)

# name -> (short label, unit, higher is better)
METRIC_INFO: dict[str, tuple[str, str, bool]] = {
    "day1_retention": ("Day-1 retention", "share of users", True),
    "day7_retention": ("Day-7 retention", "share of users", True),
    "sessions_per_user": ("Sessions / user", "sessions", True),
    "session_length": ("Session length", "requests", True),
    "watch_time_per_user": ("Watch time / user", "minutes", True),
    "ctr": ("CTR", "clicks / impression", True),
    "diversity": ("Diversity", "1 - same-topic pairs", True),
    "novelty": ("Novelty", "bits", True),
    "serendipity": ("Serendipity", "share of clicks", True),
    "coverage": ("Coverage", "share of catalogue", True),
    "instruction_rate": ("Instruction rate", "per request", False),
    "instruction_follow_rate": ("Instruction follow rate", "share", True),
    "regret": ("Regret vs oracle", "minutes / user", False),
}

SERENDIPITY_TOP_TOPICS = 3

_SCALARS_INT = (
    "user_index",
    "requests",
    "sessions",
    "last_day",
    "impressions",
    "clicks",
    "likes",
    "diversity_count",
    "novelty_count",
    "serendipity_clicks",
    "serendipity_eligible",
    "instructions",
    "instruction_followed",
    "instruction_pending",
    "duplicates_replaced",
    "gap_count",
    "item_count",
)
_SCALARS_FLOAT = ("watch_minutes", "reward", "diversity_sum", "novelty_sum")
_SCALARS_BOOL = ("churned", "truncated")


# ---------------------------------------------------------------------------------------------- slate metrics
def slate_topics(
    slate_items: np.ndarray, candidate_items: np.ndarray, candidate_topic: np.ndarray
) -> np.ndarray:
    """Main topic of each shown item (R, K), looked up in the request's candidate list (R, C).

    Items not found among the candidates get topic -1.
    """
    slate_items = np.asarray(slate_items)
    candidate_items = np.asarray(candidate_items)
    match = slate_items[:, :, None] == candidate_items[:, None, :]  # (R, K, C)
    pos = match.argmax(axis=2)
    topics = np.take_along_axis(np.asarray(candidate_topic), pos, axis=1).astype(np.int64)
    return np.where(match.any(axis=2), topics, -1)


def slate_diversity(topics: np.ndarray) -> np.ndarray:
    """Intra-slate diversity per slate: 1 - (pairs of items sharing a topic) / (all pairs). NaN for K < 2."""
    topics = np.asarray(topics)
    k = topics.shape[1]
    if k < 2:
        return np.full(topics.shape[0], math.nan)
    same = (topics[:, :, None] == topics[:, None, :]).sum(axis=(1, 2)) - k  # ordered pairs i != j
    return 1.0 - same / (k * (k - 1))


def popularity_share(popularity: np.ndarray) -> np.ndarray:
    """Normalise catalogue popularity levels to shares that sum to 1."""
    popularity = np.asarray(popularity, dtype=np.float64)
    return popularity / popularity.sum()


def novelty_bits(items: np.ndarray, share: np.ndarray) -> np.ndarray:
    """-log2 p(item) for each item id, p = popularity share."""
    return -np.log2(np.asarray(share)[np.asarray(items)])


def serendipitous_clicks(
    clicked: np.ndarray, topics: np.ndarray, topic_histogram: np.ndarray, top: int = SERENDIPITY_TOP_TOPICS
) -> tuple[np.ndarray, np.ndarray]:
    """Per row: (clicks outside the user's top-``top`` history topics, clicks with a non-empty history).

    The top topics are the ``top`` largest entries of ``topic_histogram`` among those with a positive share
    (ties broken by topic index).
    """
    hist = np.asarray(topic_histogram, dtype=np.float64)
    clicked = np.asarray(clicked, dtype=bool)
    topics = np.asarray(topics)
    order = np.argsort(-hist, axis=1, kind="stable")[:, :top]
    is_top = np.zeros(hist.shape, dtype=bool)
    np.put_along_axis(is_top, order, True, axis=1)
    is_top &= hist > 0
    has_history = hist.sum(axis=1) > 0
    safe = np.clip(topics, 0, hist.shape[1] - 1)
    in_top = np.take_along_axis(is_top, safe, axis=1) & (topics >= 0)
    eligible = clicked & has_history[:, None]
    return (eligible & ~in_top).sum(axis=1), eligible.sum(axis=1)


# ---------------------------------------------------------------------------------------------- the recorder
class TrajectoryRecorder:
    """Accumulates per-user records over the steps of ``num_envs`` episodes (one episode per row).

    Call :meth:`record` after every ``step`` of a vector environment with the observation the action was
    chosen on, the step's ``info``, ``terminated`` and ``truncated``. A row stops being recorded after its
    episode ends (whatever the vector environment does after its autoreset is ignored). ``popularity``
    (catalogue popularity levels, any scale) enables novelty; ``num_items`` is only stored for coverage.
    """

    def __init__(self, num_envs: int, popularity: np.ndarray | None = None):
        self.num_envs = int(num_envs)
        n = self.num_envs
        self._int = {k: np.zeros(n, dtype=np.int64) for k in _SCALARS_INT}
        self._int["user_index"][:] = -1
        self._int["last_day"][:] = -1
        self._float = {k: np.zeros(n, dtype=np.float64) for k in _SCALARS_FLOAT}
        self._bool = {k: np.zeros(n, dtype=bool) for k in _SCALARS_BOOL}
        self.done = np.zeros(n, dtype=bool)
        self._share = None if popularity is None else popularity_share(popularity)
        self._gap_rows: list[np.ndarray] = []
        self._gaps: list[np.ndarray] = []
        self._item_rows: list[np.ndarray] = []
        self._items: list[np.ndarray] = []
        self.steps = 0

    @property
    def all_done(self) -> bool:
        return bool(self.done.all())

    def record(
        self,
        observation: dict[str, np.ndarray],
        info: dict[str, Any],
        terminated: np.ndarray,
        truncated: np.ndarray,
        reward: np.ndarray | None = None,
    ) -> None:
        active = ~self.done
        if not active.any():
            return
        self.steps += 1
        rows = np.flatnonzero(active)
        r = self._int
        f = self._float

        def get(key: str) -> np.ndarray:
            return np.asarray(info[key])[rows]

        slate = get("slate_items").astype(np.int64)
        topics = slate_topics(slate, get("candidate_items"), np.asarray(observation["candidate_topic"])[rows])
        clicked = get("clicked").astype(bool)
        k = slate.shape[1]

        r["user_index"][rows] = get("user_index")
        r["requests"][rows] += 1
        r["sessions"][rows] = np.maximum(r["sessions"][rows], get("session").astype(np.int64) + 1)
        r["last_day"][rows] = np.maximum(r["last_day"][rows], get("day").astype(np.int64))
        r["impressions"][rows] += k
        r["clicks"][rows] += clicked.sum(axis=1)
        if "liked" in info:
            r["likes"][rows] += get("liked").astype(bool).sum(axis=1)
        f["watch_minutes"][rows] += get("watch_minutes").astype(np.float64).sum(axis=1)
        if reward is not None:
            f["reward"][rows] += np.asarray(reward, dtype=np.float64)[rows]
        if k >= 2:
            f["diversity_sum"][rows] += slate_diversity(topics)
            r["diversity_count"][rows] += 1
        if self._share is not None:
            f["novelty_sum"][rows] += novelty_bits(slate, self._share).sum(axis=1)
            r["novelty_count"][rows] += k
        hist = np.asarray(observation["topic_histogram"])[rows]
        seren, eligible = serendipitous_clicks(clicked, topics, hist)
        r["serendipity_clicks"][rows] += seren
        r["serendipity_eligible"][rows] += eligible
        itype = get("instruction_type").astype(np.int64)
        r["instructions"][rows] += itype > 0
        followed = get("instruction_followed").astype(np.int64)
        r["instruction_followed"][rows] += followed == 1
        r["instruction_pending"][rows] += followed >= 0
        if "duplicates_replaced" in info:
            r["duplicates_replaced"][rows] += get("duplicates_replaced").astype(np.int64)

        ended = get("session_ended").astype(bool)
        gap = get("return_gap_days").astype(np.int64)
        has_gap = ended & (gap >= 0)
        if has_gap.any():
            self._gap_rows.append(rows[has_gap])
            self._gaps.append(gap[has_gap])
        self._item_rows.append(np.repeat(rows, k))
        self._items.append(slate.reshape(-1))

        term = np.asarray(terminated, dtype=bool)[rows]
        trunc = np.asarray(truncated, dtype=bool)[rows]
        if "churned" in info:
            term = term | get("churned").astype(bool)
        finished = term | trunc
        self._bool["churned"][rows] = term
        self._bool["truncated"][rows] = trunc & ~term
        self.done[rows[finished]] = True

    def records(self) -> dict[str, np.ndarray]:
        """Per-user arrays (length ``num_envs``) plus the ragged ``gaps`` and ``items`` (concatenated per user
        in row order; ``gap_count`` and ``item_count`` give the lengths). ``items`` holds each user's distinct
        shown items, sorted."""
        n = self.num_envs
        out: dict[str, np.ndarray] = {}
        out.update({k: v.copy() for k, v in self._int.items()})
        out.update({k: v.copy() for k, v in self._float.items()})
        out.update({k: v.copy() for k, v in self._bool.items()})
        if self._share is None:
            out["novelty_sum"][:] = math.nan
        gap_rows = np.concatenate(self._gap_rows) if self._gap_rows else np.zeros(0, np.int64)
        gaps = np.concatenate(self._gaps) if self._gaps else np.zeros(0, np.int64)
        order = np.argsort(gap_rows, kind="stable")
        out["gaps"] = gaps[order].astype(np.int64)
        out["gap_count"] = np.bincount(gap_rows, minlength=n).astype(np.int64)
        item_rows = np.concatenate(self._item_rows) if self._item_rows else np.zeros(0, np.int64)
        items = np.concatenate(self._items) if self._items else np.zeros(0, np.int64)
        if items.size:
            pairs = np.unique(np.stack([item_rows.astype(np.int64), items.astype(np.int64)], axis=1), axis=0)
        else:
            pairs = np.zeros((0, 2), np.int64)
        out["items"] = pairs[:, 1].copy()
        out["item_count"] = np.bincount(pairs[:, 0], minlength=n).astype(np.int64)
        return out


# ----------------------------------------------------------------------------------------- derived metrics
def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    num = np.asarray(num, dtype=np.float64)
    den = np.asarray(den, dtype=np.float64)
    out = np.full(num.shape, math.nan)
    np.divide(num, den, out=out, where=den > 0)
    return out


def retention(records: dict[str, np.ndarray], day: int, horizon_days: int | None = None) -> np.ndarray:
    """Per user: 1.0 if the user had a session on a day >= ``day``; all NaN if ``horizon_days`` < ``day``."""
    last = np.asarray(records["last_day"])
    if horizon_days is not None and horizon_days < day:
        return np.full(last.shape, math.nan)
    return (last >= day).astype(np.float64)


def user_metrics(records: dict[str, np.ndarray], horizon_days: int | None = None) -> dict[str, np.ndarray]:
    """One value per user for every per-user metric of :data:`METRICS` (all but ``coverage`` and ``regret``).

    NaN marks a user for whom the metric is undefined (e.g. no instruction for ``instruction_follow_rate``).
    """
    r = records
    return {
        "day1_retention": retention(r, 1, horizon_days),
        "day7_retention": retention(r, 7, horizon_days),
        "sessions_per_user": np.asarray(r["sessions"], dtype=np.float64),
        "session_length": _ratio(r["requests"], r["sessions"]),
        "watch_time_per_user": np.asarray(r["watch_minutes"], dtype=np.float64),
        "ctr": _ratio(r["clicks"], r["impressions"]),
        "diversity": _ratio(r["diversity_sum"], r["diversity_count"]),
        "novelty": _ratio(r["novelty_sum"], r["novelty_count"]),
        "serendipity": _ratio(r["serendipity_clicks"], r["serendipity_eligible"]),
        "instruction_rate": _ratio(r["instructions"], r["requests"]),
        "instruction_follow_rate": _ratio(r["instruction_followed"], r["instruction_pending"]),
    }


# ---------------------------------------------------------------------------------------------- survival
@dataclass(frozen=True)
class SurvivalCurve:
    """Kaplan–Meier estimate of S(t) = P(the user is still active after day t), t = 0 .. horizon.

    ``lo``/``hi``: pointwise 95% band (Greenwood variance on the log(-log S) scale); ``at_risk``: users at
    risk at day t; ``events``: users whose last session was on day t and who churned.
    """

    days: np.ndarray
    survival: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    at_risk: np.ndarray
    events: np.ndarray

    def to_json(self) -> dict[str, list]:
        def clean(a: np.ndarray) -> list:
            return [None if not math.isfinite(float(x)) else float(x) for x in a]

        return {
            "day": [int(d) for d in self.days],
            "survival": clean(self.survival),
            "ci95_lo": clean(self.lo),
            "ci95_hi": clean(self.hi),
            "at_risk": [int(x) for x in self.at_risk],
            "events": [int(x) for x in self.events],
        }


def kaplan_meier(time: np.ndarray, event: np.ndarray, horizon: int | None = None) -> SurvivalCurve:
    """Kaplan–Meier survival over integer days.

    ``time``: the day of each user's last session for churned users (``event`` True) and the censoring day for
    the others (the horizon: they are known to be active through it). ``S(t) = prod_{t_j <= t} (1 - d_j /
    n_j)`` with ``n_j`` the users whose time is >= ``t_j`` (censored users are at risk on their censoring
    day).
    """
    time = np.asarray(time, dtype=np.int64)
    event = np.asarray(event, dtype=bool)
    if time.shape != event.shape:
        raise ValueError("time and event must have the same shape")
    if horizon is None:
        horizon = int(time.max()) if time.size else 0
    days = np.arange(horizon + 1)
    if time.size == 0:
        nan = np.full(days.shape, math.nan)
        zeros = np.zeros(days.shape, np.int64)
        return SurvivalCurve(days, nan, nan, nan, zeros, zeros)
    t = np.clip(time, 0, horizon)
    events = np.bincount(t[event], minlength=horizon + 1)[: horizon + 1]
    leaving = np.bincount(t, minlength=horizon + 1)[: horizon + 1]
    at_risk = t.size - np.concatenate([[0], np.cumsum(leaving)[:-1]])
    with np.errstate(divide="ignore", invalid="ignore"):
        hazard = np.where(at_risk > 0, events / np.maximum(at_risk, 1), 0.0)
        surv = np.cumprod(1.0 - hazard)
        term = np.where(
            (at_risk > events) & (at_risk > 0), events / (at_risk * np.maximum(at_risk - events, 1)), 0.0
        )
        greenwood = np.cumsum(term)
        log_s = np.log(surv)
        se = np.sqrt(greenwood) / np.abs(log_s)
        lo = surv ** np.exp(1.96 * se)
        hi = surv ** np.exp(-1.96 * se)
    lo = np.where(surv >= 1.0, 1.0, np.where(surv <= 0.0, 0.0, lo))
    hi = np.where(surv >= 1.0, 1.0, np.where(surv <= 0.0, 0.0, hi))
    return SurvivalCurve(days, surv, lo, hi, at_risk.astype(np.int64), events.astype(np.int64))


def survival_from_records(records: dict[str, np.ndarray], horizon_days: int) -> SurvivalCurve:
    """KM curve of a policy's users: time = last session day (churned) or the horizon (censored)."""
    churned = np.asarray(records["churned"], dtype=bool)
    time = np.where(churned, np.asarray(records["last_day"]), horizon_days)
    return kaplan_meier(time, churned, horizon_days)


def return_gap_histogram(gaps: np.ndarray, max_gap: int | None = None) -> np.ndarray:
    """Counts of return gaps 0 .. max_gap days (gaps above ``max_gap`` are counted in the last bin)."""
    gaps = np.asarray(gaps, dtype=np.int64)
    if max_gap is None:
        max_gap = int(gaps.max()) if gaps.size else 0
    return np.bincount(np.clip(gaps, 0, max_gap), minlength=max_gap + 1)[: max_gap + 1]
