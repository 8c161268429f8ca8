"""Evaluation shards as Ray tasks: a ``map_fn`` for :func:`~recoworld.evaluation.runner.run_shards`.

>>> from recoworld.evaluation import compare
>>> compare(["random", "linucb"], "RecoWorld-v0", users=10_000, backend="ray", workers=8)

Each shard (a :class:`~recoworld.evaluation.runner.ShardSpec`, a pure description of its users) runs as one
Ray task of one CPU; results come back in the order of the shards, so the evaluation is exactly the local one.
Ray is started locally (``ray.init``) unless it is already initialised, e.g. connected to a cluster through
``RAY_ADDRESS``; the runtime is left running for later calls and stops with the process.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import Any

__all__ = ["RayMap"]


class RayMap:
    """``map_fn(fn, items)``: ``fn(item)`` as Ray tasks, at most ``workers`` at a time; results in order."""

    def __init__(self, workers: int | None = None):
        if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
            raise ValueError(f"workers must be a positive integer or None, got {workers!r}")
        self.workers = workers

    def _ray(self) -> Any:
        from recoworld.rllib import require_ray

        ray = require_ray("Ray-parallel evaluation")
        if not ray.is_initialized():
            local = (
                {}
                if os.environ.get("RAY_ADDRESS")
                else {"num_cpus": self.workers, "include_dashboard": False}
            )
            ray.init(log_to_driver=False, **local)
        return ray

    def __call__(self, fn: Callable[[Any], Any], items: Iterable[Any]) -> Iterator[Any]:
        ray = self._ray()
        task = ray.remote(num_cpus=1)(fn)
        window = self.workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
        pending: deque = deque()
        for item in items:
            pending.append(task.remote(item))
            if len(pending) >= window:
                yield ray.get(pending.popleft())
        while pending:
            yield ray.get(pending.popleft())
