"""Throughput of the LLM user simulator: user decisions per second (one user's response to one 10-item slate)
in
full mode (scoring and generation styles) and hybrid mode, in-process (transformers, embedded SmolLM2-135M)
and
through a llama.cpp OpenAI-compatible server serving the same GGUF, started by this script on a free local
port.

Decisions are timed through the real batched simulator (``recoworld.envs.core.Simulator``) with a random
policy,
after ``--warmup`` untimed requests; the item-line cache is filled first (``--warm-items``, timed separately).

    python experiments/bench_llm_user.py                      # everything
    python experiments/bench_llm_user.py --backends inprocess --modes full-score
    python experiments/bench_llm_user.py --smoke              # seconds; what CI runs
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import asdict, dataclass

import numpy as np

MODES = ("full-score", "full-score-contrast", "full-generate", "hybrid")
BACKENDS = ("inprocess", "server")


@dataclass
class Args:
    backends: str = "inprocess,server"
    modes: str = "full-score,full-generate,hybrid"
    users: str = "32"  # users answered per request (the batch); comma-separated sizes run one after another
    steps: int = 3  # timed requests per user
    min_decisions: int = 0  # time at least this many decisions (more requests for small batches)
    max_batch: int = 64  # users per backend call (LLMUserConfig.max_batch)
    warmup: int = 1  # untimed requests first (fills the persona/memory caches)
    hybrid_steps: int = 40  # hybrid mode is cheap: time more requests
    threads: int = 1  # torch threads in-process / llama.cpp threads; 1 is fastest on a shared, loaded CPU
    dtype: str = "auto"
    device: str = "cpu"  # in-process: cpu, cuda, auto
    model: str | None = None  # in-process: a model directory or .gguf file (default: the embedded SmolLM2)
    warm_items: bool = True
    server_concurrency: int = 1
    seed: int = 0
    out: str | None = None
    smoke: bool = False


def parse_args(argv: list[str] | None = None) -> Args:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    d = Args()
    p.add_argument("--backends", default=d.backends, help=f"comma-separated subset of {BACKENDS}")
    p.add_argument("--modes", default=d.modes, help=f"comma-separated subset of {MODES}")
    p.add_argument("--users", default=d.users, help="batch size(s), e.g. 1,16,64,256")
    p.add_argument("--steps", type=int, default=d.steps)
    p.add_argument("--min-decisions", type=int, default=d.min_decisions)
    p.add_argument("--max-batch", type=int, default=d.max_batch)
    p.add_argument("--warmup", type=int, default=d.warmup)
    p.add_argument("--hybrid-steps", type=int, default=d.hybrid_steps)
    p.add_argument("--threads", type=int, default=d.threads)
    p.add_argument("--dtype", default=d.dtype)
    p.add_argument("--device", default=d.device)
    p.add_argument("--model", default=d.model)
    p.add_argument("--no-warm-items", dest="warm_items", action="store_false")
    p.add_argument("--server-concurrency", type=int, default=d.server_concurrency)
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--out", default=d.out)
    p.add_argument("--smoke", action="store_true")
    a = Args(**vars(p.parse_args(argv)))
    for name, allowed in (("backends", BACKENDS), ("modes", MODES)):
        bad = set(getattr(a, name).split(",")) - set(allowed)
        if bad:
            p.error(f"--{name}: unknown {sorted(bad)}; choose from {allowed}")
    try:
        sizes = [int(u) for u in a.users.split(",")]
    except ValueError:
        sizes = []
    if not sizes or min(sizes) < 1:
        p.error(f"--users: expected positive integers separated by commas, got {a.users!r}")
    if a.smoke:
        a.users, a.steps, a.warmup, a.hybrid_steps, a.warm_items = "2", 1, 1, 2, False
        a.backends = "inprocess"
    return a


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(gguf: str, threads: int) -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--model", gguf, "--host", "127.0.0.1",
         "--port", str(port), "--n_ctx", "2048", "--n_threads", str(threads), "--n_batch", "512"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"llama_cpp.server exited with code {proc.returncode}")
        try:
            with urllib.request.urlopen(url + "/v1/models", timeout=2):
                return proc, url
        except OSError:
            time.sleep(0.5)
    proc.kill()
    raise RuntimeError("llama_cpp.server did not start within 180 s")


def bench_one(backend, mode: str, users: int, args: Args) -> dict:
    from recoworld.config import WorldConfig
    from recoworld.envs.core import Simulator
    from recoworld.users.llm import make_llm_user_model
    from recoworld.users.synthetic import SyntheticUserModel

    full = mode.startswith("full")
    style = "generate" if mode == "full-generate" else "score"
    extra = {"contrast": True} if mode == "full-score-contrast" else {}

    def factory(world, cfg, streams):
        return make_llm_user_model(
            SyntheticUserModel(world, cfg, streams),
            mode="full" if full else "hybrid",
            style=style,
            backend=backend,
            max_batch=args.max_batch,
            **extra,
        )

    sim = Simulator(WorldConfig(world_seed=args.seed), users, user_model=factory)
    warm_s = 0.0
    if args.warm_items and full:
        t = time.perf_counter()
        n = sim.users.warm_items()
        warm_s = time.perf_counter() - t
        print(f"  item cache: {n} lines in {warm_s:.1f}s", flush=True)
    sim.reset(np.arange(users), args.seed * 100_003 + np.arange(users))
    rng = np.random.default_rng(args.seed)
    cfg = sim.config

    def step() -> None:
        action = np.stack([rng.permutation(cfg.num_candidates)[: cfg.slate_size] for _ in range(users)])
        slates, rep = sim.validate(action)
        res = sim.step(slates, rep)
        done = res.terminated | res.truncated
        if done.any():
            sim.next_episode(np.flatnonzero(done))

    for _ in range(args.warmup):
        step()
    before = sim.users.llm_stats()
    steps = max(args.steps if full else args.hybrid_steps, -(-args.min_decisions // users))
    t = time.perf_counter()
    for _ in range(steps):
        step()
    elapsed = time.perf_counter() - t
    after = sim.users.llm_stats()
    delta = {k: after[k] - before[k] for k in after}
    decisions = users * steps
    return {
        "users": users,
        "decisions": decisions,
        "seconds": round(elapsed, 3),
        "decisions_per_s": round(decisions / elapsed, 2),
        "item_cache_seconds": round(warm_s, 1),
        "llm_calls": delta["llm_calls"],
        "prompt_tokens_per_decision": round(delta["llm_prompt_tokens"] / decisions, 1),
        "reused_tokens_per_decision": round(delta["llm_reused_tokens"] / decisions, 1),
        "completion_tokens_per_decision": round(delta["llm_completion_tokens"] / decisions, 2),
        "failures": delta["llm_failures"],
        "parse_failures": delta["llm_parse_failures"],
        "load_avg_1min": round(os.getloadavg()[0], 2),
    }


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from recoworld.users.llm import embedded_model_path, make_backend

    print("config:", json.dumps(asdict(args)), flush=True)
    print(f"cpus: {os.cpu_count()}, load average at start: {os.getloadavg()}", flush=True)
    results: dict = {"config": asdict(args), "cpus": os.cpu_count(), "results": {}}
    modes = args.modes.split(",")
    for which in args.backends.split(","):
        proc = None
        t0 = time.perf_counter()
        if which == "inprocess":
            backend = make_backend(
                model_path=args.model, device=args.device, threads=args.threads, dtype=args.dtype
            )
        else:
            try:
                proc, url = start_server(str(args.model or embedded_model_path()), args.threads)
            except Exception as exc:  # noqa: BLE001 - report and go on with the other backends
                print(f"server: skipped ({exc})", flush=True)
                results["results"]["server"] = {"skipped": str(exc)}
                continue
            backend = make_backend(base_url=url, concurrency=args.server_concurrency)
        print(f"{which}: {backend!r} ready in {time.perf_counter() - t0:.1f}s", flush=True)
        try:
            for mode in modes:
                if which == "server" and mode == "full-score-contrast":
                    continue
                for users in (int(u) for u in args.users.split(",")):
                    r = bench_one(backend, mode, users, args)
                    results["results"][f"{which}/{mode}/{users}"] = r
                    print(f"  {which}/{mode}/{users}: {r}", flush=True)
        finally:
            backend.close()
            if proc is not None:
                proc.terminate()
                proc.wait(timeout=30)
    if args.out:
        with open(args.out, "w") as fh:
            json.dump(results, fh, indent=2)
    return results


if __name__ == "__main__":
    main(sys.argv[1:])
