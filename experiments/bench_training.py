"""PPO training throughput on RecoWorld-Session-v0: Stable-Baselines3, and RLlib with 0, 1 and 2 env runners.

    python experiments/bench_training.py                  # 40k steps per run, median of 3 runs
    python experiments/bench_training.py --smoke          # CI smoke mode

Throughput is env steps (users served one request) per second of training (``learn`` / the ``algo.train()``
calls: no start-up, checkpoints or evaluation). The environment share is the time spent inside the
environment's ``step`` and ``reset`` divided by that wall time: for SB3 a ``VecEnvWrapper`` timer around the
native vector env (``experiments/train_sb3_ppo.py``); for RLlib a ``TimedVectorEnv`` around every env runner's
native vector env (``recoworld.rllib.ppo_config(timed=True)``), summed over runners, so with several runners
sampling in parallel it is the environment's seconds per wall second (it can exceed the share seen by any one
process). The target is an environment share under 10%: the simulator must not be the bottleneck.
Both frameworks train the configuration of their training script (same batch sizes as there).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import statistics
import sys
import tempfile
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import train_rllib_ppo  # noqa: E402
import train_sb3_ppo  # noqa: E402


@dataclass(frozen=True)
class Args:
    timesteps: int = 40_000  # env steps per measured run
    repeats: int = 3  # runs per configuration; medians are reported
    env_runners: tuple[int, ...] = (0, 1, 2)
    envs: int = 64  # users per vector env (SB3's num_envs; RLlib's per env runner)
    num_cpus: int = 0  # local Ray runtime CPUs (0: all)
    skip_sb3: bool = False
    smoke: bool = False


SMOKE = {"timesteps": 512, "repeats": 1, "env_runners": (0, 1), "envs": 16, "num_cpus": 2}


def parse_args(argv: list[str] | None = None) -> Args:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    for f in fields(Args):
        flag = "--" + f.name.replace("_", "-")
        if isinstance(f.default, bool):
            parser.add_argument(flag, action="store_true", help="(default off)")
        elif isinstance(f.default, tuple):
            parser.add_argument(flag, type=int, nargs="+", default=f.default, help=f"(default {f.default})")
        else:
            parser.add_argument(flag, type=type(f.default), default=f.default, help=f"(default {f.default})")
    ns = vars(parser.parse_args(argv))
    args = Args(
        **{f.name: tuple(ns[f.name]) if isinstance(f.default, tuple) else ns[f.name] for f in fields(Args)}
    )
    return dataclasses.replace(args, **SMOKE) if args.smoke else args


def run_sb3(args: Args, out_dir: str) -> dict[str, Any]:
    base = train_sb3_ppo.Args(smoke=args.smoke)
    if args.smoke:
        base = dataclasses.replace(base, **train_sb3_ppo.SMOKE)
    run = train_sb3_ppo.train(
        dataclasses.replace(
            base,
            num_envs=args.envs,
            total_timesteps=args.timesteps,
            checkpoint_every=10 * args.timesteps,
            out_dir=out_dir,
        )
    )
    return {k: run[k] for k in ("steps", "wall_s", "env_s")}


def run_rllib(args: Args, runners: int, out_dir: str) -> dict[str, Any]:
    base = train_rllib_ppo.Args(smoke=args.smoke)
    if args.smoke:
        base = dataclasses.replace(base, **train_rllib_ppo.SMOKE)
    run = train_rllib_ppo.train(
        dataclasses.replace(
            base,
            env_runners=runners,
            envs_per_runner=args.envs,
            total_timesteps=args.timesteps,
            checkpoint_every=10**9,
            num_cpus=args.num_cpus,
            out_dir=out_dir,
        )
    )
    run.pop("algo").stop()
    return {k: run[k] for k in ("steps", "wall_s", "env_s", "startup_s")}


def summarise(label: str, runs: list[dict[str, Any]]) -> dict[str, Any]:
    rates = [r["steps"] / r["wall_s"] for r in runs]
    shares = [r["env_s"] / r["wall_s"] for r in runs]
    row = {
        "label": label,
        "runs": len(runs),
        "steps": runs[0]["steps"],
        "steps_per_s": statistics.median(rates),
        "steps_per_s_range": [min(rates), max(rates)],
        "env_share": statistics.median(shares),
    }
    if "startup_s" in runs[0]:
        row["startup_s"] = statistics.median(r["startup_s"] for r in runs)
    print(
        f"{label:22s} {row['steps_per_s']:8.0f} env steps/s  (range {min(rates):.0f}-{max(rates):.0f}, "
        f"{len(runs)} runs)  env share {100 * row['env_share']:5.1f}%",
        flush=True,
    )
    return row


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    args = parse_args(argv)
    from recoworld.rllib import require_ray

    ray = require_ray("experiments/bench_training.py")
    config = {"args": dataclasses.asdict(args), "machine": platform.machine(), "cpus": os.cpu_count()}
    print("config:", json.dumps(config, sort_keys=True), flush=True)
    if not ray.is_initialized():
        ray.init(num_cpus=args.num_cpus or None, include_dashboard=False, log_to_driver=False)
    rows = []
    with tempfile.TemporaryDirectory(prefix="recoworld-bench-") as tmp:
        if not args.skip_sb3:
            runs = [run_sb3(args, f"{tmp}/sb3_{i}") for i in range(args.repeats)]
            rows.append(summarise("sb3 ppo", runs))
        for runners in args.env_runners:
            runs = [run_rllib(args, runners, f"{tmp}/rllib{runners}_{i}") for i in range(args.repeats)]
            rows.append(summarise(f"rllib ppo, {runners} runners", runs))
    print(json.dumps(rows), flush=True)
    return rows


if __name__ == "__main__":
    main()
