"""The batched simulator core shared by every RecoWorld environment (single envs are batches of one).

One :meth:`Simulator.step` serves a slate to every slot: validate -> de-duplicate -> user model responds ->
serving state (history, turn, day, session) -> reward, episode ends -> next request's candidates.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from recoworld import kernels, rng
from recoworld.arrays import take_rows
from recoworld.config import WorldConfig
from recoworld.envs.observation import ObservationBuilder, observation_space
from recoworld.envs.retrieval import Retrieval
from recoworld.envs.slates import as_slates, check_range, deduplicate
from recoworld.users.base import UserModel
from recoworld.users.synthetic import SyntheticUserModel
from recoworld.world import World, build_world

MODES = ("lifetime", "session", "bandit")
REWARD_INDEX = {"clicks": 0, "watch_time": 1, "session_length": 2, "retention": 3}
_USER_SALT = np.uint64(0xC0FFEE5EED)

UserModelFactory = Callable[[World, WorldConfig, rng.Streams], UserModel]


@dataclass
class StepResult:
    reward: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray
    info: dict[str, np.ndarray]


class Simulator:
    """State of ``batch_size`` user slots in one world, advanced together."""

    def __init__(
        self,
        config: WorldConfig,
        batch_size: int,
        *,
        mode: str = "lifetime",
        num_requests: int = 100,
        user_model: UserModelFactory | None = None,
    ):
        if mode not in MODES:
            raise ValueError(f"mode: must be one of {MODES}, got {mode!r}")
        if not isinstance(num_requests, int) or num_requests < 1:
            raise ValueError(f"num_requests: must be a positive integer, got {num_requests!r}")
        self.config, self.mode, self.num_requests = config, mode, num_requests
        self.world = build_world(config)
        self.catalog = self.world.catalog
        self.batch_size = b = batch_size
        self.streams = rng.Streams(b)
        self.users = (user_model or SyntheticUserModel)(self.world, config, self.streams)
        self.users.allocate(b)
        compiled = kernels.resolve(config.kernel) == "numba"
        self.retrieval = Retrieval(
            self.catalog,
            config.num_candidates,
            config.retrieval_topic_share,
            config.retrieval_popular_share,
            compiled=compiled,
        )
        self.observations = ObservationBuilder(config, self.catalog, compiled=compiled)
        self._distinct_slates = self._record_history_kernel = None  # compiled serving steps, if any
        if compiled:
            from recoworld.kernels import serving

            self._distinct_slates = serving.checked_distinct_slates
            self._record_history_kernel = serving.record_history
        self._fused_step = compiled and type(self.users) is SyntheticUserModel  # one kernel for the step
        self._observation = None  # the observation the compiled step built, until observe() hands it out
        self.single_observation_space = observation_space(config, self.world.num_topics)
        h = config.history_length
        self.rows = np.arange(b)
        self.seed_base = np.zeros(b, dtype=np.int64)
        self.episode = np.zeros(b, dtype=np.int64)
        self.day = np.zeros(b, dtype=np.int64)
        self.session = np.zeros(b, dtype=np.int64)
        self.turn = np.zeros(b, dtype=np.int64)
        self.days_since = np.zeros(b, dtype=np.int64)
        self.requests = np.zeros(b, dtype=np.int64)
        self.hist_items = np.full((b, h), self.catalog.num_items, dtype=np.int64)
        self.hist_watch = np.zeros((b, h), dtype=np.float32)
        self.hist_ptr = np.zeros(b, dtype=np.int64)
        self.candidates = np.zeros((b, config.num_candidates), dtype=np.int64)
        self._no_texts = np.full(b, "", dtype=object)
        self._no_rows = np.zeros(b, dtype=bool)
        if self._fused_step:
            self._bind_step_kernel()

    def _bind_step_kernel(self) -> None:
        """The compiled step (:mod:`recoworld.kernels.step`) and the state it updates in place."""
        from recoworld.kernels import step
        from recoworld.users.synthetic import novelty_traits

        self._step_kernel = step.step
        self._observing = self.observations.compiled_inputs(self)  # (tables, state, sizes): arrays in place
        cfg, p = self.config, self.config.user
        self._serving = tuple(
            step.Serving(
                self.seed_base, self.episode, self.day, self.session, self.turn, self.days_since,
                self.requests, self.hist_items, self.hist_watch, self.hist_ptr, self.streams.keys,
                self.streams.counter,
                self.catalog.duration, self.world.rho, novelty_traits(self.world, p.novelty_a, p.novelty_b),
                MODES.index(self.mode), cfg.max_turns, cfg.max_gap_days, cfg.horizon_days, self.num_requests,
                _USER_SALT,
            )
        )  # fmt: skip

    # ------------------------------------------------------------------ episodes
    def reset(self, rows: np.ndarray, seeds: np.ndarray) -> None:
        """Start ``rows`` afresh: slot r's users are keyed by ``seeds[r]`` and an episode counter from 0."""
        self.seed_base[rows] = seeds
        self.episode[rows] = 0
        self._begin_episode(rows)

    def next_episode(self, rows: np.ndarray) -> None:
        """Start the next episode (a new user) in ``rows`` without reseeding."""
        self.episode[rows] += 1
        self._begin_episode(rows)

    def _begin_episode(self, rows: np.ndarray) -> None:
        self._meet_users(rows)
        self.candidates[rows] = self.retrieval(self.streams, rows, self.hist_items)

    def _meet_users(self, rows: np.ndarray) -> None:
        """Give ``rows`` the users of their current episodes, with empty histories (candidates not drawn)."""
        keys = rng.user_key(self.seed_base[rows], self.episode[rows])
        self.streams.assign(rows, keys)
        self._new_users(rows, keys)
        for a in (self.day, self.session, self.turn, self.days_since, self.requests, self.hist_ptr):
            a[rows] = 0
        self.hist_items[rows] = self.catalog.num_items
        self.hist_watch[rows] = 0.0

    def _new_users(self, rows: np.ndarray, keys: np.ndarray) -> None:
        index = rng.splitmix64(keys ^ _USER_SALT ^ (self.streams.counter[rows] * rng._GOLDEN))
        population = (index % np.uint64(self.world.num_users)).astype(np.int64)
        self.users.reset_users(rows, population)
        self.users.start_session(rows, np.zeros(len(rows), dtype=np.int64))

    def observe(self) -> dict[str, np.ndarray]:
        """Every slot's observation (fresh arrays)."""
        if self._observation is not None:  # built by the compiled step, handed out once
            obs, self._observation = self._observation, None
            return obs
        return self.observations.build(self)

    def candidate_utility(self) -> np.ndarray:
        """True utility (B, C) of every slot's current candidates to its user (position term excluded)."""
        return np.asarray(self.users.utility(self.rows, self.candidates), dtype=np.float64)

    # ------------------------------------------------------------------ one request for every slot
    def validate(self, action, ignored: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Checked, de-duplicated slates (B, K) and the number of replaced repeats; raises on bad input.

        ``ignored``: rows whose action is disregarded (slots about to restart); they get the slate 0 .. K-1.
        """
        c, k = self.config.num_candidates, self.config.slate_size
        slates = as_slates(action, self.batch_size, k)
        if self._distinct_slates is not None:
            checked = self._distinct_slates(slates, c, self._row_mask(ignored))
            if checked is not None:
                return checked
        if ignored is not None and ignored.size:
            slates = slates.copy()
            slates[ignored] = np.arange(k)
        check_range(slates, c)
        return deduplicate(slates, c)

    def step(self, slates: np.ndarray, replaced: np.ndarray, restart: np.ndarray | None = None) -> StepResult:
        """Serve validated ``slates`` to every slot (see :meth:`validate`).

        ``restart``: slots whose next episode starts after this step (as :meth:`next_episode` would start it,
        but sharing this step's retrieval); the step's result for them is that of their old episode.
        """
        if self._fused_step:
            return self._compiled_step(slates, replaced, restart)
        cfg, rows = self.config, self.rows
        served = self.candidates
        items = take_rows(served, slates)
        day, session, turn = self.day.copy(), self.session.copy(), self.turn.copy()
        fb = self.users.respond(rows, items)
        self._record_history(items, fb.clicked, fb.watch_minutes)
        self.turn += 1
        self.requests += 1
        ended = fb.left | (self.turn >= cfg.max_turns)
        gap = np.full(self.batch_size, -1, dtype=np.int64)
        terminated = np.zeros(self.batch_size, dtype=bool)
        truncated = np.zeros(self.batch_size, dtype=bool)
        churned = np.zeros(self.batch_size, dtype=bool)
        returns = np.zeros(self.batch_size)
        if ended.any():
            e = np.flatnonzero(ended)
            g = self.users.end_session(e)
            churned[e] = g > cfg.max_gap_days
            gap[e] = np.where(churned[e], -1, g)
            returns[e] = ~churned[e]
            if self.mode == "lifetime":
                terminated[e] = churned[e]
                truncated[e] = ~churned[e] & (self.day[e] + g > cfg.horizon_days)
                go_on = e[~terminated[e] & ~truncated[e]]
                self.day[go_on] += gap[go_on]
                self.days_since[go_on] = gap[go_on]
                self.session[go_on] += 1
                self.turn[go_on] = 0
                self.users.start_session(go_on, gap[go_on])
            elif self.mode == "session":
                terminated[e] = fb.left[e]
                truncated[e] = ~fb.left[e]
        user_index = self.users.population_index.copy()  # the users served by this step
        self.streams.advance(rows)
        if self.mode == "bandit":
            ended[:] = False
            truncated[:] = self.requests >= self.num_requests
            self._new_users(rows, self.streams.keys)
        if restart is not None and restart.size:
            self.episode[restart] += 1
            self._meet_users(restart)
        self.candidates = self.retrieval(self.streams, rows, self.hist_items)
        vector = np.stack(
            [fb.clicked.sum(axis=1), fb.watch_minutes.sum(axis=1), np.ones(self.batch_size), returns], axis=1
        )
        outcome = (ended, terminated, truncated, churned, gap, user_index, vector)
        return self._result(served, items, replaced, (day, session, turn), fb, outcome)

    def _compiled_step(
        self, slates: np.ndarray, replaced: np.ndarray, restart: np.ndarray | None
    ) -> StepResult:
        """:meth:`step` by the compiled kernel (synthetic users); also builds the next observation."""
        served, users = self.candidates, self.users._kernel
        out, raw, self.candidates, obs = self._step_kernel(
            slates, served, self._row_mask(restart), self._serving, users.constants, users.arrays,
            self.retrieval.tables, self._observing, self.config.threads,
        )  # fmt: skip
        self._observation = self.observations.with_latent(obs, self)
        outcome = (out.ended, out.terminated, out.truncated, out.churned, out.return_gap, out.user_index)
        before = (out.day, out.session, out.turn)
        return self._result(
            served, out.items, replaced, before, users.feedback(raw), (*outcome, out.reward_vector)
        )

    def _row_mask(self, rows: np.ndarray | None) -> np.ndarray:
        """(B,) bool, true at ``rows``; without rows the shared all-false mask (never written)."""
        if rows is None or not rows.size:
            return self._no_rows
        mask = np.zeros(self.batch_size, dtype=bool)
        mask[rows] = True
        return mask

    def _result(self, served, items, replaced, before, fb, outcome) -> StepResult:
        """The step's rewards, episode ends and ``info`` (before: day, session, turn at the request)."""
        ended, terminated, truncated, churned, gap, user_index, vector = outcome
        day, session, turn = before
        info = {
            "candidate_items": served,
            "slate_items": items,
            "clicked": fb.clicked,
            "liked": fb.liked,
            "examined": fb.examined,
            "watch_minutes": fb.watch_minutes,
            "duplicates_replaced": replaced,
            "session_ended": ended,
            "left": fb.left,
            "churned": churned,
            "return_gap_days": gap,
            "day": day,
            "session": session,
            "turn": turn,
            "instruction_type": fb.instruction_type,
            "instruction_topic": fb.instruction_topic,
            "instruction_text": self._texts(fb.instruction_text),
            "instruction_followed": fb.instruction_followed,
            "user_index": user_index,
            "reward_vector": vector,
            "true_utility": fb.true_utility,
        }
        return StepResult(vector[:, REWARD_INDEX[self.config.reward]], terminated, truncated, info)

    def _texts(self, texts: Sequence[str] | None) -> np.ndarray:
        """``info["instruction_text"]``: a fresh (B,) object array."""
        if isinstance(texts, np.ndarray) and texts.dtype == object and texts.shape == self._no_texts.shape:
            return texts  # the synthetic model's fresh array
        out = self._no_texts.copy()
        if texts is not None:
            out[:] = texts
        return out

    def _record_history(self, items: np.ndarray, clicked: np.ndarray, watch: np.ndarray) -> None:
        """Append clicked items (in slate order) to each slot's ring buffer of consumed items."""
        if self._record_history_kernel is not None:
            duration = self.catalog.duration
            self._record_history_kernel(
                items, clicked, watch, duration, self.hist_items, self.hist_watch, self.hist_ptr
            )
            return
        h = self.config.history_length
        count = clicked.sum(axis=1)
        if not count.any():
            return
        r, k = np.nonzero(clicked)
        position = self.hist_ptr[r] + (np.cumsum(clicked, axis=1)[r, k] - 1)
        keep = position >= self.hist_ptr[r] + count[r] - h  # more clicks than slots: keep the latest
        r, k, position = r[keep], k[keep], position[keep] % h
        self.hist_items[r, position] = items[r, k]
        fraction = watch[r, k] / self.catalog.duration[items[r, k]]
        self.hist_watch[r, position] = fraction.astype(np.float32)
        self.hist_ptr = (self.hist_ptr + count) % h
