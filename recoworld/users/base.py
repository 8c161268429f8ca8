"""The batched user-model protocol every simulated user (synthetic or LLM) implements.

A user model owns the latent state of a batch of ``B`` user slots and answers, for any subset of slots
(``rows``), the three questions the simulator asks: a session starts, here is a slate, the session ended.
All randomness comes from the per-slot counter streams in :class:`recoworld.rng.Streams`, so a slot's
behaviour never depends on which other slots share the batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

INSTRUCTION_NONE, INSTRUCTION_AVOID, INSTRUCTION_RELATED, INSTRUCTION_NEW = 0, 1, 2, 3
INSTRUCTION_TYPES = ("none", "avoid", "related", "new")


@dataclass
class Feedback:
    """A batch of users' responses to one slate each (``R`` rows, ``K`` slots)."""

    clicked: np.ndarray  # (R, K) bool
    liked: np.ndarray  # (R, K) bool
    examined: np.ndarray  # (R, K) bool
    watch_minutes: np.ndarray  # (R, K) float64
    left: np.ndarray  # (R,) bool: the user ends the session after this slate
    instruction_type: np.ndarray  # (R,) int8, one of INSTRUCTION_*
    instruction_topic: np.ndarray  # (R,) int64, -1 when no instruction
    instruction_followed: (
        np.ndarray
    )  # (R,) int8: pending instruction honoured (1), not (0), none pending (-1)
    true_utility: np.ndarray  # (R, K) float64, ground-truth utility of the shown items
    instruction_text: Sequence[str] | None = (
        None  # (R,) texts, a list or an object array; None means "render from the structured instruction"
    )


@runtime_checkable
class UserModel(Protocol):
    """Batched user model; ``rows`` index the slots of the batch."""

    def allocate(self, batch_size: int) -> None:
        """Create state arrays for ``batch_size`` slots."""

    def reset_users(self, rows: np.ndarray, population_index: np.ndarray) -> None:
        """Start the life of a new user (population index) in each of ``rows``."""

    def start_session(self, rows: np.ndarray, gap_days: np.ndarray) -> None:
        """A session starts for ``rows`` after ``gap_days`` days away (0 for the first session)."""

    def respond(self, rows: np.ndarray, slate_items: np.ndarray) -> Feedback:
        """Users in ``rows`` review ``slate_items`` (R, K) and respond; their mindset is updated."""

    def end_session(self, rows: np.ndarray) -> np.ndarray:
        """The session of ``rows`` ended; return the gap in days until the next one (int64)."""

    def utility(self, rows: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Ground-truth utility of ``items`` (R, C) at the top slate position, for oracles and diagnostics."""

    def latent(self, rows: np.ndarray) -> np.ndarray:
        """The hidden state of ``rows`` as (R, 2G + 4) float32 (see docs/interfaces.md, key ``latent``)."""
