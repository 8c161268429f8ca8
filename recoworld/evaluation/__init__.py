"""Retention evaluation of recommenders: metrics with 95% intervals, paired comparisons, survival, reports.

>>> from recoworld.evaluation import evaluate, compare
>>> result = compare(["random", "popular"], "RecoWorld-v0", users=256, seeds=2)   # doctest: +SKIP
>>> print(result.summary())                                                     # doctest: +SKIP
>>> result.write_report("reports/demo")                                         # doctest: +SKIP

Only numpy and the standard library are imported here; matplotlib (plots) and tqdm (progress bars) are
imported when used (``pip install recoworld[report]``). See ``docs/evaluation.md``.
"""

from .api import check_env_id, compare, evaluate
from .metrics import (
    METRIC_INFO,
    METRICS,
    SurvivalCurve,
    TrajectoryRecorder,
    kaplan_meier,
    return_gap_histogram,
    slate_diversity,
    user_metrics,
)
from .policies import available_policies, make_policy
from .results import EvaluationResult, PolicyEvaluation
from .runner import SEED_STRIDE, ShardSpec, ShardStore, plan_shards, run_shard, run_shards
from .stats import Estimate, mean_estimate, paired_estimate, t_quantile

__all__ = [
    "METRICS",
    "METRIC_INFO",
    "SEED_STRIDE",
    "Estimate",
    "EvaluationResult",
    "PolicyEvaluation",
    "ShardSpec",
    "ShardStore",
    "SurvivalCurve",
    "TrajectoryRecorder",
    "available_policies",
    "check_env_id",
    "compare",
    "evaluate",
    "kaplan_meier",
    "make_policy",
    "mean_estimate",
    "paired_estimate",
    "plan_shards",
    "return_gap_histogram",
    "run_shard",
    "run_shards",
    "slate_diversity",
    "t_quantile",
    "user_metrics",
]
