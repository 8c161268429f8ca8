"""Claim (Eide, Leslie & Frigessi): in-slate Thompson sampling is at least on par with its greedy counterpart
(posterior mean) on click-through rate and gives more diverse slates.

    python experiments/agents_inslate.py                 # 2,000 users x 3 seeds (about 15 minutes on 2 cores)
    python experiments/agents_inslate.py --smoke         # CI smoke mode (seconds)

Pairs compared (same model, same users): the defaults (``diversity=1``: both fill slates after a
topic-diversity
re-ranking) and the paper's plain setting (``diversity=0``) with the posterior as is (``scale=1``) and
inflated
(``scale=--inflated-scale``, more exploration). Written into docs/agents.md unless --no-docs.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import agents_common as C  # noqa: E402


@dataclass(frozen=True)
class Args:
    users: int = 2000
    seeds: tuple[int, ...] = (0, 1, 2)
    inflated_scale: float = 30.0
    agent_seed: int = 0
    horizon_days: int = 7
    no_docs: bool = False
    smoke: bool = False


def smoke(args: Args) -> Args:
    return replace(args, users=16, seeds=(0,), horizon_days=1, no_docs=True)


def variants(args: Args) -> list[tuple[str, str, dict]]:
    """(label, registry name, kwargs); TS variants are paired with the greedy one of the same setting."""
    return [
        ("greedy, diversity=1", "inslate_greedy", {"diversity": 1.0}),
        ("TS, diversity=1", "inslate_ts", {"diversity": 1.0}),
        ("greedy, diversity=0", "inslate_greedy", {"diversity": 0.0}),
        ("TS, diversity=0", "inslate_ts", {"diversity": 0.0}),
        (
            f"TS, diversity=0, scale={args.inflated_scale:g}",
            "inslate_ts",
            {"diversity": 0.0, "scale": args.inflated_scale},
        ),
    ]


PAIRS = ((1, 0), (3, 2), (4, 2))


def main(argv: list[str] | None = None) -> dict:
    args = C.parse(Args, argv, __doc__, smoke)
    env_kwargs = {"horizon_days": args.horizon_days}
    C.log_config(args, env="RecoWorld-v0", env_kwargs=env_kwargs)
    vs = variants(args)
    results: dict[str, list[C.RunResult]] = {v[0]: [] for v in vs}
    for seed in args.seeds:
        for label, name, kw in vs:
            agent = C.build(name, env_kwargs, args.agent_seed + seed, **kw)
            r = C.run_agent(agent, args.users, seed, env_kwargs, label=label)
            results[label].append(r)
            print(
                f"seed {seed} {label:32s} ctr {r.ctr.mean():.3f} div {r.diversity.mean():.3f} "
                f"watch {r.watch.mean():7.1f} day7 {r.day7.mean():.3f} ({r.seconds:.0f}s)",
                flush=True,
            )
    rows = []
    for label, _, _ in vs:
        rs = results[label]
        rows.append(
            [label]
            + [
                C.fmt_ci(*C.mean_ci(C.pooled(rs, m)), digits=d)
                for m, d in (("slate_ctr", 3), ("ctr", 3), ("diversity", 3), ("watch", 1), ("day7", 3))
            ]
        )
    table = C.markdown_table(
        [
            "agent",
            "slates clicked",
            "CTR (per examined slot)",
            "intra-slate diversity",
            "watch min / user",
            f"day-{args.horizon_days} retention",
        ],
        rows,
    )
    diff_rows, verdicts = [], []
    for i, j in PAIRS:
        a, b = results[vs[i][0]], results[vs[j][0]]
        sctr, ctr, div = C.paired(a, b, "slate_ctr"), C.paired(a, b, "ctr"), C.paired(a, b, "diversity")
        on_par = sctr[2] > 0  # the CI reaches zero or above: not significantly worse
        higher = div[1] > 0
        verdicts.append((on_par, higher))
        diff_rows.append(
            [
                f"{vs[i][0]} − {vs[j][0]}",
                C.fmt_ci(*sctr),
                C.fmt_ci(*ctr),
                C.fmt_ci(*div),
                "yes" if on_par else "**no**",
                "yes" if higher else "**no**",
            ]
        )
    diffs = C.markdown_table(
        [
            "paired difference",
            "slates clicked",
            "CTR (per slot)",
            "diversity",
            "click rate on par or better",
            "diversity higher",
        ],
        diff_rows,
    )
    seeds = ", ".join(str(s) for s in args.seeds)
    body = (
        f"Regenerate: `python experiments/agents_inslate.py` — RecoWorld-v0, default world, {args.users} "
        f"users × seeds {seeds}, paired; agents learn online from scratch. Per-user means: slates clicked "
        "(share of requests with at least one click — the paper's click rate), CTR per examined slot, "
        f"intra-slate diversity (1 − mean pairwise same-topic share per slate).\n\n{table}\n\n"
        f"Paired differences, TS − greedy (95% CI):\n\n{diffs}\n"
    )
    print(body)
    if not args.no_docs:
        C.write_section("agents_inslate", body)
    return {"results": results, "verdicts": verdicts, "markdown": body}


if __name__ == "__main__":
    main()
