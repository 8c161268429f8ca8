"""Aggregated evaluation results: per-policy metrics with 95% intervals, survival, return gaps, paired
differences."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .metrics import (
    METRIC_INFO,
    METRICS,
    SurvivalCurve,
    return_gap_histogram,
    survival_from_records,
    user_metrics,
)
from .stats import Estimate, coverage_estimate, mean_estimate, paired_estimate

__all__ = ["PolicyEvaluation", "EvaluationResult", "merge_records"]

_RAGGED = {"gaps": "gap_count", "items": "item_count"}


def merge_records(shards: Sequence[Mapping[str, Any]]) -> dict[str, np.ndarray]:
    """Concatenate shard records (in the given order) into one set of per-user arrays."""
    if not shards:
        raise ValueError("no shard records to merge")
    keys = [k for k in shards[0] if k != "meta"]
    return {k: np.concatenate([np.asarray(s[k]) for s in shards]) for k in keys}


def _shown_by_seed(records: Mapping[str, np.ndarray]) -> list[tuple[np.ndarray, np.ndarray, int]]:
    """Per seed: (user position within the seed, item) unique pairs and the number of users."""
    seeds = np.asarray(records["seed"])
    counts = np.asarray(records["item_count"])
    items = np.asarray(records["items"])
    owner = np.repeat(np.arange(seeds.size), counts)
    out = []
    for s in np.unique(seeds):
        rows = np.flatnonzero(seeds == s)
        pos = np.full(seeds.size, -1, dtype=np.int64)
        pos[rows] = np.arange(rows.size)
        mask = seeds[owner] == s
        out.append((pos[owner[mask]], items[mask].astype(np.int64), int(rows.size)))
    return out


@dataclass
class PolicyEvaluation:
    """One policy's evaluation: per-user records, per-user metric values and the aggregated estimates."""

    name: str
    records: dict[str, np.ndarray]
    per_user: dict[str, np.ndarray]
    metrics: dict[str, Estimate]
    survival: SurvivalCurve
    return_gaps: np.ndarray  # counts of return gaps 0 .. max_gap_days
    churned: int

    @property
    def users(self) -> int:
        return int(self.records["seed"].size)

    def to_json(self) -> dict[str, Any]:
        return {
            "metrics": {m: self.metrics[m].to_json() for m in METRICS},
            "survival": self.survival.to_json(),
            "return_gaps": {
                "days": list(range(len(self.return_gaps))),
                "counts": [int(c) for c in self.return_gaps],
                "churned_users": int(self.churned),
            },
            "users": self.users,
        }


@dataclass
class EvaluationResult:
    """Everything an evaluation produced. ``paired[f"{b} - {a}"]`` holds paired differences ``b - a``."""

    env_id: str
    env_kwargs: dict[str, Any]
    users: int
    seeds: list[int]
    block_size: int
    horizon_days: int
    max_gap_days: int
    num_items: int | None
    policies: dict[str, PolicyEvaluation]
    reference: str | None = None
    oracle: str | None = None
    paired: dict[str, dict[str, Estimate]] = field(default_factory=dict)

    # ------------------------------------------------------------------------------------------- building
    @classmethod
    def from_records(
        cls,
        env_id: str,
        records: Mapping[str, Mapping[str, np.ndarray]],
        meta: Mapping[str, Any],
        *,
        env_kwargs: Mapping[str, Any] | None = None,
        users: int,
        seeds: Sequence[int],
        block_size: int,
        listed: Sequence[str] | None = None,
        reference: str | None = None,
        oracle: str | None = None,
    ) -> EvaluationResult:
        """Aggregate merged per-user ``records`` by policy name. ``listed`` policies are reported (default:
        all); ``oracle`` names the records that define regret (it may be unlisted); ``reference`` is the
        policy every other one is paired against."""
        horizon = meta.get("horizon_days")
        max_gap = meta.get("max_gap_days")
        num_items = meta.get("num_items")
        listed = list(records) if listed is None else list(listed)
        oracle_watch = None
        if oracle is not None:
            oracle_watch = np.asarray(records[oracle]["watch_minutes"], dtype=np.float64)
        evaluations = {}
        for name in listed:
            r = records[name]
            _check_same_users(records[listed[0]], r, listed[0], name)
            # retention needs a user's life over days; an episode of a session or bandit env is not one
            lifetime = meta.get("mode") in (None, "lifetime")
            per_user = user_metrics(r, horizon if lifetime else 0)
            if oracle_watch is not None:
                _check_same_users(records[oracle], r, oracle, name)
                per_user["regret"] = oracle_watch - np.asarray(r["watch_minutes"], dtype=np.float64)
            else:
                per_user["regret"] = np.full(r["seed"].size, math.nan)
            seeds_arr = np.asarray(r["seed"])
            metrics = {m: mean_estimate(v, seeds_arr) for m, v in per_user.items()}
            metrics["coverage"] = coverage_estimate(_shown_by_seed(r), num_items or 0)
            churned = np.asarray(r["churned"], dtype=bool)
            gap_max = max_gap if max_gap is not None else (int(r["gaps"].max()) if r["gaps"].size else 0)
            h = horizon if horizon is not None else int(np.max(r["last_day"], initial=0))
            evaluations[name] = PolicyEvaluation(
                name=name,
                records=dict(r),
                per_user=per_user,
                metrics={m: metrics[m] for m in METRICS},
                survival=survival_from_records(r, h),
                return_gaps=return_gap_histogram(r["gaps"], gap_max),
                churned=int(churned.sum()),
            )
        result = cls(
            env_id=env_id,
            env_kwargs=dict(env_kwargs or {}),
            users=users,
            seeds=[int(s) for s in seeds],
            block_size=block_size,
            horizon_days=int(horizon) if horizon is not None else -1,
            max_gap_days=int(max_gap) if max_gap is not None else -1,
            num_items=num_items,
            policies=evaluations,
            reference=reference if reference is not None else (listed[0] if len(listed) > 1 else None),
            oracle=oracle,
        )
        if result.reference is not None:
            for name in listed:
                if name != result.reference:
                    result.paired[f"{name} - {result.reference}"] = result.paired_difference(
                        result.reference, name
                    )
        return result

    # ------------------------------------------------------------------------------------------- analysis
    def paired_difference(self, a: str, b: str) -> dict[str, Estimate]:
        """Paired differences ``b - a`` of every metric over the same users (common random numbers)."""
        pa, pb = self.policies[a], self.policies[b]
        _check_same_users(pa.records, pb.records, a, b)
        seeds = np.asarray(pa.records["seed"])
        out = {}
        for m in METRICS:
            if m == "coverage":
                out[m] = coverage_estimate(
                    _shown_by_seed(pb.records), self.num_items or 0, reference=_shown_by_seed(pa.records)
                )
            else:
                out[m] = paired_estimate(pa.per_user[m], pb.per_user[m], seeds)
        return out

    def to_json(self) -> dict[str, Any]:
        """The JSON document of ``--json``: ``{"env", "policies": {NAME: {"metrics": ...}}, "paired"}``."""
        paired = {}
        for key, metrics in self.paired.items():
            b, a = key.split(" - ", 1)
            paired[key] = {"a": a, "b": b, "metrics": {m: metrics[m].to_json() for m in METRICS}}
        return {
            "env": self.env_id,
            "env_kwargs": _json_kwargs(self.env_kwargs),
            "users": self.users,
            "seeds": self.seeds,
            "block_size": self.block_size,
            "horizon_days": self.horizon_days,
            "max_gap_days": self.max_gap_days,
            "num_items": self.num_items,
            "reference": self.reference,
            "oracle": self.oracle,
            "ci_method": (
                "ci95: Student t over users (coverage: delete-one-user jackknife); "
                "ci95_seeds: Student t over per-seed means"
            ),
            "policies": {name: p.to_json() for name, p in self.policies.items()},
            "paired": paired,
        }

    def save_json(self, path: str | os.PathLike) -> Path:
        path = Path(path)
        if path.parent and not path.parent.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_json(), indent=2, allow_nan=False) + "\n")
        return path

    def table(self, metrics: Sequence[str] = METRICS) -> str:
        """Markdown table: one row per policy, one column per metric, ``mean [lo, hi]``."""
        header = "| policy | " + " | ".join(METRIC_INFO[m][0] for m in metrics) + " |"
        rule = "|---|" + "---|" * len(metrics)
        rows = [
            f"| {name} | " + " | ".join(p.metrics[m].format() for m in metrics) + " |"
            for name, p in self.policies.items()
        ]
        return "\n".join([header, rule, *rows])

    def paired_table(self, metrics: Sequence[str] = METRICS) -> str:
        """Markdown table of the paired differences against the reference policy."""
        if not self.paired:
            return ""
        header = "| difference | " + " | ".join(METRIC_INFO[m][0] for m in metrics) + " |"
        rule = "|---|" + "---|" * len(metrics)
        rows = [
            f"| {k} | " + " | ".join(v[m].format() for m in metrics) + " |" for k, v in self.paired.items()
        ]
        return "\n".join([header, rule, *rows])

    def summary(self, metrics: Sequence[str] | None = None) -> str:
        """A plain-text table for terminals (mean and 95% half-width)."""
        default = ("day1_retention", "day7_retention", "sessions_per_user", "watch_time_per_user", "ctr",
                   "diversity", "coverage", "regret")  # fmt: skip
        metrics = list(metrics or default)
        names = list(self.policies)
        width = max([6, *map(len, names)])
        cols = [METRIC_INFO[m][0] for m in metrics]
        colw = [max(len(c), 15) for c in cols]
        head = "  ".join(c.rjust(w) for c, w in zip(cols, colw, strict=True))
        lines = ["policy".ljust(width) + "  " + head]
        for name in names:
            cells = []
            for m, w in zip(metrics, colw, strict=True):
                e = self.policies[name].metrics[m]
                if not math.isfinite(e.mean):
                    cell = "n/a"
                elif math.isfinite(e.half_width):
                    cell = f"{e.mean:.3g} ±{e.half_width:.2g}"
                else:
                    cell = f"{e.mean:.3g}"
                cells.append(cell.rjust(w))
            lines.append(name.ljust(width) + "  " + "  ".join(cells))
        return "\n".join(lines)

    def write_report(self, out_dir: str | os.PathLike, plots: bool = True) -> Path:
        """Write ``results.json``, ``report.md`` and (with matplotlib) the PNG plots into ``out_dir``."""
        from .report import write_report

        return write_report(self, out_dir, plots=plots)


def _check_same_users(a: Mapping[str, np.ndarray], b: Mapping[str, np.ndarray], na: str, nb: str) -> None:
    if not (np.array_equal(a["seed"], b["seed"]) and np.array_equal(a["user"], b["user"])):
        raise ValueError(f"policies {na!r} and {nb!r} were not evaluated on the same users; cannot pair them")


def _json_kwargs(kwargs: Mapping[str, Any]) -> dict[str, Any]:
    from .runner import _jsonable

    return _jsonable(dict(kwargs))
