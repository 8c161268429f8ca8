"""``evaluate`` and ``compare``: retention evaluation of recommenders with 95% intervals and paired
comparisons."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from .policies import check_policy_name
from .results import EvaluationResult, merge_records
from .runner import DEFAULT_BLOCK_SIZE, MapFn, ShardSpec, plan_shards, run_shards

__all__ = ["evaluate", "compare", "check_env_id"]

ORACLE = "oracle"


def check_env_id(env_id: str) -> None:
    """Raise ``ValueError`` (one-line message) if ``env_id`` is not a registered environment id."""
    import gymnasium as gym

    import recoworld  # noqa: F401 - registers the environments

    if not isinstance(env_id, str) or not env_id:
        raise ValueError("env id must be a non-empty string")
    try:
        spec = gym.spec(env_id)
    except Exception as exc:  # noqa: BLE001 - gymnasium raises several error types for unknown ids
        raise ValueError(f"unknown environment id {env_id!r} ({type(exc).__name__})") from exc
    if spec.vector_entry_point is None:
        raise ValueError(f"environment {env_id!r} has no native vector environment (vector_entry_point)")


def _policy_label(policy: Any) -> str:
    if isinstance(policy, str):
        return policy
    return str(getattr(policy, "name", None) or type(policy).__name__)


def _normalise_policies(policies: Any) -> dict[str, Any]:
    if isinstance(policies, Mapping):
        out = {str(k): v for k, v in policies.items()}
    elif isinstance(policies, str) or hasattr(policies, "act"):
        out = {_policy_label(policies): policies}
    else:
        out = {}
        for p in policies:
            label = _policy_label(p)
            if label in out:
                raise ValueError(f"two policies are called {label!r}; pass a dict {{name: policy}}")
            out[label] = p
    if not out:
        raise ValueError("no policy to evaluate")
    for p in out.values():
        if isinstance(p, str):
            check_policy_name(p)
    return out


def _normalise_seeds(seeds: int | Sequence[int]) -> list[int]:
    if isinstance(seeds, bool):
        raise ValueError("seeds must be a positive integer or a list of integers")
    if isinstance(seeds, int):
        if seeds < 1:
            raise ValueError(f"seeds must be a positive integer, got {seeds}")
        return list(range(seeds))
    out = [int(s) for s in seeds]
    if not out:
        raise ValueError("seeds must not be empty")
    if len(set(out)) != len(out):
        raise ValueError("seeds must be distinct")
    if any(s < 0 for s in out):
        raise ValueError("seeds must be non-negative")
    return out


def _shard_map(backend: str, workers: int | None, map_fn: MapFn | None) -> MapFn | None:
    """The ``map_fn`` that runs the shards for ``backend``."""
    if backend == "local":
        if workers is not None:
            raise ValueError("workers is for backend='ray'; run local shards in parallel with map_fn")
        return map_fn
    if backend == "ray":
        if map_fn is not None:
            raise ValueError("backend='ray' runs the shards itself; do not pass map_fn as well")
        from .ray_map import RayMap

        return RayMap(workers)
    raise ValueError(f"unknown backend {backend!r}; choose 'local' or 'ray'")


def compare(
    policies: Mapping[str, Any] | Sequence[Any],
    env_id: str = "RecoWorld-v0",
    *,
    users: int = 256,
    seeds: int | Sequence[int] = 1,
    env_kwargs: Mapping[str, Any] | None = None,
    reference: str | None = None,
    oracle: Any = ORACLE,
    block_size: int = DEFAULT_BLOCK_SIZE,
    learn: bool = True,
    out_dir: str | os.PathLike | None = None,
    resume: bool = False,
    progress: bool = False,
    map_fn: MapFn | None = None,
    backend: str = "local",
    workers: int | None = None,
    callback: Callable[[ShardSpec, dict[str, Any]], None] | None = None,
) -> EvaluationResult:
    """Evaluate several policies on the same users and pair every one with ``reference`` (default: the first).

    Args:
        policies: ``{name: policy}``, or a list of policy names / objects. A policy is a name understood by
            :func:`~recoworld.evaluation.policies.make_policy` (``"random"``, ``"linucb"``, ``"sb3:PATH"``
            ...), an object with the batched ``Recommender`` methods (``act``; optionally ``update``,
            ``reset``), or a factory ``f(env, seed) -> policy``.
        env_id: a registered id with a native vector environment.
        users: users per seed.
        seeds: number of evaluation seeds (seeds ``0 .. S-1``) or an explicit list. Seed ``s``, user ``u`` is
            the user of ``env.reset(seed=s * 1_000_000 + u)``.
        env_kwargs: keyword arguments of the environment (world configuration overrides).
        reference: the policy the others are paired against (``paired[f"{name} - {reference}"]``).
        oracle: the policy that defines ``regret`` (default: the ``oracle`` policy; ``None`` skips regret).
            When a compared policy has the same name, its records are reused.
        block_size: users per shard (one vector environment). Online learners learn within a shard.
        learn: call the policies' ``update`` after every step.
        out_dir: folder for the shard files (per-user records); with ``resume=True`` finished shards found
            there are loaded instead of run, which gives exactly the result of an uninterrupted run.
        progress: show a progress bar (tqdm) on stderr.
        map_fn: ``map_fn(run_shard, specs)`` runs shards (default: the builtin ``map``), e.g.
            ``concurrent.futures.ProcessPoolExecutor().map`` or a Ray-backed map; results must come back in
            order.
        backend: ``"local"`` (shards run by ``map_fn``) or ``"ray"``: every shard is a Ray task (a local Ray
            runtime is started unless Ray is already initialised); the numbers are exactly the local ones.
        workers: with ``backend="ray"``, at most this many shards at a time (default: the cluster's CPUs).
        callback: called as ``callback(spec, records)`` after each shard is finished and saved.
    """
    check_env_id(env_id)
    map_fn = _shard_map(backend, workers, map_fn)
    if isinstance(users, bool) or not isinstance(users, int) or users < 1:
        raise ValueError(f"users must be a positive integer, got {users!r}")
    panel = _normalise_policies(policies)
    seed_list = _normalise_seeds(seeds)
    if reference is not None and reference not in panel:
        raise ValueError(f"reference {reference!r} is not among the compared policies {list(panel)}")
    oracle_name = None
    run_panel = dict(panel)
    if oracle is not None:
        if isinstance(oracle, str) and oracle in panel:
            oracle_name = oracle
        else:
            oracle_name = _policy_label(oracle)
            if oracle_name in panel:
                oracle_name = f"{oracle_name} (oracle)"
            if isinstance(oracle, str):
                check_policy_name(oracle)
            run_panel[oracle_name] = oracle
    specs = plan_shards(run_panel, env_id, users, seed_list, env_kwargs, block_size, learn)
    shard_records = run_shards(
        specs, out_dir=out_dir, resume=resume, map_fn=map_fn, callback=callback, progress=progress
    )
    by_policy: dict[str, list[dict[str, Any]]] = {}
    for spec, rec in zip(specs, shard_records, strict=True):
        by_policy.setdefault(spec.policy_name, []).append(rec)
    merged = {name: merge_records(recs) for name, recs in by_policy.items()}
    meta = shard_records[0]["meta"]
    return EvaluationResult.from_records(
        env_id,
        merged,
        meta,
        env_kwargs=env_kwargs,
        users=users,
        seeds=seed_list,
        block_size=block_size,
        listed=list(panel),
        reference=reference,
        oracle=oracle_name,
    )


def evaluate(
    policy: Any,
    env_id: str = "RecoWorld-v0",
    *,
    users: int = 256,
    seeds: int | Sequence[int] = 1,
    name: str | None = None,
    **kwargs: Any,
) -> EvaluationResult:
    """Evaluate one policy (see :func:`compare` for every argument). ``name`` labels it in the result."""
    label = name or _policy_label(policy)
    return compare({label: policy}, env_id, users=users, seeds=seeds, **kwargs)
