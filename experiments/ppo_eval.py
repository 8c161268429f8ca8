"""The paired evaluation both PPO training scripts end with: PPO against baselines on the same users."""

from __future__ import annotations

from typing import Any


def compare_with_baselines(policy: Any, env_id: str, baselines, users: int, seeds: int) -> dict[str, Any]:
    """Greedy PPO vs the baselines on the same users; paired differences against the first baseline."""
    from recoworld.evaluation import compare

    panel = {"ppo": policy, **{name: name for name in baselines}}
    reference = baselines[0]
    result = compare(panel, env_id, users=users, seeds=seeds, reference=reference, oracle=None)
    metric = "watch_time_per_user"
    means = {name: result.policies[name].metrics[metric] for name in panel}
    diff = result.paired[f"ppo - {reference}"][metric]
    for name, est in means.items():
        print(f"{name:8s} watch time / user {est.mean:7.2f}  95% CI [{est.ci95[0]:.2f}, {est.ci95[1]:.2f}]")
    print(
        f"ppo - {reference}: {diff.mean:+.2f} min / user, 95% CI [{diff.ci95[0]:+.2f}, {diff.ci95[1]:+.2f}] "
        f"({result.users * len(result.seeds)} paired users)",
        flush=True,
    )
    return {
        "metric": metric,
        "reference": reference,
        "means": {name: est.to_json() for name, est in means.items()},
        "paired": {f"ppo - {reference}": diff.to_json()},
        "beats_reference": bool(diff.ci95[0] > 0),
    }
