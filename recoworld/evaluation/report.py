"""The human report: Markdown with the metric tables and PNG plots (matplotlib, Agg backend).

Files written into the output folder:

* ``results.json`` -- the machine-readable result (:meth:`EvaluationResult.to_json`)
* ``report.md`` -- metric table, paired differences, plots, how to read them
* ``survival.png`` -- Kaplan–Meier survival curves with 95% bands
* ``return_gaps.png`` -- return-gap distributions (and churn)
* ``metrics.png`` -- one bar chart per metric with 95% whiskers
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .metrics import METRIC_INFO, METRICS

if TYPE_CHECKING:
    from .results import EvaluationResult

__all__ = ["write_report", "plot_survival", "plot_return_gaps", "plot_metrics", "REPORT_EXTRA_MESSAGE"]

REPORT_EXTRA_MESSAGE = "plots need matplotlib: pip install recoworld[report]"
METRIC_GROUPS = (
    ("Retention and engagement", METRICS[:5] + ("regret",)),
    ("Slates and instructions", METRICS[5:12]),
)


def _pyplot():
    try:
        import matplotlib
    except ImportError as exc:
        raise ImportError(REPORT_EXTRA_MESSAGE) from exc
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _save(plt, fig, path: str | os.PathLike) -> Path:
    """Lay out, write and close a figure."""
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


def plot_survival(result: EvaluationResult, path: str | os.PathLike) -> Path:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, p in result.policies.items():
        s = p.survival
        line = ax.step(s.days, s.survival, where="post", label=name)[0]
        ax.fill_between(s.days, s.lo, s.hi, step="post", alpha=0.15, color=line.get_color())
    ax.set_xlabel("day t")
    ax.set_ylabel("S(t): share still active after day t")
    ax.set_ylim(0, 1.02)
    ax.set_title(f"Kaplan–Meier survival ({result.env_id}, censored at day {result.horizon_days})")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(plt, fig, path)


def plot_return_gaps(result: EvaluationResult, path: str | os.PathLike) -> Path:
    plt = _pyplot()
    names = list(result.policies)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    n_bins = max(len(p.return_gaps) for p in result.policies.values())
    width = 0.8 / max(len(names), 1)
    first = 0 if any(len(p.return_gaps) and p.return_gaps[0] for p in result.policies.values()) else 1
    first = min(first, n_bins - 1) if n_bins else 0
    labels = [str(d) for d in range(first, n_bins)] + ["churn"]
    x = np.arange(len(labels))
    for i, name in enumerate(names):
        p = result.policies[name]
        counts = np.zeros(n_bins + 1)
        counts[: len(p.return_gaps)] = p.return_gaps
        counts[-1] = p.churned
        total = counts.sum()
        share = (counts / total if total > 0 else counts)[first:]
        ax.bar(x + (i - (len(names) - 1) / 2) * width, share, width=width, label=name)
    ax.set_xticks(x, labels)
    ax.set_xlabel("days until the next session (end of session)")
    ax.set_ylabel("share of session ends")
    ax.set_title("Return-gap distribution")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    return _save(plt, fig, path)


def plot_metrics(result: EvaluationResult, path: str | os.PathLike) -> Path:
    plt = _pyplot()
    names = list(result.policies)
    cols = 4
    rows = math.ceil(len(METRICS) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.4 * cols, 2.7 * rows), squeeze=False)
    colors = plt.rcParams["axes.prop_cycle"].by_key().get("color", ["C0"])
    for ax, m in zip(axes.flat, METRICS, strict=False):
        means, lo_err, hi_err = [], [], []
        for name in names:
            e = result.policies[name].metrics[m]
            mean = e.mean if math.isfinite(e.mean) else 0.0
            lo, hi = e.ci95
            means.append(mean)
            lo_err.append(mean - lo if math.isfinite(lo) else 0.0)
            hi_err.append(hi - mean if math.isfinite(hi) else 0.0)
        x = np.arange(len(names))
        ax.bar(x, means, yerr=[lo_err, hi_err], capsize=3,
               color=[colors[i % len(colors)] for i in range(len(names))])  # fmt: skip
        label, unit, higher = METRIC_INFO[m]
        ax.set_title(f"{label} ({'↑' if higher else '↓'})", fontsize=9)
        ax.set_ylabel(unit, fontsize=7)
        ax.set_xticks(x, names, rotation=45, ha="right", fontsize=7)
        ax.tick_params(axis="y", labelsize=7)
        ax.grid(axis="y", alpha=0.3)
    for ax in list(axes.flat)[len(METRICS) :]:
        ax.axis("off")
    n_seeds = len(result.seeds)
    fig.suptitle(f"{result.env_id}: means with 95% intervals ({result.users} users x {n_seeds} seeds)")
    return _save(plt, fig, path)


def _markdown(result: EvaluationResult, images: dict[str, str]) -> str:
    lines: list[str] = []
    add = lines.append
    add(f"# RecoWorld evaluation: {result.env_id}")
    add("")
    kw = ", ".join(f"{k}={v!r}" for k, v in result.env_kwargs.items()) or "defaults"
    add(f"- environment: `{result.env_id}` ({kw}); horizon {result.horizon_days} days, "
        f"churn after {result.max_gap_days} days away")  # fmt: skip
    add(f"- users: {result.users} per seed x {len(result.seeds)} seed(s) {result.seeds}, "
        f"at most {result.block_size} users per shard")  # fmt: skip
    add(
        f"- policies: {', '.join(result.policies)}"
        + (f"; regret against `{result.oracle}`" if result.oracle else "")
    )
    add("- every policy met the same users under the same random streams (common random numbers)")
    add("")
    add("## Metrics (mean [95% CI])")
    add("")
    add("Intervals: Student t over users (coverage: delete-one-user jackknife); `results.json` also holds "
        "the interval over per-seed means (`ci95_seeds`) when there are two or more seeds. "
        "See docs/evaluation.md.")  # fmt: skip
    add("")
    for title, group in METRIC_GROUPS:
        add(f"**{title}**")
        add("")
        add(result.table(group))
        add("")
    if result.paired:
        add(f"## Paired differences against `{result.reference}` (mean [95% CI])")
        add("")
        add("Each row is `policy - reference`, computed user by user on the same users; an interval that "
            "excludes 0 is a significant difference at the 5% level.")  # fmt: skip
        add("")
        for title, group in METRIC_GROUPS:
            add(f"**{title}**")
            add("")
            add(result.paired_table(group))
            add("")
    add("## Retention")
    add("")
    if "survival" in images:
        add(f"![Kaplan–Meier survival]({images['survival']})")
        add("")
    add("S(t) is the Kaplan–Meier estimate of the share of users still active after day t: a user's time is "
        "the day of the last session when the user churned, and users who had not churned at the horizon are "
        "censored "
        "there. The shaded bands are pointwise 95% intervals.")  # fmt: skip
    add("")
    add("| day | " + " | ".join(result.policies) + " |")
    add("|---|" + "---|" * len(result.policies))
    for d in range(result.horizon_days + 1 if result.horizon_days >= 0 else 0):
        cells = []
        for p in result.policies.values():
            v = p.survival.survival[d] if d < len(p.survival.survival) else math.nan
            cells.append("n/a" if not math.isfinite(v) else f"{v:.3f}")
        add(f"| {d} | " + " | ".join(cells) + " |")
    add("")
    add("## Return gaps")
    add("")
    if "return_gaps" in images:
        add(f"![Return-gap distribution]({images['return_gaps']})")
        add("")
    add("Days between the end of a session and the next session, over all session ends; `churn` counts "
        "users who did not come back within the maximum gap.")  # fmt: skip
    add("")
    if "metrics" in images:
        add("## All metrics")
        add("")
        add(f"![Metric bars]({images['metrics']})")
        add("")
    if not images:
        add(f"_No plots: {REPORT_EXTRA_MESSAGE}._")
        add("")
    return "\n".join(lines)


def write_report(result: EvaluationResult, out_dir: str | os.PathLike, plots: bool = True) -> Path:
    """Write ``results.json``, ``report.md`` and the plots into ``out_dir``; return the path of ``report.md``.

    Without matplotlib and with ``plots=True`` this raises ``ImportError`` naming ``pip install
    recoworld[report]`` after writing the JSON; pass ``plots=False`` for a Markdown report without images.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    result.save_json(out / "results.json")
    images: dict[str, Any] = {}
    if plots:
        _pyplot()  # fail early, with the install hint
        images["survival"] = plot_survival(result, out / "survival.png").name
        images["return_gaps"] = plot_return_gaps(result, out / "return_gaps.png").name
        images["metrics"] = plot_metrics(result, out / "metrics.png").name
    path = out / "report.md"
    path.write_text(_markdown(result, images) + "\n")
    return path
