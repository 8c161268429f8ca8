"""The ``recoworld`` command.

::

    recoworld demo [--out DIR]           # a panel of policies on RecoWorld-v0, with a report
    recoworld evaluate --env ID --policy NAME [--users N --seeds S --json FILE --out DIR --resume]
    recoworld compare --env ID --policies A,B,C [--users N --seeds S --json FILE --out DIR --resume]
    ... [--workers W]           # shards in W local processes
    ... --ray [--workers W]     # shards as Ray tasks (local Ray runtime, or the cluster of RAY_ADDRESS)

Policy names: the registered agents (``random``, ``popular``, ``oracle``, ``egreedy``, ``ucb``, ``linucb``,
``lints``, ``inslate_ts``, ``hrl`` ...), ``sb3:PATH`` (a trained Stable-Baselines3 model) and ``rllib:PATH``
(an RLlib checkpoint folder). Invalid arguments end with a one-line error on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["main", "build_parser", "DEMO_POLICIES"]

PROG = "recoworld"
DEMO_ENV = "RecoWorld-v0"
# The demo's panel, in display order; policies the installation cannot build are left out.
DEMO_POLICIES = ("random", "popular", "oracle", "egreedy", "ucb", "linucb", "lints", "inslate_ts", "hrl")
DEMO_USERS = 256
DEMO_SEEDS = 2
DEMO_WORKERS = max(1, min(2, os.cpu_count() or 1))


class UsageError(Exception):
    """Invalid command-line arguments (exit status 2)."""


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (no usage block) and exit status 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(message)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return value


def _env_arg(text: str) -> tuple[str, Any]:
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = {"True": True, "False": False, "None": None}.get(raw, raw)
    return key.strip(), value


def _add_common(
    p: argparse.ArgumentParser, *, users: int, seeds: int, env: str | None, workers: int = 1
) -> None:
    if env is None:
        p.add_argument("--env", required=True, metavar="ID", help="environment id, e.g. RecoWorld-v0")
    else:
        p.add_argument("--env", default=env, metavar="ID", help=f"environment id (default {env})")
    p.add_argument(
        "--users", type=_positive_int, default=users, metavar="N", help=f"users per seed ({users})"
    )
    p.add_argument(
        "--seeds", type=_positive_int, default=seeds, metavar="S", help=f"evaluation seeds ({seeds})"
    )
    p.add_argument("--json", metavar="FILE", help="write the results as JSON to FILE")
    p.add_argument("--out", metavar="DIR", help="write shards, results.json, report.md and plots to DIR")
    p.add_argument("--resume", action="store_true", help="reuse the finished shards found in --out")
    p.add_argument(
        "--env-arg",
        type=_env_arg,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="environment keyword argument (repeatable), e.g. --env-arg horizon_days=3",
    )
    p.add_argument("--block-size", type=_positive_int, default=None, metavar="B", help="users per shard")
    p.add_argument(
        "--workers",
        type=_positive_int,
        default=workers,
        metavar="W",
        help=f"processes (Ray tasks with --ray) running shards in parallel ({workers}); results do not "
        "depend on it",
    )
    p.add_argument(
        "--ray",
        action="store_true",
        help="run the shards as Ray tasks (a local Ray runtime unless RAY_ADDRESS names a cluster)",
    )
    p.add_argument("--no-oracle", action="store_true", help="skip the oracle run (no regret)")
    p.add_argument("--no-plots", action="store_true", help="Markdown report without PNG plots")
    prog = p.add_mutually_exclusive_group()
    prog.add_argument("--progress", dest="progress", action="store_true", default=None, help="progress bar")
    prog.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")


def build_parser() -> argparse.ArgumentParser:
    from recoworld import __version__

    parser = _Parser(prog=PROG, description="RecoWorld: retention evaluation of recommenders.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    demo = sub.add_parser("demo", help="evaluate a panel of policies on RecoWorld-v0 and write a report")
    _add_common(demo, users=DEMO_USERS, seeds=DEMO_SEEDS, env=DEMO_ENV, workers=DEMO_WORKERS)
    demo.set_defaults(out="recoworld-demo")
    demo.add_argument("--policies", metavar="A,B,C", help="override the panel (comma-separated names)")

    ev = sub.add_parser("evaluate", help="evaluate one policy")
    _add_common(ev, users=256, seeds=1, env=None)
    ev.add_argument("--policy", required=True, metavar="NAME", help="policy name or sb3:PATH")

    cmp_ = sub.add_parser("compare", help="evaluate several policies on the same users, paired")
    _add_common(cmp_, users=256, seeds=1, env=None)
    cmp_.add_argument("--policies", required=True, metavar="A,B,C", help="comma-separated policy names")
    cmp_.add_argument("--reference", metavar="NAME", help="policy the others are paired against (the first)")
    return parser


# ---------------------------------------------------------------------------------------------- checks
def _check_writable_dir(path: str, flag: str) -> Path:
    folder = Path(path)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".recoworld-write-test-{os.getpid()}"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise UsageError(f"{flag} {path}: output folder is not writable ({exc.strerror or exc})") from None
    return folder


def _check_writable_file(path: str) -> Path:
    file = Path(path)
    if file.is_dir():
        raise UsageError(f"--json {path}: is a folder")
    _check_writable_dir(str(file.parent) if str(file.parent) else ".", "--json")
    return file


def _split_names(text: str, flag: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise UsageError(f"{flag}: no policy named")
    if len(set(names)) != len(names):
        raise UsageError(f"{flag}: a policy is named twice")
    return names


def _check_policies(names: Sequence[str]) -> None:
    from recoworld.evaluation.policies import PolicyError, check_policy_name

    for name in names:
        try:
            check_policy_name(name)
        except PolicyError as exc:
            raise UsageError(str(exc)) from None
        if name.startswith("sb3:") and not Path(name[4:]).exists() and not Path(name[4:] + ".zip").exists():
            raise UsageError(f"policy {name!r}: model file {name[4:]!r} not found")
        if name.startswith("rllib:") and not Path(name[6:]).is_dir():
            raise UsageError(f"policy {name!r}: checkpoint folder {name[6:]!r} not found")


def _check_env(env_id: str, env_kwargs: dict[str, Any]) -> None:
    from recoworld.evaluation import check_env_id

    try:
        check_env_id(env_id)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if env_kwargs:
        import gymnasium as gym

        try:
            env = gym.make_vec(env_id, num_envs=1, vectorization_mode="vector_entry_point", **env_kwargs)
            env.close()
        except (TypeError, ValueError) as exc:
            raise UsageError(f"--env-arg: {exc}") from None


def _demo_panel() -> list[str]:
    from recoworld.evaluation.policies import PolicyError, check_policy_name

    panel = []
    for name in DEMO_POLICIES:
        try:
            check_policy_name(name)
        except PolicyError:
            continue
        if name == "hrl" and importlib.util.find_spec("torch") is None:
            continue
        panel.append(name)
    return panel


# ---------------------------------------------------------------------------------------------- commands
def _process_pool(workers: int):
    """A pool of fresh ("spawn") processes with one BLAS/torch thread each (shards are the parallel unit)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")
    return ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"))


def _run(args: argparse.Namespace) -> int:
    from recoworld.evaluation import compare

    env_kwargs = dict(args.env_arg)
    if args.command == "evaluate":
        names = [args.policy]
    elif args.command == "compare" or args.policies:
        names = _split_names(args.policies, "--policies")
    else:
        names = _demo_panel()
    reference = getattr(args, "reference", None)
    if reference is not None and reference not in names:
        raise UsageError(f"--reference {reference!r} is not among --policies")
    if args.resume and not args.out:
        raise UsageError("--resume needs --out DIR (where the finished shards are)")
    out = _check_writable_dir(args.out, "--out") if args.out else None
    json_path = _check_writable_file(args.json) if args.json else None
    _check_env(args.env, env_kwargs)
    _check_policies(names)

    progress = sys.stderr.isatty() if args.progress is None else args.progress
    kwargs: dict[str, Any] = {}
    if args.block_size is not None:
        kwargs["block_size"] = args.block_size
    start = time.perf_counter()
    if args.ray:
        if importlib.util.find_spec("ray") is None:
            raise UsageError("--ray needs Ray: pip install 'recoworld[ray]'")
        kwargs.update(backend="ray", workers=args.workers)
    with contextlib.ExitStack() as stack:
        if args.workers > 1 and not args.ray:
            kwargs["map_fn"] = stack.enter_context(_process_pool(args.workers)).map
        result = compare(
            names,
            args.env,
            users=args.users,
            seeds=args.seeds,
            env_kwargs=env_kwargs,
            reference=reference,
            oracle=None if args.no_oracle else "oracle",
            out_dir=out,
            resume=args.resume,
            progress=progress,
            **kwargs,
        )
    elapsed = time.perf_counter() - start
    print(f"{args.env}: {args.users} users x {args.seeds} seed(s), {len(names)} policies, {elapsed:.1f} s")
    print(result.summary())
    if json_path is not None:
        result.save_json(json_path)
        print(f"results: {json_path}")
    if out is not None:
        plots = not args.no_plots
        if plots and importlib.util.find_spec("matplotlib") is None:
            print("recoworld: plots need matplotlib: pip install recoworld[report]", file=sys.stderr)
            plots = False
        report = result.write_report(out, plots=plots)
        print(f"report: {report}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``recoworld`` console script; returns the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        return _run(args)
    except UsageError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(
            f"{PROG}: interrupted; finished shards are kept in --out (rerun with --resume)", file=sys.stderr
        )
        return 130
    except Exception as exc:  # noqa: BLE001 - one line for users; RECOWORLD_DEBUG=1 shows the traceback
        if os.environ.get("RECOWORLD_DEBUG"):
            raise
        message = " ".join(str(exc).split()) or type(exc).__name__
        print(
            f"{PROG}: error: {message} ({type(exc).__name__}; RECOWORLD_DEBUG=1 shows details)",
            file=sys.stderr,
        )
        return 1


if __name__ == "__main__":
    sys.exit(main())
