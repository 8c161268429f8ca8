"""Claim (Li et al. 2023): a hierarchical agent that picks a novelty propensity per session beats the same low
level with a fixed propensity on session return when users' per-session novelty propensities vary strongly
(small ``novelty_kappa``), and is no worse when they do not (large ``novelty_kappa``).

    python experiments/agents_hrl.py                     # eta = 2: 2,000 users x 3 seeds x 2 kappas
    python experiments/agents_hrl.py --novelty-weight 1  # the default world (eta = 1)
    python experiments/agents_hrl.py --smoke             # CI smoke mode (seconds)

The world's novelty lean ``novelty_weight`` (eta) defaults to 2 here: at the package default eta = 1 a low
level told the true per-session propensity gains little (see docs/agents.md). For each kappa and seed every
agent is first trained online on ``--train-users`` users of a disjoint training seed (one episode each), then
evaluated (still learning) on the seed's users, paired across agents. Agents: ``hrl`` (decides at session
start and before every request, from the long-term summary and this session's novelty evidence), ``hrl``
deciding at session start only, the same low level with each constant propensity of ``--fixed-propensities``
(the comparator is the best of them per kappa, chosen on the evaluation users: a conservative choice), and —
to size the headroom — the same low level told the true per-session propensity by the simulator (``+p`` if nu
> 1/2 else ``-p``; not a competitor). Every agent serves the same probe as the first slate of a session.
Session return = watch minutes per session. Written into docs/agents.md unless --no-docs.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import agents_common as C  # noqa: E402

from recoworld.agents.hrl import DEFAULT_PROPENSITIES, HRLAgent  # noqa: E402  (torch is imported when an agent is built)


@dataclass(frozen=True)
class Args(C.CommonArgs):
    train_users: int = 2000
    kappas: tuple[float, ...] = (0.5, 50.0)
    novelty_weight: float = 2.0  # the world's eta (UserConfig.novelty_weight)
    fixed_propensities: tuple[float, ...] = (-0.5, 0.0, 0.5, 1.0)
    oracle_propensity: float = 2.0
    start_only: bool = True  # also run the high level that decides at session start only
    oracle: bool = True
    deterministic_eval: bool = False  # evaluate the HRL agents with their most probable high-level decision

    def smoke_args(self) -> Args:
        return replace(super().smoke_args(), train_users=16)


class OraclePropensity(HRLAgent):
    """The fixed low level, but its propensity is ±magnitude from the true ν in ``latent`` (a reference)."""

    name = "oracle_propensity"

    def __init__(self, *, magnitude: float, **kwargs):
        super().__init__(fixed_propensity=0.0, **kwargs)
        self.magnitude = float(magnitude)

    def propensity(self) -> np.ndarray:
        latent, g = self._last_obs["latent"], self._last_obs["topic_histogram"].shape[1]
        return np.where(latent[:, 2 * g] > 0.5, self.magnitude, -self.magnitude)

    def _act(self, obs):
        self._last_obs = obs
        return super()._act(obs)


def oracle_propensity_agent(seed: int, magnitude: float) -> OraclePropensity:
    return OraclePropensity(seed=seed, magnitude=magnitude)


def fixed_label(p: float) -> str:
    return f"fixed propensity {p:g}"


def variants(args: Args) -> list[tuple[str, object, dict, bool]]:
    """(label, registry name or factory, agent kwargs, reads the latent state)."""
    out = [("hrl", "hrl", {}, False)]
    if args.start_only:
        out.append(("hrl, session start only", "hrl", {"replan_every": None}, False))
    out += [(fixed_label(p), "hrl_fixed", {"propensity": p}, False) for p in args.fixed_propensities]
    if args.oracle:
        out.append(
            (
                f"oracle propensity ±{args.oracle_propensity:g} (reads ν)",
                oracle_propensity_agent,
                {"magnitude": args.oracle_propensity},
                True,
            )
        )
    return out


def flags(args: Args) -> str:
    """The command-line flags that reproduce ``args`` (those that differ from the defaults)."""
    out = " --deterministic-eval" if args.deterministic_eval else ""
    out += " --no-start-only" * (not args.start_only) + " --no-oracle" * (not args.oracle)
    for name in ("kappas", "fixed_propensities"):
        if getattr(args, name) != getattr(Args, name):
            out += f" --{name.replace('_', '-')} " + " ".join(f"{v:g}" for v in getattr(args, name))
    for name in ("novelty_weight", "oracle_propensity", "train_users", "users"):
        if getattr(args, name) != getattr(Args, name):
            out += f" --{name.replace('_', '-')} {getattr(args, name):g}"
    if args.seeds != Args.seeds:
        out += " --seeds " + " ".join(str(s) for s in args.seeds)
    return out


def best_fixed(results: dict[str, list[C.RunResult]], kappa: float, args: Args) -> str:
    """The label of the constant propensity with the highest mean session return at ``kappa``."""
    labels = [fixed_label(p) for p in args.fixed_propensities]
    return max(labels, key=lambda lb: C.pooled(results[f"{kappa:g}|{lb}"], "session_return").mean())


def main(argv: list[str] | None = None) -> dict:
    args = C.parse(Args, argv, __doc__)
    C.log_config(args, env="RecoWorld-v0")
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:
        raise SystemExit("this experiment needs torch: pip install recoworld[rl]") from None
    vs = variants(args)
    jobs = []
    for kappa in args.kappas:
        env_kwargs = {
            "horizon_days": args.horizon_days,
            "novelty_kappa": kappa,
            "novelty_weight": args.novelty_weight,
        }
        for seed in args.seeds:
            for label, agent, kw, latent in vs:
                jobs.append(
                    C.Job(
                        f"{kappa:g}|{label}",
                        seed,
                        agent,
                        args.users,
                        args.agent_seed + seed,
                        {**env_kwargs, "observe_latent": True} if latent else env_kwargs,
                        kw,
                        train_users=args.train_users,
                        deterministic_eval=args.deterministic_eval,
                    )
                )
    results = C.run_jobs(jobs, args.jobs)
    metrics = (("session_return", 2), ("watch", 1), ("day7", 3))
    rows, diff_rows, verdicts = [], [], {}
    for kappa in args.kappas:
        fixed = best_fixed(results, kappa, args)
        ref = results[f"{kappa:g}|{fixed}"]
        for label, *_ in vs:
            rs = results[f"{kappa:g}|{label}"]
            name = f"**{label}** (best constant)" if label == fixed else label
            rows.append([f"{kappa:g}", name, *C.metric_cells(rs, metrics), level_shares(rs)])
            if label == fixed or label.startswith("fixed"):
                continue
            d = C.paired(rs, ref, "session_return")
            rel = d[0] / C.mean_ci(C.pooled(ref, "session_return"))[0]
            if label.startswith("hrl"):
                verdicts[(kappa, label)] = d
            diff_rows.append(
                [
                    f"{kappa:g}",
                    f"{label} − {fixed}",
                    C.fmt_ci(*d, digits=2),
                    f"{100 * rel:+.1f}%",
                    C.fmt_ci(*C.paired(rs, ref, "watch"), digits=1),
                    C.fmt_ci(*C.paired(rs, ref, "day7"), digits=3),
                ]
            )
    table = C.markdown_table(
        [
            "κ",
            "agent",
            "session return (min)",
            "watch min / user",
            f"day-{args.horizon_days} retention",
            "high-level choices (share per level)",
        ],
        rows,
    )
    diffs = C.markdown_table(
        [
            "κ",
            "paired difference",
            "session return (95% CI)",
            "relative",
            "watch min / user",
            f"day-{args.horizon_days} retention",
        ],
        diff_rows,
    )
    kappas = ", ".join(f"{k:g}" for k in args.kappas)
    levels = ", ".join(f"{p:g}" for p in DEFAULT_PROPENSITIES)
    body = (
        f"Regenerate: `python experiments/agents_hrl.py{flags(args)}` — RecoWorld-v0, "
        f"novelty_weight η = {args.novelty_weight:g}, novelty_kappa ∈ {{{kappas}}}; per seed "
        f"({C.seeds_text(args)}) each agent trains online on {args.train_users} users of a disjoint seed, "
        f"then serves {args.users} evaluation users (paired, still learning). Session return = watch "
        f"minutes per session, per-user mean. High-level levels: {levels}. Every agent serves the probe "
        f"(half novel, half familiar) as a session's first slate; the comparator is the best constant "
        f"propensity per κ (in bold).\n\n{table}\n\nPaired differences against the best fixed-propensity "
        f"low level (95% CI):\n\n{diffs}\n"
    )
    key = "agents_hrl" + "_deterministic" * args.deterministic_eval + f"_eta{args.novelty_weight:g}"
    return C.finish(args, key, body, results=results, verdicts=verdicts)


def level_shares(results: list[C.RunResult]) -> str:
    """Share of high-level decisions per level, training and evaluation ("–" without a high level)."""
    counts = [r.extra["stats"].get("level_counts") for r in results]
    if any(c is None for c in counts) or not results[0].policy.split("|")[1].startswith("hrl"):
        return "–"
    total = np.sum(counts, axis=0)
    return " / ".join(f"{x:.2f}" for x in total / max(total.sum(), 1))


if __name__ == "__main__":
    main()
