"""Typed, frozen configuration of a RecoWorld world: population, user model, serving loop, reward.

Every field is validated on construction; a bad value raises ``ValueError`` naming the field.
Environments accept a :class:`WorldConfig` (``config=``) and/or flat keyword overrides of its fields
(see :func:`make_config`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

CHOICE_MODELS = ("cascade", "mnl")
KERNELS = ("auto", "numba", "numpy")
REWARDS = ("watch_time", "clicks", "session_length", "retention")


def _check(condition: bool, name: str, message: str) -> None:
    if not condition:
        raise ValueError(f"{name}: {message}")


@dataclass(frozen=True)
class UserConfig:
    """Parameters of the synthetic dynamic user (DESIGN.md §3). Defaults give a learnable world."""

    affinity_weight: float = 1.0  # a, on log T_ui
    popularity_weight: float = 0.2  # beta_pop, on log phi_i (relative to the catalogue median)
    novelty_weight: float = 1.0  # eta
    boredom_weight: float = 1.5  # beta_b
    position_weight: float = 0.3  # beta_pos, on log k
    click_threshold: float = -1.0  # tau_click: P(click) = sigmoid(U - tau_click)
    watch_threshold: float = -1.5  # watch fraction = sigmoid(U - watch_threshold + noise)
    like_threshold: float = 0.5  # P(like | click) = sigmoid(U - like_threshold)
    noclick_bias: float = 0.0  # MNL: logit of the no-click option ...
    noclick_length_weight: float = -0.5  # ... plus this times log(slate length)
    drift: float = (
        0.97  # gamma: interests drift toward consumed topics, rho <- gamma rho + (1 - gamma) alpha_i
    )
    boredom_gain_click: float = 0.12  # boredom added to a topic per clicked item of it
    boredom_gain_view: float = 0.03  # boredom added to a topic per examined item of it
    boredom_decay_request: float = 0.9  # boredom multiplier per request
    boredom_decay_day: float = 0.4  # boredom multiplier per day away
    fatigue_per_item: float = 0.006  # fatigue added per examined item
    fatigue_decay_day: float = 0.2  # fatigue multiplier per day away
    satisfaction_rate: float = 0.3  # EMA rate of satisfaction
    expectation: float = 0.6  # request value below which a request disappoints
    disappointment_cost: float = 1.2  # patience lost per unit of disappointment
    fatigue_cost: float = 0.6  # patience lost per request per unit of fatigue
    leave_hazard: float = 0.01  # per examined, unclicked item: chance to leave on the spot
    novelty_share: float = 0.05  # a topic is "new" when its share in the history is below this
    novelty_a: float = 2.0  # theta_u ~ Beta(a, b)
    novelty_b: float = 2.0
    novelty_kappa: float = 4.0  # nu ~ Beta(kappa theta, kappa (1 - theta)) per session
    instruction_boredom: float = 1.0  # boredom level that triggers an instruction
    instruction_patience: float = 1.0  # patience level below which the user may instruct
    instruction_bonus: float = 2.5  # patience regained when an instruction is honoured
    instruction_penalty: float = 1.0  # patience lost when it is ignored
    instruction_satisfaction: float = 0.5  # satisfaction gained when honoured (lost when ignored)
    instruction_turns: int = 2  # requests an instruction stays pending
    instruction_share: float = 0.3  # share of the slate that must honour "related"/"new"
    return_bias: float = 0.0  # logit offset of the daily return probability
    return_satisfaction: float = 2.5  # ... per unit of end-of-session satisfaction (centred at expectation)
    return_fatigue: float = 0.2  # ... minus this per unit of fatigue

    def __post_init__(self) -> None:
        for name in ("drift", "boredom_decay_request", "boredom_decay_day", "fatigue_decay_day"):
            _check(0.0 <= getattr(self, name) <= 1.0, name, "must lie in [0, 1]")
        for name in ("satisfaction_rate", "instruction_share"):
            _check(0.0 < getattr(self, name) <= 1.0, name, "must lie in (0, 1]")
        for name in ("novelty_a", "novelty_b", "novelty_kappa"):
            _check(getattr(self, name) > 0.0, name, "must be positive")
        for name in (
            "boredom_gain_click", "boredom_gain_view", "fatigue_per_item", "disappointment_cost",
            "fatigue_cost",
            "instruction_bonus", "instruction_penalty", "instruction_satisfaction", "boredom_weight",
            "position_weight", "novelty_share",
        ):  # fmt: skip
            _check(getattr(self, name) >= 0.0, name, "must be non-negative")
        _check(0.0 <= self.leave_hazard < 1.0, "leave_hazard", "must lie in [0, 1)")
        _check(self.instruction_turns >= 1, "instruction_turns", "must be at least 1")


@dataclass(frozen=True)
class WorldConfig:
    """A whole world: who the users are, what is served, how an episode runs and what is rewarded."""

    preset: str = "default"  # HYDRA world preset (recoworld.presets.hydra_preset)
    world_seed: int = 0  # seeds the catalogue and population; reset seeds pick users within it
    embedding_dim: int = 16
    num_candidates: int = 50
    slate_size: int = 10
    history_length: int = 10
    horizon_days: int = 7  # sessions happen on days 0 .. horizon_days
    max_gap_days: int = 3  # a user who would stay away longer churns
    max_turns: int = 20  # requests per session at most
    choice_model: str = "cascade"
    reward: str = "watch_time"
    observe_latent: bool = False
    retrieval_topic_share: float = 0.5  # candidates drawn from the user's likely topics ...
    retrieval_popular_share: float = 0.3  # ... from popular items; the rest uniformly at random
    kernel: str = (
        "auto"  # "numba" (compiled, recoworld[fast]), "numpy" (reference), "auto": numba if installed
    )
    threads: int = 1  # threads sharing a batch's rows in the compiled step (same results as one)
    user: UserConfig = field(default_factory=UserConfig)

    def __post_init__(self) -> None:
        positive = ("embedding_dim", "num_candidates", "slate_size", "history_length", "max_turns", "threads")
        for name in positive:
            value = getattr(self, name)
            _check(isinstance(value, int) and value >= 1, name, f"must be a positive integer, got {value!r}")
        _check(
            self.slate_size <= self.num_candidates,
            "slate_size",
            f"{self.slate_size} exceeds num_candidates={self.num_candidates}",
        )
        _check(self.horizon_days >= 0, "horizon_days", "must be non-negative")
        _check(self.max_gap_days >= 1, "max_gap_days", "must be at least 1")
        _check(self.choice_model in CHOICE_MODELS, "choice_model", f"must be one of {CHOICE_MODELS}")
        _check(self.reward in REWARDS, "reward", f"must be one of {REWARDS}")
        _check(self.kernel in KERNELS, "kernel", f"must be one of {KERNELS}, got {self.kernel!r}")
        for name in ("retrieval_topic_share", "retrieval_popular_share"):
            _check(0.0 <= getattr(self, name) <= 1.0, name, "must lie in [0, 1]")
        _check(
            self.retrieval_topic_share + self.retrieval_popular_share <= 1.0,
            "retrieval_topic_share",
            "retrieval_topic_share + retrieval_popular_share must not exceed 1",
        )
        _check(isinstance(self.user, UserConfig), "user", "must be a UserConfig")


def make_config(config: WorldConfig | None = None, **overrides: Any) -> WorldConfig:
    """``config`` (default :class:`WorldConfig`) with flat keyword overrides of world or user fields.

    Unknown keywords raise ``ValueError`` naming them, so a misspelt RLlib ``env_config`` key is not ignored.
    """
    base = WorldConfig() if config is None else config
    world_fields = {f.name for f in dataclasses.fields(WorldConfig)}
    user_fields = {f.name for f in dataclasses.fields(UserConfig)}
    unknown = sorted(set(overrides) - world_fields - user_fields)
    if unknown:
        raise ValueError(f"unknown keyword(s) {unknown}; see recoworld.config.WorldConfig and UserConfig")
    user_overrides = {k: v for k, v in overrides.items() if k in user_fields and k not in world_fields}
    world_overrides = {k: v for k, v in overrides.items() if k in world_fields}
    if user_overrides:
        world_overrides["user"] = dataclasses.replace(
            world_overrides.get("user", base.user), **user_overrides
        )
    return dataclasses.replace(base, **world_overrides) if world_overrides else base
