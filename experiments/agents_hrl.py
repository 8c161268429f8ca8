"""Claim (Li et al. 2023): a hierarchical agent that picks a novelty propensity per session beats the same low
level with a fixed propensity on session return when users' per-session novelty propensities vary strongly
(small ``novelty_kappa``), and is no worse when they do not (large ``novelty_kappa``).

    python experiments/agents_hrl.py                     # 2,000 users x 3 seeds x 2 kappas (about 30 minutes)
    python experiments/agents_hrl.py --smoke             # CI smoke mode (seconds)

For each kappa and seed every agent is first trained online on ``--train-users`` users of a disjoint training
seed (one episode each), then evaluated (still learning) on the seed's users, paired across agents. Agents:
``hrl`` (high level at session start), ``hrl`` re-deciding after every request (``replan_every=1``), the fixed
propensity 0 low level (``hrl_fixed``), and — to size the headroom — the same low level told the true
per-session propensity ν by the simulator (``+p`` if ν > 1/2 else ``−p``; not a competitor).
Session return = watch minutes per session. Written into docs/agents.md unless --no-docs.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import agents_common as C  # noqa: E402

TRAIN_SEED_OFFSET = 100


@dataclass(frozen=True)
class Args:
    users: int = 2000
    train_users: int = 2000
    seeds: tuple[int, ...] = (0, 1, 2)
    kappas: tuple[float, ...] = (0.5, 50.0)
    fixed_propensity: float = 0.0
    oracle_propensity: float = 1.0
    replan: bool = True
    oracle: bool = True
    deterministic_eval: bool = False  # evaluate the HRL agents with their most probable high-level decision
    agent_seed: int = 0
    horizon_days: int = 7
    no_docs: bool = False
    smoke: bool = False


def smoke(args: Args) -> Args:
    return replace(args, users=16, train_users=16, seeds=(0,), horizon_days=1, no_docs=True)


def oracle_propensity_agent(seed: int, magnitude: float):
    """The fixed low level, but its propensity is ±magnitude from the true ν in ``latent`` (a reference)."""
    from recoworld.agents.hrl import HRLAgent

    class OraclePropensity(HRLAgent):
        name = "oracle_propensity"

        def propensity(self) -> np.ndarray:
            lat = self._last_obs["latent"]
            g = self._last_obs["topic_histogram"].shape[1]
            return np.where(lat[:, 2 * g] > 0.5, magnitude, -magnitude)

        def _act(self, obs):
            self._last_obs = obs
            return super()._act(obs)

    return OraclePropensity(seed=seed, fixed_propensity=0.0)


def agents(args: Args, env_kwargs: dict, seed: int) -> list[tuple[str, object, dict]]:
    s = args.agent_seed + seed
    out = [
        ("hrl", C.build("hrl", env_kwargs, s), env_kwargs),
        (
            f"fixed propensity {args.fixed_propensity:g}",
            C.build("hrl_fixed", env_kwargs, s, propensity=args.fixed_propensity),
            env_kwargs,
        ),
    ]
    if args.replan:
        out.insert(
            1, ("hrl, replan every request", C.build("hrl", env_kwargs, s, replan_every=1), env_kwargs)
        )
    if args.oracle:
        out.append(
            (
                "oracle propensity (reads ν)",
                oracle_propensity_agent(s, args.oracle_propensity),
                {**env_kwargs, "observe_latent": True},
            )
        )
    return out


def flags(args: Args) -> str:
    """The command-line flags that reproduce ``args`` (those that differ from the defaults)."""
    out = " --deterministic-eval" if args.deterministic_eval else ""
    out += " --no-replan" * (not args.replan) + " --no-oracle" * (not args.oracle)
    if args.kappas != Args.kappas:
        out += " --kappas " + " ".join(f"{k:g}" for k in args.kappas)
    return out


def main(argv: list[str] | None = None) -> dict:
    args = C.parse(Args, argv, __doc__, smoke)
    C.log_config(args, env="RecoWorld-v0")
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:
        raise SystemExit("this experiment needs torch: pip install recoworld[rl]") from None
    all_results: dict[float, dict[str, list[C.RunResult]]] = {}
    for kappa in args.kappas:
        env_kwargs = {"horizon_days": args.horizon_days, "novelty_kappa": kappa}
        results: dict[str, list[C.RunResult]] = {}
        for seed in args.seeds:
            for label, agent, kw in agents(args, env_kwargs, seed):
                C.run_agent(agent, args.train_users, TRAIN_SEED_OFFSET + seed, kw, label=label)
                if args.deterministic_eval and hasattr(agent, "deterministic"):
                    agent.deterministic = True
                r = C.run_agent(agent, args.users, seed, kw, label=label)
                results.setdefault(label, []).append(r)
                print(
                    f"kappa {kappa:g} seed {seed} {label:30s} session return {r.session_return.mean():6.2f} "
                    f"watch {r.watch.mean():7.1f} day7 {r.day7.mean():.3f} ({r.seconds:.0f}s)",
                    flush=True,
                )
        all_results[kappa] = results

    rows, diff_rows, verdicts = [], [], {}
    fixed = f"fixed propensity {args.fixed_propensity:g}"
    for kappa, results in all_results.items():
        for label, rs in results.items():
            rows.append(
                [f"{kappa:g}", label]
                + [
                    C.fmt_ci(*C.mean_ci(C.pooled(rs, m)), digits=d)
                    for m, d in (("session_return", 2), ("watch", 1), ("day7", 3))
                ]
            )
        for label in results:
            if label == fixed:
                continue
            d = C.paired(results[label], results[fixed], "session_return")
            rel = d[0] / C.mean_ci(C.pooled(results[fixed], "session_return"))[0]
            if label.startswith("hrl"):
                verdicts[(kappa, label)] = d
            diff_rows.append(
                [f"{kappa:g}", f"{label} − {fixed}", C.fmt_ci(*d, digits=2), f"{100 * rel:+.1f}%"]
            )
    table = C.markdown_table(
        ["κ", "agent", "session return (min)", "watch min / user", f"day-{args.horizon_days} retention"], rows
    )
    diffs = C.markdown_table(["κ", "paired difference", "session return (95% CI)", "relative"], diff_rows)
    seeds = ", ".join(str(s) for s in args.seeds)
    body = (
        f"Regenerate: `python experiments/agents_hrl.py{flags(args)}` — RecoWorld-v0, default world, "
        f"novelty_kappa ∈ "
        f"{{{', '.join(f'{k:g}' for k in args.kappas)}}}; per seed ({seeds}) each agent trains online on "
        f"{args.train_users} users of a disjoint seed, then serves {args.users} evaluation users "
        "(paired, still "
        f"learning). Session return = watch minutes per session, per-user mean.\n\n{table}\n\n"
        f"Paired differences against the fixed-propensity low level (95% CI):\n\n{diffs}\n"
    )
    print(body)
    if not args.no_docs:
        C.write_section("agents_hrl_deterministic" if args.deterministic_eval else "agents_hrl", body)
    return {"results": all_results, "verdicts": verdicts, "markdown": body}


if __name__ == "__main__":
    main()
