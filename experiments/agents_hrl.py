"""Claim (Li et al. 2023): a hierarchical agent that picks a novelty propensity per session beats the same low
level with a fixed propensity on session return when users' per-session novelty propensities vary strongly
(small ``novelty_kappa``), and is no worse when they do not (large ``novelty_kappa``).

    python experiments/agents_hrl.py                     # 2,000 users x 3 seeds x 2 kappas (about 40 minutes)
    python experiments/agents_hrl.py --novelty-weight 2  # the world with a stronger novelty lean
    python experiments/agents_hrl.py --smoke             # CI smoke mode (seconds)

For each kappa and seed every agent is first trained online on ``--train-users`` users of a disjoint training
seed (one episode each), then evaluated (still learning) on the seed's users, paired across agents. Agents:
``hrl`` (high level at session start), ``hrl`` re-deciding before every request (``replan_every=1``), the
fixed-propensity low level (``hrl_fixed``), and — to size the headroom — the same low level told the true
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

from recoworld.agents.hrl import HRLAgent  # noqa: E402  (torch is imported when an agent is built)


@dataclass(frozen=True)
class Args(C.CommonArgs):
    train_users: int = 2000
    kappas: tuple[float, ...] = (0.5, 50.0)
    novelty_weight: float = 1.0  # the world's eta (UserConfig.novelty_weight)
    fixed_propensity: float = 0.0
    oracle_propensity: float = 1.0
    replan: bool = True
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


def variants(args: Args) -> list[tuple[str, object, dict, bool]]:
    """(label, registry name or factory, agent kwargs, reads the latent state)."""
    out = [("hrl", "hrl", {}, False)]
    if args.replan:
        out.append(("hrl, replan every request", "hrl", {"replan_every": 1}, False))
    out.append(
        (
            f"fixed propensity {args.fixed_propensity:g}",
            "hrl_fixed",
            {"propensity": args.fixed_propensity},
            False,
        )
    )
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
    out += " --no-replan" * (not args.replan) + " --no-oracle" * (not args.oracle)
    if args.kappas != Args.kappas:
        out += " --kappas " + " ".join(f"{k:g}" for k in args.kappas)
    for name in ("novelty_weight", "oracle_propensity", "train_users"):
        if getattr(args, name) != getattr(Args, name):
            out += f" --{name.replace('_', '-')} {getattr(args, name):g}"
    return out


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
    fixed = vs[1 + args.replan][0]
    metrics = (("session_return", 2), ("watch", 1), ("day7", 3))
    rows, diff_rows, verdicts = [], [], {}
    for kappa in args.kappas:
        ref = results[f"{kappa:g}|{fixed}"]
        for label, *_ in vs:
            rs = results[f"{kappa:g}|{label}"]
            rows.append([f"{kappa:g}", label, *C.metric_cells(rs, metrics), level_shares(rs)])
            if label == fixed:
                continue
            d = C.paired(rs, ref, "session_return")
            rel = d[0] / C.mean_ci(C.pooled(ref, "session_return"))[0]
            if label.startswith("hrl"):
                verdicts[(kappa, label)] = d
            diff_rows.append(
                [f"{kappa:g}", f"{label} − {fixed}", C.fmt_ci(*d, digits=2), f"{100 * rel:+.1f}%"]
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
    diffs = C.markdown_table(["κ", "paired difference", "session return (95% CI)", "relative"], diff_rows)
    kappas = ", ".join(f"{k:g}" for k in args.kappas)
    body = (
        f"Regenerate: `python experiments/agents_hrl.py{flags(args)}` — RecoWorld-v0, "
        f"novelty_weight η = {args.novelty_weight:g}, novelty_kappa ∈ {{{kappas}}}; per seed "
        f"({C.seeds_text(args)}) each agent trains online on {args.train_users} users of a disjoint seed, "
        f"then serves {args.users} evaluation users (paired, still learning). Session return = watch "
        f"minutes per session, per-user mean.\n\n{table}\n\nPaired differences against the fixed-propensity "
        f"low level (95% CI):\n\n{diffs}\n"
    )
    key = "agents_hrl" + "_deterministic" * args.deterministic_eval + f"_eta{args.novelty_weight:g}"
    return C.finish(args, key, body, results=results, verdicts=verdicts)


def level_shares(results: list[C.RunResult]) -> str:
    """Share of high-level decisions per level, training and evaluation ("–" without a high level)."""
    counts = [r.extra["stats"].get("level_counts") for r in results]
    if any(c is None for c in counts) or results[0].policy.split("|")[1].startswith(("fixed", "oracle")):
        return "–"
    total = np.sum(counts, axis=0)
    return " / ".join(f"{x:.2f}" for x in total / max(total.sum(), 1))


if __name__ == "__main__":
    main()
