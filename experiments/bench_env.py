"""Simulator throughput: native vector env for several batch sizes, the single env, and a bare numpy reference.

    python experiments/bench_env.py            # full run (about a minute)
    python experiments/bench_env.py --smoke    # CI smoke mode (seconds)

Prints median user-steps per second over ``--repeats`` runs, all measured in the same process.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, dataclass

import gymnasium as gym
import numpy as np

import recoworld  # noqa: F401


@dataclass(frozen=True)
class Args:
    batch_sizes: tuple[int, ...] = (1, 64, 1024, 4096)
    steps: int = 200
    single_steps: int = 5000
    repeats: int = 5
    seed: int = 0
    smoke: bool = False


def parse_args() -> Args:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batch-sizes", type=int, nargs="+", default=list(Args.batch_sizes))
    p.add_argument("--steps", type=int, default=Args.steps)
    p.add_argument("--single-steps", type=int, default=Args.single_steps)
    p.add_argument("--repeats", type=int, default=Args.repeats)
    p.add_argument("--seed", type=int, default=Args.seed)
    p.add_argument("--smoke", action="store_true")
    a = p.parse_args()
    if a.smoke:
        return Args(batch_sizes=(1, 64), steps=10, single_steps=50, repeats=1, seed=a.seed, smoke=True)
    return Args(tuple(a.batch_sizes), a.steps, a.single_steps, a.repeats, a.seed, False)


def random_slates(rng: np.random.Generator, n: int, c: int, k: int, count: int) -> list[np.ndarray]:
    """Pre-drawn random slates without repeats, so the agent costs nothing inside the timed loop."""
    return [np.argsort(rng.random((n, c)), axis=1)[:, :k] for _ in range(count)]


def bench_vector(n: int, args: Args) -> float:
    envs = gym.make_vec("RecoWorld-v0", num_envs=n, vectorization_mode="vector_entry_point")
    cfg = envs.config
    slates = random_slates(np.random.default_rng(args.seed), n, cfg.num_candidates, cfg.slate_size, 16)
    envs.reset(seed=args.seed)
    start = time.perf_counter()
    for t in range(args.steps):
        envs.step(slates[t % 16])
    return n * args.steps / (time.perf_counter() - start)


def bench_single(args: Args) -> float:
    env = gym.make("RecoWorld-v0")
    cfg = env.unwrapped.config
    slates = random_slates(np.random.default_rng(args.seed), 16, cfg.num_candidates, cfg.slate_size, 1)[0]
    env.reset(seed=args.seed)
    start = time.perf_counter()
    for t in range(args.single_steps):
        _, _, terminated, truncated, _ = env.step(slates[t % 16])
        if terminated or truncated:
            env.reset()
    return args.single_steps / (time.perf_counter() - start)


def bench_reference(n: int, args: Args, num_items: int = 1000, num_topics: int = 20) -> float:
    """A bare numpy loop doing only slate scoring and a cascade choice for ``n`` users."""
    rng = np.random.default_rng(args.seed)
    alpha = rng.dirichlet(np.full(num_topics, 0.1), num_items)
    rho = rng.dirichlet(np.ones(num_topics), n)
    position = -0.3 * np.log(np.arange(1, 11))
    start = time.perf_counter()
    for _ in range(args.steps):
        slate = rng.integers(0, num_items, (n, 10))
        utility = np.log((rho[:, None, :] * alpha[slate]).sum(axis=2)) + position
        clicked = rng.random((n, 10)) < 1.0 / (1.0 + np.exp(-utility))
        rho = 0.99 * rho + 0.01 * (alpha[slate] * clicked[:, :, None]).sum(axis=1) / 10
    return n * args.steps / (time.perf_counter() - start)


def main() -> None:
    args = parse_args()
    print("config:", json.dumps(asdict(args)))
    results: dict[str, float] = {}
    for n in args.batch_sizes:
        results[f"vector N={n}"] = float(np.median([bench_vector(n, args) for _ in range(args.repeats)]))
    results["single env"] = float(np.median([bench_single(args) for _ in range(args.repeats)]))
    n_ref = max(args.batch_sizes) if args.smoke else 1024
    results[f"bare numpy reference N={n_ref}"] = float(
        np.median([bench_reference(n_ref, args) for _ in range(args.repeats)])
    )
    for name, value in results.items():
        print(f"{name:>32}: {value:>12,.0f} user-steps/s")
    if not args.smoke:
        ratio = results["vector N=1024"] / results["bare numpy reference N=1024"]
        print(f"{'vector N=1024 / reference':>32}: {ratio:12.2f}")


if __name__ == "__main__":
    main()
