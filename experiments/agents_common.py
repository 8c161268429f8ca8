"""Shared machinery of the ``experiments/agents_*.py`` scripts: common arguments, paired-user runs (optionally
in parallel processes), per-user metrics, 95% CIs and the markdown tables written into ``docs/agents.md``.

A *run* serves ``users`` users of ``RecoWorld-v0`` (sub-env ``i`` of a vector env reset with ``seed *
1_000_000`` is user ``i`` of that seed) for exactly one episode each, with one agent instance that learns
online (``update``) while it serves them, from scratch unless it was trained before. Two agents run on the
same seed meet the same users under the same random streams (common random numbers), so per-user differences
are paired. Runs are independent, so ``--jobs N`` spreads them over N processes without changing any result.
"""

from __future__ import annotations

import json
import os
import platform
import re
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

# one BLAS / torch thread: the batched numpy work is small per call and oversubscription is slow on 2 cores
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import gymnasium as gym  # noqa: E402
import numpy as np  # noqa: E402

import recoworld  # noqa: E402, F401  (registers the environments)
from recoworld.agents import intra_slate_diversity, make_agent  # noqa: E402
from recoworld.agents.registry import ground_truth_utility  # noqa: E402

SEED_STRIDE = 1_000_000
ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs" / "agents.md"
Z95 = 1.959963984540054


# ---------------------------------------------------------------------------------------------- runs
@dataclass
class RunResult:
    """Per-user records of one run (arrays of length ``users``)."""

    policy: str
    seed: int
    watch: np.ndarray  # total reward (watch minutes) over the episode
    day7: np.ndarray  # 1 if the user had a session on day >= 7 (the horizon's last day by default)
    day1: np.ndarray
    sessions: np.ndarray
    requests: np.ndarray
    clicks: np.ndarray
    examined: np.ndarray
    clicked_requests: np.ndarray  # requests with at least one click
    diversity: np.ndarray  # mean intra-slate diversity of the user's slates
    session_return: np.ndarray  # mean reward per session
    instructions_judged: np.ndarray  # requests that had a pending instruction
    instructions_followed: np.ndarray
    seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ctr(self) -> np.ndarray:
        """Per-user clicks per examined slot."""
        return self.clicks / np.maximum(self.examined, 1)

    @property
    def slate_ctr(self) -> np.ndarray:
        """Per-user share of requests (slates) with at least one click — the paper's click rate."""
        return self.clicked_requests / np.maximum(self.requests, 1)

    @property
    def follow_rate(self) -> np.ndarray:
        """Per-user share of judged requests whose instruction was honoured (NaN when none was judged)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(
                self.instructions_judged > 0, self.instructions_followed / self.instructions_judged, np.nan
            )


def make_env(users: int, **env_kwargs: Any):
    return gym.make_vec("RecoWorld-v0", num_envs=users, vectorization_mode="vector_entry_point", **env_kwargs)


def run_agent(
    agent: Any,
    users: int,
    seed: int,
    env_kwargs: dict[str, Any] | None = None,
    *,
    label: str | None = None,
    horizon_day: int | None = None,
) -> RunResult:
    """Serve ``users`` users of seed ``seed`` for one episode each with ``agent`` (learning online)."""
    env_kwargs = dict(env_kwargs or {})
    env = make_env(users, **env_kwargs)
    horizon = env.config.horizon_days if horizon_day is None else horizon_day
    if hasattr(agent, "utility_fn"):  # the oracle reads the ground truth of the environment it serves
        agent.utility_fn = ground_truth_utility(env)
    start = time.perf_counter()
    reset = getattr(agent, "reset", None)
    if callable(reset):
        reset(seed)
    obs, _ = env.reset(seed=seed * SEED_STRIDE)
    n = users
    done = np.zeros(n, dtype=bool)
    z = lambda: np.zeros(n)  # noqa: E731
    watch, sessions, requests, clicks, examined, div_sum, clicked_req = z(), z(), z(), z(), z(), z(), z()
    judged, followed, last_day = z(), z(), np.zeros(n, dtype=np.int64)
    first_day = np.full(n, -1)
    while not done.all():
        action = np.asarray(agent.act(obs))
        nxt, reward, term, trunc, info = env.step(action)
        agent.update(obs, action, reward, info)
        live = np.asarray(info["_clicked"], dtype=bool) & ~done
        topics = np.take_along_axis(obs["candidate_topic"], action, axis=1)
        watch += np.where(live, reward, 0.0)
        requests += live
        clicks += np.where(live, info["clicked"].sum(axis=1), 0)
        examined += np.where(live, info["examined"].sum(axis=1), 0)
        clicked_req += live & info["clicked"].any(axis=1)
        div_sum += np.where(live, intra_slate_diversity(topics), 0.0)
        sessions += live & info["session_ended"]
        f = np.asarray(info["instruction_followed"])
        judged += live & (f >= 0)
        followed += live & (f == 1)
        last_day = np.where(live, np.maximum(last_day, info["day"]), last_day)
        first_day = np.where(live & (first_day < 0), info["day"], first_day)
        done |= np.asarray(term) | np.asarray(trunc)
        obs = nxt
    env.close()
    return RunResult(
        policy=label or getattr(agent, "name", type(agent).__name__),
        seed=seed,
        watch=watch,
        day7=(last_day >= horizon).astype(float),
        day1=(last_day >= 1).astype(float),
        sessions=sessions,
        requests=requests,
        clicks=clicks,
        examined=examined,
        clicked_requests=clicked_req,
        diversity=div_sum / np.maximum(requests, 1),
        session_return=watch / np.maximum(sessions, 1),
        instructions_judged=judged,
        instructions_followed=followed,
        seconds=time.perf_counter() - start,
    )


def build(name: str, env_kwargs: dict[str, Any], seed: int, **kwargs: Any):
    """An agent for ``RecoWorld-v0`` with these environment keywords (the oracle gets the env it reads)."""
    env = make_env(1, **env_kwargs)
    agent = make_agent(name, env, seed=seed, **kwargs)
    env.close()
    return agent


# ---------------------------------------------------------------------------------------------- jobs
TRAIN_SEED_OFFSET = 100  # training users come from seed TRAIN_SEED_OFFSET + seed, disjoint from evaluation


@dataclass(frozen=True)
class CommonArgs:
    """Arguments every script takes (scripts subclass it with their own fields)."""

    users: int = 2000
    seeds: tuple[int, ...] = (0, 1, 2)
    agent_seed: int = 0
    horizon_days: int = 7
    jobs: int = 1  # processes running the independent runs in parallel (results do not depend on it)
    no_docs: bool = False
    smoke: bool = False

    def smoke_args(self) -> CommonArgs:
        """The CI smoke configuration: a few users, one seed, one day, no docs written."""
        return replace(self, users=16, seeds=(0,), horizon_days=1, no_docs=True, jobs=1)


@dataclass(frozen=True)
class Job:
    """One run: build an agent, optionally train it on a disjoint seed, then serve ``users`` users of
    ``seed``. ``agent`` is a registry name (built by :func:`build`) or a picklable factory
    ``agent(seed, **agent_kwargs)``.
    """

    label: str
    seed: int
    agent: str | Callable[..., Any]
    users: int
    agent_seed: int
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    agent_kwargs: dict[str, Any] = field(default_factory=dict)
    train_users: int = 0
    deterministic_eval: bool = False  # after training, agents with a ``deterministic`` switch turn it on


def run_job(job: Job) -> RunResult:
    if isinstance(job.agent, str):
        agent = build(job.agent, job.env_kwargs, job.agent_seed, **job.agent_kwargs)
    else:
        agent = job.agent(job.agent_seed, **job.agent_kwargs)
    if job.train_users:
        run_agent(agent, job.train_users, TRAIN_SEED_OFFSET + job.seed, job.env_kwargs, label=job.label)
    if job.deterministic_eval and hasattr(agent, "deterministic"):
        agent.deterministic = True
    result = run_agent(agent, job.users, job.seed, job.env_kwargs, label=job.label)
    result.extra["stats"] = dict(getattr(agent, "stats", {}))
    return result


def progress_line(r: RunResult) -> str:
    return (
        f"seed {r.seed} {r.policy:40s} watch {r.watch.mean():7.1f} day7 {r.day7.mean():.3f} "
        f"ctr {r.ctr.mean():.3f} div {r.diversity.mean():.3f} session {r.session_return.mean():6.2f} "
        f"follow {mean_ci(r.follow_rate)[0]:.3f} ({r.seconds:.0f}s)"
    )


def run_jobs(jobs: Sequence[Job], workers: int = 1) -> dict[str, list[RunResult]]:
    """Run ``jobs`` (in ``workers`` forked processes when > 1); results by label, in job order."""
    if workers > 1:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
            done = list(pool.map(run_job, jobs))
    else:
        done = []
        for job in jobs:
            done.append(run_job(job))
            print(progress_line(done[-1]), flush=True)
    results: dict[str, list[RunResult]] = {}
    for r in done:
        if workers > 1:
            print(progress_line(r), flush=True)
        results.setdefault(r.policy, []).append(r)
    return results


def run_variants(
    args: CommonArgs, variants: Sequence[tuple[str, str, dict[str, Any]]]
) -> dict[str, list[RunResult]]:
    """Log the configuration, then run every (label, registry name, agent kwargs) on every seed of ``args``
    in the default world with ``args.horizon_days``; results by label."""
    env_kwargs = {"horizon_days": args.horizon_days}
    log_config(args, env="RecoWorld-v0", env_kwargs=env_kwargs)
    jobs = [
        Job(label, seed, name, args.users, args.agent_seed + seed, env_kwargs, kw)
        for seed in args.seeds
        for label, name, kw in variants
    ]
    return run_jobs(jobs, args.jobs)


# ---------------------------------------------------------------------------------------------- statistics
def mean_ci(x: np.ndarray) -> tuple[float, float, float]:
    """(mean, low, high): normal 95% interval of the mean over the finite entries."""
    x = np.asarray(x, dtype=np.float64)
    x = x[np.isfinite(x)]
    if x.size == 0:
        return float("nan"), float("nan"), float("nan")
    m = float(x.mean())
    half = Z95 * float(x.std(ddof=1)) / np.sqrt(x.size) if x.size > 1 else float("nan")
    return m, m - half, m + half


def fmt_ci(m: float, lo: float, hi: float, digits: int = 3) -> str:
    if not np.isfinite(m):
        return "–"
    return f"{m:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"


def pooled(results: Sequence[RunResult], metric: str) -> np.ndarray:
    return np.concatenate([np.asarray(getattr(r, metric), dtype=np.float64) for r in results])


def paired(a: Sequence[RunResult], b: Sequence[RunResult], metric: str) -> tuple[float, float, float]:
    """Mean and 95% CI of the per-user difference a − b, users paired by (seed, index)."""
    by_seed = {r.seed: r for r in b}
    diffs = [
        np.asarray(getattr(r, metric), float) - np.asarray(getattr(by_seed[r.seed], metric), float) for r in a
    ]
    return mean_ci(np.concatenate(diffs))


# ---------------------------------------------------------------------------------------------- reporting
def metric_cells(results: Sequence[RunResult], metrics: Sequence[tuple[str, int]]) -> list[str]:
    """``mean [low, high]`` over users pooled over seeds, one cell per (metric, digits)."""
    return [fmt_ci(*mean_ci(pooled(results, m)), digits=d) for m, d in metrics]


def seeds_text(args: CommonArgs) -> str:
    return ", ".join(str(s) for s in args.seeds)


def finish(args: CommonArgs, key: str, body: str, **out: Any) -> dict[str, Any]:
    """Print ``body``, write it into docs/agents.md (unless ``--no-docs``) and return the outputs."""
    print(body)
    if not args.no_docs:
        write_section(key, body)
    return {"markdown": body, **out}


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def write_section(key: str, body: str, path: Path = DOCS) -> None:
    """Replace the block between ``<!-- key:begin -->`` and ``<!-- key:end -->`` in ``path``
    (appended if absent)."""
    begin, end = f"<!-- {key}:begin -->", f"<!-- {key}:end -->"
    text = path.read_text() if path.exists() else "# Agents\n"
    block = f"{begin}\n{body.strip()}\n{end}"
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.S)
    text = (
        pattern.sub(lambda _: block, text) if pattern.search(text) else text.rstrip() + "\n\n" + block + "\n"
    )
    path.write_text(text)


def log_config(args: Any, **extra: Any) -> dict[str, Any]:
    """Print (and return) the run's configuration: arguments, versions, machine."""
    import gymnasium

    cfg = {
        "args": asdict(args) if hasattr(args, "__dataclass_fields__") else dict(vars(args)),
        "python": sys.version.split()[0],
        "numpy": np.__version__,
        "gymnasium": gymnasium.__version__,
        "recoworld": getattr(recoworld, "__version__", "?"),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        **extra,
    }
    print("config:", json.dumps(cfg, default=str, sort_keys=True), flush=True)
    return cfg


def add_dataclass_args(parser, cls) -> None:
    """argparse options for every field of the dataclass ``cls`` (``--field-name``; tuples take several)."""
    import argparse

    for f in fields(cls):
        flag = "--" + f.name.replace("_", "-")
        default = f.default
        if isinstance(default, bool) and not default:
            parser.add_argument(flag, action="store_true", help="(default off)")
        elif isinstance(default, bool):  # --name / --no-name
            parser.add_argument(
                flag, action=argparse.BooleanOptionalAction, default=True, help="(default on)"
            )
        elif isinstance(default, tuple):
            kind = type(default[0]) if default else str
            parser.add_argument(
                flag, type=kind, nargs="+", default=list(default), help=f"(default {default})"
            )
        else:
            parser.add_argument(flag, type=type(default), default=default, help=f"(default {default})")


def parse(cls, argv: Sequence[str] | None, description: str):
    """The command line as the ``CommonArgs`` subclass ``cls`` (its smoke configuration with --smoke)."""
    import argparse

    p = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_dataclass_args(p, cls)
    ns = p.parse_args(argv)
    values = {
        f.name: (tuple(getattr(ns, f.name)) if isinstance(f.default, tuple) else getattr(ns, f.name))
        for f in fields(cls)
    }
    args = cls(**values)
    return args.smoke_args() if args.smoke else args
