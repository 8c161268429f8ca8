"""HYDRA generation time and memory for the reference configurations.

    python experiments/bench_hydra.py            # 6,000 x 5,000 and 31,500 x 12,296 (f = 64), a few minutes
    python experiments/bench_hydra.py --smoke    # CI smoke mode (seconds)

For each size prints the median wall time of ``generate`` over ``--repeats`` runs (latents plus realisation),
the time of the latents alone (``realise=False``), the world's statistics, and the peak of traced numpy/Python
memory during one extra run (tracemalloc); the process's maximum resident set size is printed at the end.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import time
import tracemalloc
from dataclasses import asdict, dataclass, replace

import numpy as np

from recoworld.generators.hydra import HydraConfig, generate, gini


@dataclass(frozen=True)
class Args:
    sizes: tuple[tuple[int, int, int], ...] = ((6000, 5000, 64), (31500, 12296, 64))
    repeats: int = 3
    chunk_size: int = 1024
    seed: int = 0
    smoke: bool = False


def parse_args() -> Args:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", type=int, nargs=3, action="append", metavar=("USERS", "ITEMS", "ATTRS"))
    p.add_argument("--repeats", type=int, default=Args.repeats)
    p.add_argument("--chunk-size", type=int, default=Args.chunk_size)
    p.add_argument("--seed", type=int, default=Args.seed)
    p.add_argument("--smoke", action="store_true")
    a = p.parse_args()
    if a.smoke:
        return Args(((300, 250, 16), (600, 500, 64)), 1, a.chunk_size, a.seed, smoke=True)
    sizes = tuple(tuple(s) for s in a.size) if a.size else Args.sizes
    return Args(sizes, max(1, a.repeats), a.chunk_size, a.seed, False)


def timed(config: HydraConfig, seed: int, realise: bool) -> float:
    start = time.perf_counter()
    generate(config, seed, realise=realise)
    return time.perf_counter() - start


def main() -> None:
    args = parse_args()
    print("args:", json.dumps(asdict(args)))
    print(f"python {platform.python_version()}, numpy {np.__version__}, {platform.machine()}")
    for n, m, f in args.sizes:
        config = HydraConfig(num_users=n, num_items=m, num_attrs=f, chunk_size=args.chunk_size)
        print("config:", json.dumps(asdict(config), default=str))
        full = [timed(config, args.seed + r, True) for r in range(args.repeats)]
        latents = [timed(config, args.seed + r, False) for r in range(args.repeats)]
        tracemalloc.start()
        world = generate(config, args.seed)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        if args.smoke:  # the chunk size bounds memory and never changes the output
            assert np.array_equal(generate(replace(config, chunk_size=7), args.seed).indices, world.indices)
        print(
            f"{n:>6} x {m:<6} f={f:<3} generate median {statistics.median(full):7.2f} s "
            f"(latents only {statistics.median(latents):6.2f} s, {args.repeats} runs) | "
            f"nnz {world.num_interactions:,} density {world.density:.5f} active {world.active_density:.5f} "
            f"coverage {world.item_coverage:.3f} gini users {gini(world.user_degrees()):.3f} "
            f"items {gini(world.item_degrees()):.3f} | traced peak {peak / 2**20:8.1f} MiB"
        )
    print(f"max RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
