"""Simulator throughput of both backends: the native vector env at several batch sizes, the single env
(``gym.make``, wrappers included), and a bare numpy reference loop; for numba also the vector env with its
rows shared by ``--threads`` threads (``WorldConfig.threads``; batches of at least 512 users).

    python experiments/bench_env.py            # full run (a few minutes)
    python experiments/bench_env.py --smoke    # CI smoke mode (seconds)

Every case is timed ``--repeats`` times, the cases interleaved so that a busy spell of a shared machine hits
them alike. Printed: median user-steps per second over wall-clock time and over this process's CPU time (the
latter is less disturbed by other jobs on the machine), and each median's ratio to the bare numpy reference
measured in the same run; also the time of each backend's first step (numba: JIT compilation, or loading its
on-disk cache). The numba cases are skipped when numba is not installed. The objects built before timing are
frozen out of the garbage collector's reach (``gc.freeze()``), as a long-running trainer may do after set-up.
"""

from __future__ import annotations

import argparse
import gc
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import gymnasium as gym
import numpy as np

import recoworld  # noqa: F401
from recoworld import kernels

MIN_THREAD_ROWS = 256  # recoworld.kernels.step.MIN_THREAD_ROWS (not imported: numba may be absent)


@dataclass(frozen=True)
class Args:
    batch_sizes: tuple[int, ...] = (1, 64, 1024, 4096)
    threads: tuple[int, ...] = (2,)
    steps: int = 200
    single_steps: int = 3000
    reference_batch: int = 1024
    repeats: int = 5
    seed: int = 0
    smoke: bool = False


def parse_args() -> Args:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batch-sizes", type=int, nargs="+", default=list(Args.batch_sizes))
    p.add_argument("--threads", type=int, nargs="*", default=list(Args.threads))
    p.add_argument("--steps", type=int, default=Args.steps)
    p.add_argument("--single-steps", type=int, default=Args.single_steps)
    p.add_argument("--reference-batch", type=int, default=Args.reference_batch)
    p.add_argument("--repeats", type=int, default=Args.repeats)
    p.add_argument("--seed", type=int, default=Args.seed)
    p.add_argument("--smoke", action="store_true")
    a = p.parse_args()
    if a.smoke:
        return Args((1, 64, 512), (2,), 10, 50, reference_batch=64, repeats=1, seed=a.seed, smoke=True)
    return Args(
        tuple(a.batch_sizes), tuple(a.threads), a.steps, a.single_steps, a.reference_batch, a.repeats, a.seed
    )


@dataclass(frozen=True)
class Timing:
    user_steps: int
    wall_s: float
    cpu_s: float


def timed(run: Callable[[], int]) -> Timing:
    """Time ``run`` (which returns the number of user-steps it simulated) in wall-clock and CPU seconds."""
    wall, cpu = time.perf_counter(), time.process_time()
    n = run()
    return Timing(n, time.perf_counter() - wall, time.process_time() - cpu)


def random_slates(rng: np.random.Generator, n: int, c: int, k: int, count: int) -> list[np.ndarray]:
    """Pre-drawn random slates without repeats, so the agent costs nothing inside the timed loop (contiguous,
    as an agent's output)."""
    return [np.ascontiguousarray(np.argsort(rng.random((n, c)), axis=1)[:, :k]) for _ in range(count)]


def vector_case(n: int, kernel: str, args: Args, threads: int = 1) -> Callable[[], Timing]:
    envs = gym.make_vec(
        "RecoWorld-v0", num_envs=n, vectorization_mode="vector_entry_point", kernel=kernel, threads=threads
    )
    cfg = envs.config
    slates = random_slates(np.random.default_rng(args.seed), n, cfg.num_candidates, cfg.slate_size, 16)
    envs.reset(seed=args.seed)

    def run() -> int:
        for t in range(args.steps):
            envs.step(slates[t % 16])
        return n * args.steps

    return lambda: timed(run)


def single_case(kernel: str, args: Args) -> Callable[[], Timing]:
    env = gym.make("RecoWorld-v0", kernel=kernel)
    cfg = env.unwrapped.config
    slates = random_slates(np.random.default_rng(args.seed), 16, cfg.num_candidates, cfg.slate_size, 1)[0]
    env.reset(seed=args.seed)

    def run() -> int:
        for t in range(args.single_steps):
            _, _, terminated, truncated, _ = env.step(slates[t % 16])
            if terminated or truncated:
                env.reset()
        return args.single_steps

    return lambda: timed(run)


def reference_case(n: int, args: Args, num_items: int = 1000, num_topics: int = 20) -> Callable[[], Timing]:
    """A bare numpy loop doing only slate scoring and a cascade choice for ``n`` users."""
    rng = np.random.default_rng(args.seed)
    alpha = rng.dirichlet(np.full(num_topics, 0.1), num_items)
    position = -0.3 * np.log(np.arange(1, 11))

    def run() -> int:
        rho = rng.dirichlet(np.ones(num_topics), n)
        for _ in range(args.steps):
            slate = rng.integers(0, num_items, (n, 10))
            utility = np.log((rho[:, None, :] * alpha[slate]).sum(axis=2)) + position
            clicked = rng.random((n, 10)) < 1.0 / (1.0 + np.exp(-utility))
            rho = 0.99 * rho + 0.01 * (alpha[slate] * clicked[:, :, None]).sum(axis=1) / 10
        return n * args.steps

    return lambda: timed(run)


def first_step_seconds(kernel: str) -> float:
    """Wall time of a new env's reset and first step (numba: JIT compilation or loading the cache)."""
    start = time.perf_counter()
    env = gym.make("RecoWorld-v0", kernel=kernel)
    env.reset(seed=0)
    env.step(env.action_space.sample())
    return time.perf_counter() - start


def main() -> None:
    args = parse_args()
    backends = ["numba", "numpy"] if kernels.numba_available() else ["numpy"]
    print("config:", json.dumps(asdict(args) | {"backends": backends}))
    for kernel in reversed(backends):  # numpy first: it builds the (cached) world
        print(f"first step ({kernel}): {first_step_seconds(kernel):.2f} s")
    reference = f"bare numpy reference N={args.reference_batch}"
    cases = {}
    for kernel in backends:
        cases |= {f"{kernel} vector N={n}": vector_case(n, kernel, args) for n in args.batch_sizes}
        if kernel == "numba":
            cases |= {
                f"numba vector N={n} threads={t}": vector_case(n, kernel, args, t)
                for n in args.batch_sizes
                for t in args.threads
                if t > 1 and n >= 2 * MIN_THREAD_ROWS
            }
        cases[f"{kernel} single env"] = single_case(kernel, args)
    cases[reference] = reference_case(args.reference_batch, args)
    for case in cases.values():  # warm-up: first-touch allocations, caches
        case()
    # Like timeit, keep the cyclic garbage collector out of the timings: the set-up (numba's import alone
    # tracks about 90k objects) would otherwise make its full passes cost the single env up to 40% (measured
    # 13k vs 23k steps/s); gc.freeze() moves the set-up's objects out of the collector's reach.
    gc.collect()
    gc.freeze()
    timings: dict[str, list[Timing]] = {name: [] for name in cases}
    for _ in range(args.repeats):
        for name, case in cases.items():
            timings[name].append(case())
    wall = {name: float(np.median([t.user_steps / t.wall_s for t in ts])) for name, ts in timings.items()}
    cpu = {name: float(np.median([t.user_steps / t.cpu_s for t in ts])) for name, ts in timings.items()}
    print(f"{'user-steps/s (median)':>36}  {'wall':>11}  {'CPU':>11}  {'wall/ref':>8}  {'CPU/ref':>8}")
    for name in cases:
        print(
            f"{name:>36}  {wall[name]:>11,.0f}  {cpu[name]:>11,.0f}"
            f"  {wall[name] / wall[reference]:>8.2f}  {cpu[name] / cpu[reference]:>8.2f}"
        )


if __name__ == "__main__":
    main()
