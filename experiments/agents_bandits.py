"""Claim: on RecoWorld-v0 (default world), LinUCB, LinTS and in-slate TS each beat random and most-popular on
watch time per user and on day-7 retention (paired users, 95% CI of the difference excludes zero).

    python experiments/agents_bandits.py                 # 2,000 users x 3 seeds (about 15 minutes on 2 cores)
    python experiments/agents_bandits.py --jobs 16       # the same numbers, runs spread over 16 processes
    python experiments/agents_bandits.py --smoke         # CI smoke mode (seconds)

Every agent is built fresh for each seed and learns online while it serves that seed's users (all users of a
seed are served in parallel by one agent instance). Results: a table of means with 95% CIs over users (pooled
over seeds) and the paired differences, written into docs/agents.md unless --no-docs.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import agents_common as C  # noqa: E402


@dataclass(frozen=True)
class Args(C.CommonArgs):
    policies: tuple[str, ...] = (
        "random",
        "popular",
        "egreedy",
        "ucb",
        "linucb",
        "lints",
        "inslate_ts",
        "oracle",
    )
    challengers: tuple[str, ...] = ("linucb", "lints", "inslate_ts")
    references: tuple[str, ...] = ("random", "popular")


def main(argv: list[str] | None = None) -> dict:
    args = C.parse(Args, argv, __doc__)
    results = C.run_variants(args, [(name, name, {}) for name in args.policies])
    d = args.horizon_days
    metrics = (("watch", 1), ("day7", 3), ("sessions", 2), ("ctr", 3), ("diversity", 3))
    table = C.markdown_table(
        [
            "policy",
            "watch min / user",
            f"day-{d} retention",
            "sessions / user",
            "CTR",
            "intra-slate diversity",
        ],
        [[f"`{name}`", *C.metric_cells(results[name], metrics)] for name in args.policies],
    )
    diff_rows, verdicts = [], []
    for ch in args.challengers:
        for ref in args.references:
            if ch not in results or ref not in results:
                continue
            w = C.paired(results[ch], results[ref], "watch")
            d7 = C.paired(results[ch], results[ref], "day7")
            ok = w[1] > 0 and d7[1] > 0
            verdicts.append(ok)
            diff_rows.append(
                [f"`{ch}` − `{ref}`", C.fmt_ci(*w, digits=1), C.fmt_ci(*d7), "yes" if ok else "**no**"]
            )
    diffs = C.markdown_table(
        ["paired difference", "watch min / user", f"day-{d} retention", "both CIs > 0"], diff_rows
    )
    body = (
        "Regenerate: `python experiments/agents_bandits.py` — RecoWorld-v0, default world, "
        f"{args.users} users × seeds {C.seeds_text(args)} (users paired across policies), one episode "
        f"({d} days) per user; every agent learns online from scratch within each seed. Means with 95% CIs "
        "over users pooled over seeds."
        f"\n\n{table}\n\nPaired differences (95% CI):\n\n{diffs}\n"
    )
    return C.finish(args, "agents_bandits", body, results=results, verdicts=verdicts)


if __name__ == "__main__":
    main()
