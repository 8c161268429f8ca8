"""Claim (Eide, Leslie & Frigessi): in-slate Thompson sampling is at least on par with its greedy counterpart
(posterior mean) on click-through rate and gives more diverse slates.

    python experiments/agents_inslate.py                 # 2,000 users x 3 seeds (about 15 minutes on 2 cores)
    python experiments/agents_inslate.py --smoke         # CI smoke mode (seconds)

Pairs compared (same model, same users): the defaults (``diversity=1``: both fill slates after a
topic-diversity re-ranking) and the paper's plain setting (``diversity=0``) with the posterior as is
(``scale=1``) and inflated (``scale=--inflated-scale``, more exploration). Written into docs/agents.md
unless --no-docs.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import agents_common as C  # noqa: E402


@dataclass(frozen=True)
class Args(C.CommonArgs):
    inflated_scale: float = 30.0


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
    args = C.parse(Args, argv, __doc__)
    vs = variants(args)
    results = C.run_variants(args, vs)
    metrics = (("slate_ctr", 3), ("ctr", 3), ("diversity", 3), ("watch", 1), ("day7", 3))
    table = C.markdown_table(
        [
            "agent",
            "slates clicked",
            "CTR (per examined slot)",
            "intra-slate diversity",
            "watch min / user",
            f"day-{args.horizon_days} retention",
        ],
        [[label, *C.metric_cells(results[label], metrics)] for label, _, _ in vs],
    )
    diff_rows, verdicts = [], []
    for i, j in PAIRS:
        a, b = results[vs[i][0]], results[vs[j][0]]
        sctr, ctr, div = (C.paired(a, b, m) for m in ("slate_ctr", "ctr", "diversity"))
        on_par = sctr[2] > 0 and ctr[2] > 0  # neither click rate is significantly worse
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
            "click rates on par or better",
            "diversity higher",
        ],
        diff_rows,
    )
    body = (
        "Regenerate: `python experiments/agents_inslate.py` — RecoWorld-v0, default world, "
        f"{args.users} users × seeds {C.seeds_text(args)}, paired; agents learn online from scratch. "
        "Per-user means: slates clicked (share of requests with at least one click — the paper's click "
        "rate), CTR per examined slot, intra-slate diversity (1 − mean pairwise same-topic share per "
        f"slate).\n\n{table}\n\n"
        f"Paired differences, TS − greedy (95% CI):\n\n{diffs}\n"
    )
    return C.finish(args, "agents_inslate", body, results=results, verdicts=verdicts)


if __name__ == "__main__":
    main()
