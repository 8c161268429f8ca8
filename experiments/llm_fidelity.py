"""Fidelity of the LLM user simulator: do the LLM's clicks follow the users' true (latent) preferences?

A batch of simulated users is served random slates from the environment's retrieval candidates (a random
policy,
so that every slate mixes liked and unliked items) through the real batched simulator with the LLM user in
full
mode. For every shown item we record the user's true affinity ρ_u · α_i (latent ground truth, read before the
slate is answered) and the ground-truth utility; the AUC of clicked vs skipped items under that score says how
well
the LLM's decisions rank items the way the latent user would (0.5: unrelated; the synthetic user's own AUC
under the
same protocol is printed as the reference). Hybrid mode is also run to measure how often the LLM-written
instruction texts state the synthetic target (type and topic) that the parser can read back.

    python experiments/llm_fidelity.py                       # embedded SmolLM2-135M, in-process
    python experiments/llm_fidelity.py --contrast            # with persona-vs-neutral calibration
    python experiments/llm_fidelity.py --model ~/models/Qwen2.5-1.5B-Instruct
    python experiments/llm_fidelity.py --base-url http://127.0.0.1:8000 --style generate
    python experiments/llm_fidelity.py --smoke               # seconds; what CI runs
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import asdict, dataclass

import numpy as np


# ----------------------------------------------------------------------------------------------------
# arguments
@dataclass
class Args:
    model: str | None = None  # local HF model directory or .gguf file (default: the embedded SmolLM2)
    base_url: str | None = None  # an OpenAI-compatible server instead of in-process
    style: str = "score"  # full-mode decision style: score | generate
    contrast: bool = False  # persona-vs-neutral calibration (score style)
    temperature: float = 0.5  # decision temperature (LLMUserConfig.temperature)
    users: int = 48
    steps: int = 4  # slates per user
    hybrid_steps: int = 40  # steps of the hybrid run (instruction texts)
    seed: int = 0
    threads: int | None = None
    dtype: str = "auto"
    out: str | None = None  # write the results as JSON here
    smoke: bool = False


def parse_args(argv: list[str] | None = None) -> Args:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    d = Args()
    p.add_argument("--model", default=d.model)
    p.add_argument("--base-url", default=d.base_url)
    p.add_argument("--style", choices=("score", "generate"), default=d.style)
    p.add_argument("--contrast", action="store_true")
    p.add_argument("--temperature", type=float, default=d.temperature)
    p.add_argument("--users", type=int, default=d.users)
    p.add_argument("--steps", type=int, default=d.steps)
    p.add_argument("--hybrid-steps", type=int, default=d.hybrid_steps)
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--threads", type=int, default=d.threads)
    p.add_argument("--dtype", default=d.dtype)
    p.add_argument("--out", default=d.out)
    p.add_argument("--smoke", action="store_true")
    a = Args(**vars(p.parse_args(argv)))
    if a.smoke:
        a.users, a.steps, a.hybrid_steps = 4, 2, 3
    return a


def auc(pos: np.ndarray, neg: np.ndarray) -> float:
    """P(score of a positive > score of a negative), ties counted half; NaN when a side is empty."""
    pos, neg = np.asarray(pos, float), np.asarray(neg, float)
    if len(pos) == 0 or len(neg) == 0:
        return float("nan")
    allv = np.concatenate([pos, neg])
    order = np.argsort(allv, kind="mergesort")
    ranks = np.empty(len(allv))
    sorted_v = allv[order]
    # average ranks for ties
    i = 0
    while i < len(allv):
        j = i
        while j + 1 < len(allv) and sorted_v[j + 1] == sorted_v[i]:
            j += 1
        ranks[order[i : j + 1]] = 0.5 * (i + j) + 1.0
        i = j + 1
    return float((ranks[: len(pos)].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


def run_policy(sim, steps: int, seed: int) -> dict[str, np.ndarray]:
    """Serve random slates for ``steps`` requests; record clicks and ground truth of every shown item."""
    from recoworld.users.llm.model import LLMUserModel

    rng = np.random.default_rng(seed)
    users = sim.users
    base = users.base if isinstance(users, LLMUserModel) else users
    cfg = sim.config
    rec: dict[str, list] = {"affinity": [], "utility": [], "clicked": [], "liked": [], "left": []}
    for _ in range(steps):
        action = np.stack(
            [rng.permutation(cfg.num_candidates)[: cfg.slate_size] for _ in range(sim.batch_size)]
        )
        slates, replaced = sim.validate(action)
        items = np.take_along_axis(sim.candidates, slates, axis=1)
        rec["affinity"].append(np.einsum("rf,rkf->rk", base.rho, sim.catalog.alpha[items]))
        res = sim.step(slates, replaced)
        rec["utility"].append(res.info["true_utility"])
        rec["clicked"].append(res.info["clicked"])
        rec["liked"].append(res.info["liked"])
        rec["left"].append(res.info["left"])
        done = res.terminated | res.truncated
        if done.any():
            sim.next_episode(np.flatnonzero(done))
    return {k: np.concatenate(v) for k, v in rec.items()}


def summarise(rec: dict[str, np.ndarray]) -> dict[str, float]:
    c = rec["clicked"].astype(bool)
    return {
        "decisions": int(c.shape[0]),
        "click_rate": float(c.mean()),
        "like_rate": float(rec["liked"].mean()),
        "leave_rate": float(rec["left"].mean()),
        "auc_affinity": auc(rec["affinity"][c], rec["affinity"][~c]),
        "auc_utility": auc(rec["utility"][c], rec["utility"][~c]),
    }


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    # seeding: every random number comes from the world seed, the reset seeds and the policy's generator
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from recoworld.config import WorldConfig
    from recoworld.envs.core import Simulator
    from recoworld.users.llm import make_backend, make_llm_user_model
    from recoworld.users.synthetic import SyntheticUserModel

    print("config:", json.dumps(asdict(args)), flush=True)
    t0 = time.perf_counter()
    backend = make_backend(
        model_path=args.model,
        base_url=args.base_url,
        threads=args.threads,
        **({} if args.base_url else {"dtype": args.dtype}),
    )
    print(f"backend: {backend!r} ({time.perf_counter() - t0:.1f}s)", flush=True)
    config = WorldConfig(world_seed=args.seed)
    seeds = args.seed * 100_003 + np.arange(args.users)
    results: dict = {"config": asdict(args), "backend": repr(backend)}

    # reference: the synthetic user under the same protocol
    sim = Simulator(config, args.users)
    sim.reset(np.arange(args.users), seeds)
    results["synthetic"] = summarise(run_policy(sim, args.steps, args.seed))
    print("synthetic:", results["synthetic"], flush=True)

    # the LLM in full mode
    def factory(world, cfg, streams):
        return make_llm_user_model(
            SyntheticUserModel(world, cfg, streams),
            mode="full",
            style=args.style,
            backend=backend,
            contrast=args.contrast,
            temperature=args.temperature,
        )

    sim = Simulator(config, args.users, user_model=factory)
    sim.reset(np.arange(args.users), seeds)
    t1 = time.perf_counter()
    rec = run_policy(sim, args.steps, args.seed)
    elapsed = time.perf_counter() - t1
    results["llm_full"] = summarise(rec) | {
        "seconds": elapsed,
        "decisions_per_s": rec["clicked"].shape[0] / elapsed,
    }
    results["llm_full_stats"] = sim.users.llm_stats()
    print("llm full:", results["llm_full"], flush=True)

    # the LLM in hybrid mode: instruction texts vs the synthetic targets
    def hybrid(world, cfg, streams):
        return make_llm_user_model(SyntheticUserModel(world, cfg, streams), mode="hybrid", backend=backend)

    sim = Simulator(config, args.users, user_model=hybrid)
    sim.reset(np.arange(args.users), seeds)
    run_policy(sim, args.hybrid_steps, args.seed)
    st = sim.users.llm_stats()
    n = max(1, st["llm_instructions"])
    results["llm_hybrid"] = {
        "instructions": st["llm_instructions"],
        "llm_texts": st["llm_instruction_texts"],
        "target_recovered": st["llm_instruction_target_recovered"] / n,
        "target_agrees": st["llm_instruction_target_agrees"] / n,
        "summaries": st["llm_summaries"],
        "summary_fallbacks": st["llm_summary_fallbacks"],
    }
    print("llm hybrid:", results["llm_hybrid"], flush=True)
    if args.out:
        with open(args.out, "w") as fh:
            json.dump(results, fh, indent=2, default=float)
    return results


if __name__ == "__main__":
    main(sys.argv[1:])
