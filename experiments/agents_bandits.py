"""Claim: on RecoWorld-v0 (default world), LinUCB, LinTS and in-slate TS each beat random and most-popular on
watch time per user and on day-7 retention (paired users, 95% CI of the difference excludes zero).

    python experiments/agents_bandits.py                 # 2,000 users x 3 seeds (about 10 minutes on 2 cores)
    python experiments/agents_bandits.py --smoke         # CI smoke mode (seconds)

Every agent is built fresh for each seed and learns online while it serves that seed's users (all users of a
seed are served in parallel by one agent instance). Results: a table of means with 95% CIs over users (pooled
over seeds) and the paired differences, written into docs/agents.md unless --no-docs.
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
    agent_seed: int = 0
    horizon_days: int = 7
    no_docs: bool = False
    smoke: bool = False


def smoke(args: Args) -> Args:
    return replace(args, users=16, seeds=(0,), horizon_days=1, no_docs=True)


def main(argv: list[str] | None = None) -> dict:
    args = C.parse(Args, argv, __doc__, smoke)
    env_kwargs = {"horizon_days": args.horizon_days}
    C.log_config(args, env="RecoWorld-v0", env_kwargs=env_kwargs)
    results: dict[str, list[C.RunResult]] = {p: [] for p in args.policies}
    for seed in args.seeds:
        for name in args.policies:
            agent = C.build(name, env_kwargs, args.agent_seed + seed)
            r = C.run_agent(agent, args.users, seed, env_kwargs, label=name)
            results[name].append(r)
            print(
                f"seed {seed} {name:12s} watch {r.watch.mean():7.1f} day7 {r.day7.mean():.3f} "
                f"ctr {r.ctr.mean():.3f} div {r.diversity.mean():.3f} ({r.seconds:.0f}s)",
                flush=True,
            )

    rows = []
    for name in args.policies:
        rs = results[name]
        rows.append(
            [f"`{name}`"]
            + [
                C.fmt_ci(*C.mean_ci(C.pooled(rs, m)), digits=d)
                for m, d in (("watch", 1), ("day7", 3), ("sessions", 2), ("ctr", 3), ("diversity", 3))
            ]
        )
    table = C.markdown_table(
        [
            "policy",
            "watch min / user",
            f"day-{args.horizon_days} retention",
            "sessions / user",
            "CTR",
            "intra-slate diversity",
        ],
        rows,
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
                [
                    f"`{ch}` − `{ref}`",
                    C.fmt_ci(*w, digits=1),
                    C.fmt_ci(*d7, digits=3),
                    "yes" if ok else "**no**",
                ]
            )
    diffs = C.markdown_table(
        ["paired difference", "watch min / user", f"day-{args.horizon_days} retention", "both CIs > 0"],
        diff_rows,
    )
    seeds = ", ".join(str(s) for s in args.seeds)
    body = (
        f"Regenerate: `python experiments/agents_bandits.py` — RecoWorld-v0, default world, {args.users} "
        f"users "
        f"× seeds {seeds} (users paired across policies), one episode ({args.horizon_days} days) per user; "
        "every agent learns online from scratch within each seed. Means with 95% CIs over users pooled over "
        f"seeds.\n\n{table}\n\nPaired differences (95% CI):\n\n{diffs}\n"
    )
    print(body)
    if not args.no_docs:
        C.write_section("agents_bandits", body)
    return {"results": results, "verdicts": verdicts, "markdown": body}


if __name__ == "__main__":
    main()
