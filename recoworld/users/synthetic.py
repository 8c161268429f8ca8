"""The vectorised parametric user of DESIGN.md §3: utility, cascade or MNL choice, mindset update, leave,
reflective instructions, and the return gap between sessions. All operations are row-wise over users."""

from __future__ import annotations

import numpy as np

from recoworld import rng
from recoworld.config import WorldConfig
from recoworld.users.base import (
    INSTRUCTION_AVOID,
    INSTRUCTION_NEW,
    INSTRUCTION_NONE,
    INSTRUCTION_RELATED,
    Feedback,
)
from recoworld.users.instructions import render_instruction
from recoworld.world import World

# stream purposes (each random decision draws from its own purpose at the current request counter)
P_CLICK, P_WATCH, P_LIKE, P_LEAVE, P_INSTRUCT, P_RETURN, P_NOVELTY, P_MNL = range(1, 9)
_LOG_CAP, _LOG_FLOOR = np.log(0.99), np.log(1e-9)
_TRAIT_SALT = np.uint64(0x7E57AB1E5EED)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


class SyntheticUserModel:
    """Batched synthetic users of one world. See :class:`recoworld.users.base.UserModel`."""

    def __init__(self, world: World, config: WorldConfig, streams: rng.Streams):
        self.world, self.config, self.params, self.streams = world, config, config.user, streams
        self.catalog = world.catalog
        c = self.catalog
        self._alpha = np.ascontiguousarray(c.alpha)
        self._topic = c.topic
        self._duration = c.duration
        self._item_term = world.log_item_scale  # xi log(phi)
        self._pop_term = self.params.popularity_weight * (c.log_popularity - np.median(c.log_popularity))
        self._related = c.related_topics
        k = config.slate_size
        self._position_term = -self.params.position_weight * np.log(np.arange(1, k + 1))
        self.allocate(0)

    # ------------------------------------------------------------------ state
    def allocate(self, batch_size: int) -> None:
        f = self.world.num_topics
        self.population_index = np.zeros(batch_size, dtype=np.int64)
        self.rho = np.zeros((batch_size, f))
        self.boredom = np.zeros((batch_size, f))
        self.topic_share = np.zeros((batch_size, f))
        self.novelty_trait = np.full(batch_size, 0.5)
        self.novelty = np.full(batch_size, 0.5)
        self.fatigue = np.zeros(batch_size)
        self.patience = np.zeros(batch_size)
        self.satisfaction = np.zeros(batch_size)
        self.pending_type = np.zeros(batch_size, dtype=np.int8)
        self.pending_topic = np.full(batch_size, -1, dtype=np.int64)
        self.pending_turns = np.zeros(batch_size, dtype=np.int64)

    def reset_users(self, rows: np.ndarray, population_index: np.ndarray) -> None:
        p = self.params
        self.population_index[rows] = population_index
        self.rho[rows] = self.world.rho[population_index]
        self.boredom[rows] = 0.0
        self.topic_share[rows] = 0.0
        self.fatigue[rows] = 0.0
        self.satisfaction[rows] = p.expectation
        self.pending_type[rows] = INSTRUCTION_NONE
        self.pending_topic[rows] = -1
        self.pending_turns[rows] = 0
        # the novelty trait belongs to the population member: drawn from a stream keyed by its index
        words = rng.splitmix64(
            (np.asarray(population_index, dtype=np.uint64) ^ _TRAIT_SALT)[:, None] * rng._GOLDEN
            + np.arange(rng.BETA_UNIFORMS, dtype=np.uint64)
        )
        a = np.full(len(rows), p.novelty_a)
        b = np.full(len(rows), p.novelty_b)
        self.novelty_trait[rows] = rng.beta_from_uniforms(a, b, rng.to_unit(words))

    def start_session(self, rows: np.ndarray, gap_days: np.ndarray) -> None:
        p = self.params
        gap = np.asarray(gap_days, dtype=np.float64)
        self.boredom[rows] *= (p.boredom_decay_day**gap)[:, None]
        self.fatigue[rows] *= p.fatigue_decay_day**gap
        pop = self.population_index[rows]
        self.patience[rows] = self.world.patience[pop]
        theta = self.novelty_trait[rows]
        u = self.streams.uniform(rows, P_NOVELTY, rng.BETA_UNIFORMS)
        nu = rng.beta_from_uniforms(p.novelty_kappa * theta, p.novelty_kappa * (1.0 - theta), u)
        self.novelty[rows] = np.clip(nu, 1e-6, 1.0 - 1e-6)

    # ------------------------------------------------------------------ utility
    def _utility(self, rows: np.ndarray, items: np.ndarray, alpha: np.ndarray) -> np.ndarray:
        """Utility of ``items`` (R, L) with their topic weights ``alpha`` (R, L, f), without the position term."""
        p = self.params
        affinity = np.einsum("rf,rkf->rk", self.rho[rows], alpha)
        noisy = self.world.delta * affinity + (1.0 - self.world.delta) * 0.98
        log_t = (
            np.log(np.maximum(noisy, 1e-300))
            + self.world.log_user_scale[self.population_index[rows]][:, None]
        )
        log_t = np.clip(log_t + self._item_term[items], _LOG_FLOOR, _LOG_CAP)
        topics = self._topic[items]
        new = np.take_along_axis(self.topic_share[rows], topics, axis=1) < p.novelty_share
        # (2 nu - 1)(2 nov - 1): seekers (nu > 1/2) prefer new topics, others familiar ones. The literal
        # nu nov - (1 - nu)(1 - nov) of DESIGN.md gives every user the same new-vs-familiar gap.
        lean = 2.0 * self.novelty[rows][:, None] - 1.0
        novelty = np.where(new, lean, -lean)
        bored = np.take_along_axis(self.boredom[rows], topics, axis=1)
        return (
            p.affinity_weight * log_t
            + self._pop_term[items]
            + p.novelty_weight * novelty
            - p.boredom_weight * bored
        )

    def utility(self, rows: np.ndarray, items: np.ndarray) -> np.ndarray:
        return self._utility(rows, items, self._alpha[items])

    def _slate_utility(self, rows: np.ndarray, slate_items: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Topic weights (R, K, f) of the shown items and their utility including the position term."""
        alpha = self._alpha[slate_items]
        return alpha, self._utility(rows, slate_items, alpha) + self._position_term[: slate_items.shape[1]]

    # ------------------------------------------------------------------ response
    def respond(self, rows: np.ndarray, slate_items: np.ndarray) -> Feedback:
        alpha, utility = self._slate_utility(rows, slate_items)
        if self.config.choice_model == "mnl":
            clicked = self._choose_mnl(rows, utility)
            examined = np.ones_like(clicked)
            leave_now = np.zeros(len(rows), dtype=bool)
        else:
            clicked, examined, leave_now = self._choose_cascade(rows, utility)
        like_draw = self.streams.uniform(rows, P_LIKE, utility.shape[1])
        liked = clicked & (like_draw < _sigmoid(utility - self.params.like_threshold))
        return self._finish(rows, slate_items, alpha, utility, clicked, liked, examined, leave_now)

    def _choose_cascade(self, rows, utility):
        k = utility.shape[1]
        u = self.streams.uniform(rows, P_CLICK, 2 * k)
        clicked = u[:, :k] < _sigmoid(utility - self.params.click_threshold)
        hazard = self.params.leave_hazard * (1.0 + self.fatigue[rows])[:, None] * ~clicked
        leaves = u[:, k:] < hazard
        leave_now = leaves.any(axis=1)
        last = np.where(leave_now, np.argmax(leaves, axis=1), k - 1)
        examined = np.arange(k)[None, :] <= last[:, None]
        return clicked & examined, examined, leave_now

    def _choose_mnl(self, rows, utility):
        k = utility.shape[1]
        p = self.params
        noclick = p.noclick_bias + p.noclick_length_weight * np.log(k)
        logits = np.concatenate([utility, np.full((len(rows), 1), noclick)], axis=1)
        gumbel = -np.log(-np.log(self.streams.uniform(rows, P_MNL, k + 1)))
        choice = np.argmax(logits + gumbel, axis=1)
        return np.arange(k)[None, :] == choice[:, None]

    def apply_choices(self, rows, slate_items, clicked, liked, examined, leave_now) -> Feedback:
        """Feed externally decided choices (e.g. an LLM's) through the same outcome and mindset update."""
        alpha, utility = self._slate_utility(rows, slate_items)
        examined = np.asarray(examined, dtype=bool)
        clicked = np.asarray(clicked, dtype=bool) & examined
        liked = np.asarray(liked, dtype=bool) & clicked
        return self._finish(
            rows, slate_items, alpha, utility, clicked, liked, examined, np.asarray(leave_now, bool)
        )

    def _finish(self, rows, slate_items, alpha, utility, clicked, liked, examined, leave_now) -> Feedback:
        """Watch time of the clicked items, the request's value to the user, then the mindset update."""
        k = utility.shape[1]
        noise = rng.normal_from_uniforms(*np.split(self.streams.uniform(rows, P_WATCH, 2 * k), 2, axis=1))
        fraction = _sigmoid(utility - self.params.watch_threshold + 0.5 * noise)
        watch = np.where(clicked, fraction * self._duration[slate_items], 0.0)
        value = np.where(clicked, fraction, 0.0).sum(axis=1) + 0.5 * liked.sum(axis=1)
        return self._update(
            rows, slate_items, alpha, utility, clicked, liked, examined, watch, value, leave_now
        )

    # ------------------------------------------------------------------ mindset
    def _update(self, rows, slate_items, alpha, utility, clicked, liked, examined, watch, value, leave_now):
        p = self.params
        n_clicks = clicked.sum(axis=1)
        clicked_mass = np.einsum("rk,rkf->rf", clicked.astype(np.float64), alpha)  # (R, f)
        viewed_mass = np.einsum("rk,rkf->rf", examined.astype(np.float64), alpha)
        any_click = n_clicks > 0
        mean_clicked = clicked_mass / np.maximum(n_clicks, 1)[:, None]
        keep = p.drift ** n_clicks[:, None]
        self.rho[rows] = np.where(
            any_click[:, None], keep * self.rho[rows] + (1.0 - keep) * mean_clicked, self.rho[rows]
        )
        share = self.topic_share[rows]
        self.topic_share[rows] = np.where(any_click[:, None], 0.8 * share + 0.2 * mean_clicked, share)
        self.boredom[rows] = (
            p.boredom_decay_request * self.boredom[rows]
            + p.boredom_gain_click * clicked_mass
            + p.boredom_gain_view * viewed_mass
        )
        self.fatigue[rows] += p.fatigue_per_item * examined.sum(axis=1)
        self.satisfaction[rows] += p.satisfaction_rate * (value - self.satisfaction[rows])
        gain = value - p.expectation
        patience = self.patience[rows] + np.where(gain < 0, p.disappointment_cost * gain, 0.5 * gain)
        patience -= p.fatigue_cost * self.fatigue[rows]
        cap = self.world.patience[self.population_index[rows]]
        followed, patience = self._judge_pending(rows, slate_items, share, np.minimum(patience, cap))
        self.patience[rows] = patience
        left = leave_now | (patience <= 0.0)
        instruction_type, instruction_topic = self._maybe_instruct(rows, left & ~leave_now)
        speaking = instruction_type != INSTRUCTION_NONE
        left &= ~speaking
        texts = None
        if speaking.any():
            names = self.catalog.topic_names
            texts = [""] * len(rows)
            for r in np.flatnonzero(speaking).tolist():
                g = int(instruction_topic[r])
                texts[r] = render_instruction(int(instruction_type[r]), names[g] if g >= 0 else "")
        return Feedback(
            clicked=clicked,
            liked=liked,
            examined=examined,
            watch_minutes=watch,
            left=left,
            instruction_type=instruction_type,
            instruction_topic=instruction_topic,
            instruction_followed=followed,
            true_utility=utility,
            instruction_text=texts,
        )

    def _judge_pending(self, rows, slate_items, share_before, patience):
        """Did this slate honour the pending instruction? Adjust patience and the pending state."""
        p = self.params
        kind = self.pending_type[rows]
        followed = np.full(len(rows), -1, dtype=np.int8)
        pending = kind != INSTRUCTION_NONE
        if not pending.any():
            return followed, patience
        topics = self._topic[slate_items]
        target = self.pending_topic[rows][:, None]
        k = slate_items.shape[1]
        avoid_ok = (topics == target).sum(axis=1) <= max(1, k // 10)
        related = self._related[np.maximum(target[:, 0], 0)]  # (R, 3)
        related_ok = (topics[:, :, None] == related[:, None, :]).any(axis=2).mean(
            axis=1
        ) >= p.instruction_share
        new_ok = (np.take_along_axis(share_before, topics, axis=1) < p.novelty_share).mean(
            axis=1
        ) >= p.instruction_share
        ok = np.select(
            [kind == INSTRUCTION_AVOID, kind == INSTRUCTION_RELATED, kind == INSTRUCTION_NEW],
            [avoid_ok, related_ok, new_ok],
            default=False,
        )
        followed[pending] = ok[pending]
        patience = patience + np.where(
            pending, np.where(ok, p.instruction_bonus, -p.instruction_penalty), 0.0
        )
        self.satisfaction[rows] += np.where(
            pending, np.where(ok, p.instruction_satisfaction, -p.instruction_satisfaction), 0.0
        )
        turns = self.pending_turns[rows] - pending
        clear = pending & (ok | (turns <= 0))
        self.pending_turns[rows] = np.where(clear, 0, turns)
        self.pending_type[rows] = np.where(clear, INSTRUCTION_NONE, kind)
        self.pending_topic[rows] = np.where(clear, -1, self.pending_topic[rows])
        return followed, patience

    def _maybe_instruct(self, rows, about_to_leave):
        """Users who sense they are about to disengage may speak instead: a structured reflective instruction."""
        p = self.params
        r = len(rows)
        boredom = self.boredom[rows]
        top_bored = np.argmax(boredom, axis=1)
        bored = boredom[np.arange(r), top_bored] > p.instruction_boredom
        low = (self.patience[rows] < p.instruction_patience) | about_to_leave
        u = self.streams.uniform(rows, P_INSTRUCT, 2)
        speak = (
            (self.pending_type[rows] == INSTRUCTION_NONE)
            & (bored | low)
            & (u[:, 0] < self.world.instruction_propensity[self.population_index[rows]])
        )
        kind = np.zeros(r, dtype=np.int8)
        topic = np.full(r, -1, dtype=np.int64)
        if not speak.any():
            return kind, topic
        top_interest = np.argmax(self.rho[rows], axis=1)
        bored_kind = np.where(u[:, 1] < 0.5, INSTRUCTION_AVOID, INSTRUCTION_RELATED)
        low_kind = np.where(self.novelty[rows] > 0.5, INSTRUCTION_NEW, INSTRUCTION_RELATED)
        kind = np.where(speak, np.where(bored, bored_kind, low_kind), INSTRUCTION_NONE).astype(np.int8)
        topic = np.where(speak & (kind != INSTRUCTION_NEW), np.where(bored, top_bored, top_interest), -1)
        self.register_instruction(rows[speak], kind[speak], topic[speak])
        self.patience[rows] = np.where(speak, np.maximum(self.patience[rows], 0.5), self.patience[rows])
        return kind, topic

    def register_instruction(self, rows: np.ndarray, kind: np.ndarray, topic: np.ndarray) -> None:
        """Make ``rows`` hold an instruction (type, target topic or -1), judged on the next requests' slates.

        Used by the model itself and by wrappers whose instructions come from elsewhere (an LLM's text).
        """
        self.pending_type[rows] = kind
        self.pending_topic[rows] = topic
        self.pending_turns[rows] = self.params.instruction_turns

    # ------------------------------------------------------------------ between sessions
    def end_session(self, rows: np.ndarray) -> np.ndarray:
        p = self.params
        logit = (
            p.return_bias
            + self.world.return_bias[self.population_index[rows]]
            + p.return_satisfaction * (self.satisfaction[rows] - p.expectation)
            - p.return_fatigue * self.fatigue[rows]
        )
        daily = np.clip(_sigmoid(logit), 1e-6, 1.0 - 1e-6)
        u = self.streams.uniform(rows, P_RETURN, 1)[:, 0]
        return 1 + np.floor(np.log(u) / np.log1p(-daily)).astype(np.int64)

    def latent(self, rows: np.ndarray) -> np.ndarray:
        scalars = np.stack(
            [self.novelty[rows], self.fatigue[rows], self.patience[rows], self.satisfaction[rows]], axis=1
        )
        return np.concatenate([self.rho[rows], self.boredom[rows], scalars], axis=1).astype(np.float32)
