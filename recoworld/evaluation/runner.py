"""Sharded, resumable evaluation over the native vector environment.

An evaluation is cut into shards, one per (policy, seed, block of users). A shard is described by a picklable
:class:`ShardSpec` and run by the pure top-level function :func:`run_shard` (spec -> per-user records), so
shards can be farmed out to processes or Ray tasks through ``map_fn`` and give identical numbers.

Users. Evaluation seed ``s`` and user ``u`` (0 <= u < users) stand for the user simulated by
``env.reset(seed=s * SEED_STRIDE + u)``; a block of users ``[start, start + count)`` runs as the
sub-environments of ``gym.make_vec(env_id, num_envs=count, vectorization_mode="vector_entry_point")`` reset
with ``seed=s * SEED_STRIDE + start`` (sub-env ``i`` is user ``start + i``). Every sub-env runs exactly one
episode; what it does after its autoreset is ignored, and the shard ends when all have finished. Two policies
evaluated on the same seeds therefore meet the same users under the same random streams (common random
numbers).

Policies that learn online (``update``) learn within a shard: every shard starts from a fresh copy of the
policy (a deep copy of the object given, or a newly built named policy) reset with the shard's seed, so a
shard's result depends only on its spec. For such policies the block size is part of the evaluation's
definition.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import hashlib
import json
import os
import re
import sys
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .metrics import TrajectoryRecorder
from .policies import make_policy, policy_env_kwargs

__all__ = [
    "SEED_STRIDE",
    "DEFAULT_BLOCK_SIZE",
    "ShardSpec",
    "plan_shards",
    "run_shard",
    "run_shards",
    "ShardStore",
    "world_facts",
]

SEED_STRIDE = 1_000_000  # users of evaluation seed s are the reset seeds s * SEED_STRIDE + u
DEFAULT_BLOCK_SIZE = 1024
MAX_STEPS = 1_000_000  # safety net: no episode of a registered environment is anywhere near this long
FORMAT_VERSION = 1


def _jsonable(value: Any) -> Any:
    """A JSON-friendly rendering of environment keyword arguments (configs become dicts)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {"__type__": type(value).__name__, **_jsonable(dataclasses.asdict(value))}
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return repr(value)


@dataclass(frozen=True)
class ShardSpec:
    """One shard: ``count`` users (``start`` ..) of evaluation seed ``seed`` under policy ``policy_name``.

    ``policy`` is a policy name (built with :func:`~recoworld.evaluation.policies.make_policy` inside the
    shard), a policy object (deep-copied), or a factory ``f(env, seed) -> policy``.
    """

    policy_name: str
    policy: Any
    env_id: str
    seed: int
    start: int
    count: int
    env_kwargs: Mapping[str, Any] = field(default_factory=dict)
    learn: bool = True

    @property
    def reset_seed(self) -> int:
        return int(self.seed) * SEED_STRIDE + int(self.start)

    @property
    def key(self) -> str:
        return f"{self.policy_name}/seed{self.seed}/users{self.start}-{self.start + self.count}"

    def fingerprint(self) -> dict[str, Any]:
        """What identifies the shard's result (stored with it and checked on resume)."""
        return {
            "format": FORMAT_VERSION,
            "policy": self.policy_name,
            "env_id": self.env_id,
            "env_kwargs": _jsonable(dict(self.env_kwargs)),
            "seed": int(self.seed),
            "start": int(self.start),
            "count": int(self.count),
            "learn": bool(self.learn),
        }


def plan_shards(
    policies: Mapping[str, Any],
    env_id: str,
    users: int,
    seeds: Sequence[int],
    env_kwargs: Mapping[str, Any] | None = None,
    block_size: int = DEFAULT_BLOCK_SIZE,
    learn: bool = True,
) -> list[ShardSpec]:
    """All shards of an evaluation, ordered by policy, seed, block."""
    if users < 1:
        raise ValueError(f"users must be a positive integer, got {users}")
    if users > SEED_STRIDE:
        raise ValueError(f"users must not exceed {SEED_STRIDE} per seed, got {users}")
    if block_size < 1:
        raise ValueError(f"block_size must be a positive integer, got {block_size}")
    kwargs = dict(env_kwargs or {})
    specs = []
    for name, policy in policies.items():
        for seed in seeds:
            for start in range(0, users, block_size):
                count = min(block_size, users - start)
                specs.append(ShardSpec(name, policy, env_id, int(seed), start, count, kwargs, learn))
    return specs


# ---------------------------------------------------------------------------------------------- world facts
_HOPS = ("unwrapped", "core", "sim", "simulator", "engine", "world", "env", "_core", "_sim")


def _search(obj: Any, attr: str, depth: int = 3) -> Any:
    """Breadth-first search for ``attr`` on ``obj`` and the objects it wraps."""
    frontier, seen = [obj], set()
    for _ in range(depth + 1):
        nxt = []
        for o in frontier:
            if o is None or id(o) in seen:
                continue
            seen.add(id(o))
            try:
                value = getattr(o, attr, None)
            except Exception:  # noqa: BLE001 - properties of foreign wrappers may raise
                value = None
            if value is not None:
                return value
            for hop in _HOPS:
                try:
                    nxt.append(getattr(o, hop, None))
                except Exception:  # noqa: BLE001
                    continue
        frontier = nxt
    return None


def world_facts(env: Any, env_kwargs: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Horizon, max gap, catalogue size and popularity of an environment's world (best effort).

    Looks for a ``config`` (a :class:`~recoworld.config.WorldConfig`) and a ``catalog`` on the environment or
    the objects it wraps; falls back to the configuration built from ``env_kwargs``.
    """
    config = _search(env, "config")
    if not hasattr(config, "horizon_days"):
        config = None
        try:
            from recoworld.config import make_config

            kw = dict(env_kwargs or {})
            base = kw.pop("config", None)
            fields = {f.name for f in dataclasses.fields(type(make_config()))}
            user_fields = {f.name for f in dataclasses.fields(type(make_config().user))}
            kw = {k: v for k, v in kw.items() if k in fields or k in user_fields}
            config = make_config(base, **kw)
        except (ImportError, ValueError, TypeError):
            config = None
    catalog = _search(env, "catalog")
    popularity = getattr(catalog, "popularity", None)
    num_items = getattr(catalog, "num_items", None)
    if num_items is None and popularity is not None:
        num_items = len(popularity)
    mode = _search(env, "mode")
    return {
        "mode": mode if isinstance(mode, str) else None,
        "horizon_days": None if config is None else int(config.horizon_days),
        "max_gap_days": None if config is None else int(config.max_gap_days),
        "num_items": None if num_items is None else int(num_items),
        "popularity": None if popularity is None else np.asarray(popularity, dtype=np.float64),
    }


# ---------------------------------------------------------------------------------------------- one shard
def _instantiate(policy: Any, env: Any, seed: int) -> Any:
    if isinstance(policy, str):
        obj = make_policy(policy, env, seed=seed)
    elif hasattr(policy, "act"):
        obj = copy.deepcopy(policy)
    elif callable(policy):
        obj = policy(env, seed)
    else:
        raise TypeError(f"a policy must be a name, an object with act(), or a factory; got {type(policy)!r}")
    reset = getattr(obj, "reset", None)
    if callable(reset):
        reset(seed=seed)
    return obj


@contextlib.contextmanager
def _torch_single_thread():
    """Pin torch (when a policy loaded it) to one intra-op thread for the duration of a shard.

    Multi-threaded torch reductions round differently with different thread counts, and a policy's decisions
    would then depend on the process it runs in (the CLI, a worker pool, a Ray task). One thread makes a shard
    a function of its spec alone; shards, not threads, are the unit of parallelism.
    """
    torch = sys.modules.get("torch")
    if torch is None:
        yield
        return
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def run_shard(spec: ShardSpec) -> dict[str, Any]:
    """Run one shard and return its per-user records (numpy arrays) plus ``meta`` (a JSON-able dict).

    A pure function of ``spec``: the same spec gives the same records in any process.
    """
    import gymnasium as gym

    import recoworld  # noqa: F401 - registers the environments in fresh worker processes

    kwargs = {**dict(spec.env_kwargs), **policy_env_kwargs(spec.policy)}
    env = gym.make_vec(spec.env_id, num_envs=spec.count, vectorization_mode="vector_entry_point", **kwargs)
    try:
        policy = _instantiate(spec.policy, env, spec.reset_seed)
        facts = world_facts(env, kwargs)
        recorder = TrajectoryRecorder(spec.count, facts["popularity"])
        update = getattr(policy, "update", None) if spec.learn else None
        obs, _ = env.reset(seed=spec.reset_seed)
        steps = 0
        with _torch_single_thread():
            while not recorder.all_done:
                action = np.asarray(policy.act(obs))
                next_obs, reward, terminated, truncated, info = env.step(action)
                recorder.record(obs, info, terminated, truncated, reward)
                if callable(update):
                    update(obs, action, reward, info)
                obs = next_obs
                steps += 1
                if steps > MAX_STEPS:
                    raise RuntimeError(f"shard {spec.key}: episodes did not end within {MAX_STEPS} steps")
    finally:
        env.close()
    records: dict[str, Any] = recorder.records()
    records["seed"] = np.full(spec.count, spec.seed, dtype=np.int64)
    records["user"] = np.arange(spec.start, spec.start + spec.count, dtype=np.int64)
    records["meta"] = {
        "spec": spec.fingerprint(),
        "mode": facts["mode"],
        "horizon_days": facts["horizon_days"],
        "max_gap_days": facts["max_gap_days"],
        "num_items": facts["num_items"],
        "steps": steps,
    }
    return records


# ---------------------------------------------------------------------------------------------- storage
def _slug(name: str) -> str:
    clean = re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("._") or "policy"
    if clean != name:
        clean = f"{clean[:40]}-{hashlib.sha1(name.encode()).hexdigest()[:8]}"
    return clean


class ShardStore:
    """Finished shards as ``DIR/shards/<policy>/seed<S>_users<A>-<B>.npz`` (records + the spec fingerprint).

    Files are written atomically (temporary file, then rename), so a killed run leaves only whole shards.
    """

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)

    def path(self, spec: ShardSpec) -> Path:
        name = f"seed{spec.seed}_users{spec.start}-{spec.start + spec.count}.npz"
        return self.root / "shards" / _slug(spec.policy_name) / name

    def save(self, spec: ShardSpec, records: Mapping[str, Any]) -> Path:
        path = self.path(spec)
        path.parent.mkdir(parents=True, exist_ok=True)
        arrays = {k: np.asarray(v) for k, v in records.items() if k != "meta"}
        arrays["meta_json"] = np.array(json.dumps(records["meta"], sort_keys=True))
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".npz", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as fh:
                np.savez(fh, **arrays)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return path

    def load(self, spec: ShardSpec) -> dict[str, Any] | None:
        """The stored records of ``spec``; None if absent. A stored shard of another evaluation raises."""
        path = self.path(spec)
        if not path.exists():
            return None
        try:
            with np.load(path, allow_pickle=False) as data:
                records: dict[str, Any] = {k: data[k] for k in data.files if k != "meta_json"}
                meta = json.loads(str(data["meta_json"]))
        except (OSError, ValueError, KeyError) as exc:
            raise ValueError(f"{path}: unreadable shard file ({exc}); delete it to recompute") from exc
        if meta.get("spec") != spec.fingerprint():
            raise ValueError(
                f"{path} holds a shard of a different evaluation; use another output folder or drop resume"
            )
        records["meta"] = meta
        return records


# ---------------------------------------------------------------------------------------------- progress
class _Progress:
    def __init__(self, total: int, enabled: bool, desc: str):
        self.bar = None
        self.enabled = enabled
        self.done = 0
        self.total = total
        if not enabled:
            return
        try:
            from tqdm.auto import tqdm
        except ImportError:
            print(
                "recoworld: progress bars need tqdm (pip install recoworld[report]); printing shard lines",
                file=sys.stderr,
            )
            return
        self.bar = tqdm(total=total, desc=desc, unit="user", file=sys.stderr, dynamic_ncols=True)

    def update(self, n: int, label: str) -> None:
        self.done += n
        if self.bar is not None:
            self.bar.set_postfix_str(label, refresh=False)
            self.bar.update(n)
        elif self.enabled:
            print(f"recoworld: {self.done}/{self.total} users ({label})", file=sys.stderr)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


MapFn = Callable[[Callable[[ShardSpec], dict[str, Any]], Iterable[ShardSpec]], Iterable[dict[str, Any]]]


def run_shards(
    specs: Sequence[ShardSpec],
    *,
    out_dir: str | os.PathLike | None = None,
    resume: bool = False,
    map_fn: MapFn | None = None,
    callback: Callable[[ShardSpec, dict[str, Any]], None] | None = None,
    progress: bool = False,
) -> list[dict[str, Any]]:
    """Records of every shard, in the order of ``specs``.

    With ``out_dir`` each finished shard is saved as soon as it arrives; with ``resume=True`` shards already
    saved there are loaded instead of run. ``map_fn(run_shard, specs)`` (default: the builtin ``map``; e.g.
    ``ProcessPoolExecutor().map`` or a Ray wrapper) runs the missing shards and yields their records in order.
    ``callback(spec, records)`` is called after each newly run shard is saved.
    """
    store = ShardStore(out_dir) if out_dir is not None else None
    results: list[dict[str, Any] | None] = [None] * len(specs)
    todo: list[int] = []
    for i, spec in enumerate(specs):
        loaded = store.load(spec) if (store is not None and resume) else None
        if loaded is None:
            todo.append(i)
        else:
            results[i] = loaded
    bar = _Progress(sum(s.count for s in specs), progress, "evaluate")
    try:
        done_users = sum(specs[i].count for i in range(len(specs)) if results[i] is not None)
        if done_users:
            bar.update(done_users, "resumed")
        mapper = map_fn if map_fn is not None else map
        for i, records in zip(todo, mapper(run_shard, [specs[i] for i in todo]), strict=True):
            spec = specs[i]
            if store is not None:
                store.save(spec, records)
            results[i] = records
            bar.update(spec.count, spec.key)
            if callback is not None:
                callback(spec, records)
    finally:
        bar.close()
    return [r for r in results if r is not None]
