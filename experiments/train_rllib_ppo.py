"""Claim: Ray RLlib PPO (new API stack) trained on RecoWorld-Session-v0 through the native batched environment
beats random on watch time per user (paired users, 95% CI of the difference excludes zero).

    python experiments/train_rllib_ppo.py                          # 300k steps, local Ray
    python experiments/train_rllib_ppo.py --env-runners 2          # sampling in 2 remote env runners
    python experiments/train_rllib_ppo.py --smoke                  # CI smoke mode (about a minute)
    python experiments/train_rllib_ppo.py --restore runs/rllib_ppo/checkpoints/iter_000010

Every env runner holds one native vector environment of ``--envs-per-runner`` users (``recoworld.rllib``);
the ``Dict`` observation is flattened by RLlib's ``FlattenObservations`` connector. Writes into ``--out-dir``:
``config.json``, ``checkpoints/iter_<N>`` every ``--checkpoint-every`` iterations (``algo.save_to_path``),
``checkpoint`` (the final one), ``progress.jsonl`` (the learning curve: one line per iteration, appended to
when a run is restored) and ``results.json``. ``--restore`` continues a checkpoint: its env-step counter and
learning curve go on up to ``--total-timesteps``. At the end the greedy policy
(:class:`recoworld.agents.rllib.RLlibPolicy`) and the baselines serve the same evaluation users
(``recoworld.evaluation.compare``); the script prints the paired difference with its 95% CI, the training
steps, the wall time and the share of it spent inside the environment (seconds inside ``step``/``reset`` of
every runner's vector env, summed over runners, divided by the training wall time).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import sys
import time
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ppo_eval import compare_with_baselines  # noqa: E402

ENV_ID = "RecoWorld-Session-v0"
STEPS = "num_env_steps_sampled_lifetime"


# ---------------------------------------------------------------------------------------------- arguments
@dataclass(frozen=True)
class Args:
    env_id: str = ENV_ID
    env_runners: int = 0  # 0: sample in the driver process
    envs_per_runner: int = 64
    total_timesteps: int = 300_000
    train_batch: int = 4096  # env steps per training iteration
    minibatch: int = 512
    epochs: int = 4
    learning_rate: float = 3e-4
    gamma: float = 0.99
    entropy_coeff: float = 0.0
    hiddens: tuple[int, ...] = (128, 128)
    seed: int = 0
    torch_threads: int = 1
    num_cpus: int = 0  # CPUs of the local Ray runtime (0: all)
    out_dir: str = "runs/rllib_ppo"
    checkpoint_every: int = 10  # iterations
    restore: str = ""  # a checkpoint folder to continue from
    eval_users: int = 2048
    eval_seeds: int = 1
    baselines: tuple[str, ...] = ("random", "popular")
    smoke: bool = False


SMOKE = {
    "envs_per_runner": 16,
    "total_timesteps": 512,
    "train_batch": 256,
    "minibatch": 128,
    "epochs": 1,
    "hiddens": (32,),
    "num_cpus": 2,
    "checkpoint_every": 1,
    "eval_users": 64,
    "baselines": ("random",),
}


def parse_args(argv: list[str] | None = None) -> Args:
    """``Args`` from the command line (``--field-name value``; tuples take several values)."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    for f in fields(Args):
        flag = "--" + f.name.replace("_", "-")
        if isinstance(f.default, bool):
            parser.add_argument(flag, action="store_true", help="(default off)")
        elif isinstance(f.default, tuple):
            kind = type(f.default[0])
            parser.add_argument(flag, type=kind, nargs="+", default=f.default, help=f"(default {f.default})")
        else:
            parser.add_argument(flag, type=type(f.default), default=f.default, help=f"(default {f.default})")
    ns = vars(parser.parse_args(argv))
    args = Args(
        **{f.name: tuple(ns[f.name]) if isinstance(f.default, tuple) else ns[f.name] for f in fields(Args)}
    )
    if args.smoke:  # smoke sizes, but what was given on the command line wins
        given = {f.name for f in fields(Args) if getattr(args, f.name) != f.default}
        args = dataclasses.replace(args, **{k: v for k, v in SMOKE.items() if k not in given})
    return args


def check_args(args: Args) -> None:
    """Raise ``ValueError`` naming the first bad argument."""
    positive = (
        "envs_per_runner",
        "total_timesteps",
        "train_batch",
        "minibatch",
        "epochs",
        "checkpoint_every",
    )
    for name in (*positive, "eval_users", "eval_seeds", "torch_threads"):
        if getattr(args, name) < 1:
            raise ValueError(
                f"--{name.replace('_', '-')}: must be a positive integer, got {getattr(args, name)}"
            )
    for name in ("env_runners", "num_cpus"):
        if getattr(args, name) < 0:
            raise ValueError(f"--{name.replace('_', '-')}: must be >= 0, got {getattr(args, name)}")
    if args.minibatch > args.train_batch:
        raise ValueError(f"--minibatch {args.minibatch} exceeds --train-batch {args.train_batch}")
    if args.restore and not Path(args.restore, "rllib_checkpoint.json").is_file():
        raise ValueError(f"--restore: no RLlib checkpoint folder at {args.restore!r}")


# ---------------------------------------------------------------------------------------------- run
def log_config(args: Args, out_dir: Path) -> dict[str, Any]:
    """Print the run's configuration and write it to ``out_dir/config.json``."""
    import gymnasium
    import numpy
    import ray
    import torch

    config = {
        "args": dataclasses.asdict(args),
        "python": sys.version.split()[0],
        "numpy": numpy.__version__,
        "gymnasium": gymnasium.__version__,
        "torch": torch.__version__,
        "ray": ray.__version__,
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True))
    print("config:", json.dumps(config, sort_keys=True), flush=True)
    return config


def build_algo(args: Args):
    """PPO from ``recoworld.rllib.ppo_config``, restored from ``--restore`` if given."""
    from ray.rllib.core.rl_module.default_model_config import DefaultModelConfig

    from recoworld.rllib import ppo_config

    config = (
        ppo_config(
            args.env_id,
            num_env_runners=args.env_runners,
            num_envs_per_env_runner=args.envs_per_runner,
            seed=args.seed,
            timed=True,
        )
        .training(
            train_batch_size_per_learner=args.train_batch,
            minibatch_size=args.minibatch,
            num_epochs=args.epochs,
            lr=args.learning_rate,
            gamma=args.gamma,
            entropy_coeff=args.entropy_coeff,
        )
        .rl_module(model_config=DefaultModelConfig(fcnet_hiddens=list(args.hiddens), vf_share_layers=False))
    )
    algo = config.build_algo()
    if args.restore:
        algo.restore_from_path(str(Path(args.restore).resolve()))
    return algo


def train(args: Args) -> dict[str, Any]:
    """Train (or continue) PPO; returns ``steps`` (this run's env steps), ``wall_s`` (seconds in the training
    loop), ``env_s`` (seconds inside the environments, summed over env runners), ``total_steps`` (the
    algorithm's lifetime counter), ``startup_s``, ``algo`` and paths. Starts a local Ray runtime unless one is
    running (and then leaves it running)."""
    from recoworld.rllib import env_seconds, require_ray

    ray = require_ray("experiments/train_rllib_ppo.py")
    import torch

    check_args(args)
    out_dir = Path(args.out_dir)
    config = log_config(args, out_dir)
    # seeding: RLlib seeds torch, numpy and every runner's environment from config.debugging(seed=...)
    torch.set_num_threads(args.torch_threads)
    start = time.perf_counter()
    if not ray.is_initialized():
        ray.init(num_cpus=args.num_cpus or None, include_dashboard=False, log_to_driver=False)
    algo = build_algo(args)
    startup = time.perf_counter() - start
    start_steps = lifetime_steps(algo)
    if start_steps >= args.total_timesteps:
        raise ValueError(
            f"--total-timesteps {args.total_timesteps} already reached by the checkpoint ({start_steps})"
        )
    steps, wall, env_start = start_steps, 0.0, env_seconds(algo)
    with (out_dir / "progress.jsonl").open("a") as curve:
        while steps < args.total_timesteps:
            tick = time.perf_counter()
            result = algo.train()
            wall += time.perf_counter() - tick
            steps = lifetime_steps(algo)
            row = {
                "iteration": int(result["training_iteration"]),
                "steps": steps,
                "episode_return_mean": result["env_runners"].get("episode_return_mean"),
                "train_s": round(wall, 3),
            }
            curve.write(json.dumps(row) + "\n")
            curve.flush()
            print(
                f"iter {row['iteration']:4d}  steps {steps:8d}  return {row['episode_return_mean']}",
                flush=True,
            )
            if row["iteration"] % args.checkpoint_every == 0:
                algo.save_to_path(str((out_dir / "checkpoints" / f"iter_{row['iteration']:06d}").resolve()))
    final = (out_dir / "checkpoint").resolve()
    algo.save_to_path(str(final))
    env_s = env_seconds(algo) - env_start
    stats = {
        "steps": steps - start_steps,
        "total_steps": steps,
        "resumed_from": start_steps,
        "wall_s": wall,
        "env_s": env_s,
        "startup_s": startup,
        "steps_per_s": (steps - start_steps) / wall,
        "env_share": env_s / wall,
        "env_runners": args.env_runners,
    }
    print(
        f"trained {stats['steps']} steps (counter {start_steps} -> {steps}) in {wall:.1f} s "
        f"(+{startup:.1f} s start-up): {stats['steps_per_s']:.0f} env steps/s, "
        f"{100 * stats['env_share']:.1f}% of wall time in the environment",
        flush=True,
    )
    return {**stats, "algo": algo, "final": str(final), "config": config}


def lifetime_steps(algo) -> int:
    """The algorithm's env-step counter (restored with a checkpoint)."""
    from ray.rllib.utils.metrics import ENV_RUNNER_RESULTS, NUM_ENV_STEPS_SAMPLED_LIFETIME

    return int(algo.metrics.peek((ENV_RUNNER_RESULTS, NUM_ENV_STEPS_SAMPLED_LIFETIME), default=0))


def evaluate_against_baselines(args: Args, checkpoint: str) -> dict[str, Any]:
    """Greedy PPO vs the baselines on the same users; paired differences against the first baseline."""
    from recoworld.agents.rllib import RLlibPolicy

    return compare_with_baselines(
        RLlibPolicy.from_checkpoint(checkpoint), args.env_id, args.baselines, args.eval_users, args.eval_seeds
    )


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    run = train(args)
    run.pop("algo").stop()
    evaluation = evaluate_against_baselines(args, run["final"])
    results = {**{k: v for k, v in run.items() if k != "config"}, "evaluation": evaluation}
    Path(args.out_dir, "results.json").write_text(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
