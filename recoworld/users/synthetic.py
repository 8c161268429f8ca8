"""The vectorised parametric user of DESIGN.md §3: utility, cascade or MNL choice, mindset update, leave,
reflective instructions, and the return gap between sessions. All operations are row-wise over users."""

from __future__ import annotations

import numpy as np

from recoworld import kernels, rng
from recoworld.arrays import selector, take_rows
from recoworld.config import WorldConfig
from recoworld.users.base import (
    INSTRUCTION_AVOID,
    INSTRUCTION_NEW,
    INSTRUCTION_NONE,
    INSTRUCTION_RELATED,
    INSTRUCTION_TYPES,
    Feedback,
)
from recoworld.users.instructions import render_instruction
from recoworld.world import World

# stream purposes (each random decision draws from its own purpose at the current request counter)
P_CLICK, P_WATCH, P_LIKE, P_LEAVE, P_INSTRUCT, P_RETURN, P_NOVELTY, P_MNL = range(1, 9)
_LOG_CAP, _LOG_FLOOR = np.log(0.99), np.log(1e-9)
_TRAIT_SALT = np.uint64(0x7E57AB1E5EED)


_TRAITS: dict[tuple[int, float, float], tuple[World, np.ndarray]] = {}
_TRAITS_KEPT = 8


def novelty_traits(world: World, a: float, b: float) -> np.ndarray:
    """Every population member's novelty trait theta ~ Beta(a, b), drawn from a stream keyed by the member's
    index (so it belongs to the member, whichever slot meets it); computed once per (world, a, b)."""
    key = (id(world), a, b)  # the entry holds the world, so its id cannot be reused while cached
    if key not in _TRAITS:
        members = np.arange(world.num_users, dtype=np.uint64)
        words = rng.splitmix64(
            (members ^ _TRAIT_SALT)[:, None] * rng._GOLDEN + np.arange(rng.BETA_UNIFORMS, dtype=np.uint64)
        )
        n = world.num_users
        traits = rng.beta_from_uniforms(np.full(n, a), np.full(n, b), rng.to_unit(words))
        traits.setflags(write=False)
        if len(_TRAITS) >= _TRAITS_KEPT:
            del _TRAITS[next(iter(_TRAITS))]
        _TRAITS[key] = (world, traits)
    return _TRAITS[key][1]


def _slots(sel, subset: np.ndarray) -> np.ndarray:
    """The slots of the ``subset`` (positions within the selection ``sel``) of a selection of rows."""
    return subset if isinstance(sel, slice) else sel[subset]


def _sigmoid(x: np.ndarray) -> np.ndarray:
    """1 / (1 + exp(-x)) in one new array."""
    e = np.negative(x)
    np.exp(e, out=e)
    e += 1.0
    return np.divide(1.0, e, out=e)


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
        self._is_related = np.zeros((c.num_topics, c.num_topics), dtype=bool)  # [g, h]: h is related to g
        self._is_related[np.arange(c.num_topics)[:, None], c.related_topics] = True
        self._instruction_texts = np.array(  # [kind, topic + 1]: the text of every structured instruction
            [
                [render_instruction(kind, name) for name in ("", *c.topic_names)]
                for kind in range(len(INSTRUCTION_TYPES))
            ],
            dtype=object,
        )
        k = config.slate_size
        self._position_term = -self.params.position_weight * np.log(np.arange(1, k + 1))
        self._layouts: dict[tuple[int, bool], rng.Layout] = {}
        self._kernel = _CompiledResponse(self) if kernels.resolve(config.kernel) == "numba" else None
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
        if self._kernel is not None:
            self._kernel.bind(self)

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
        self.novelty_trait[rows] = novelty_traits(self.world, p.novelty_a, p.novelty_b)[population_index]

    def start_session(self, rows: np.ndarray, gap_days: np.ndarray) -> None:
        if self._kernel is not None:
            return self._kernel.start_session(rows, gap_days)
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
    def _utility(self, sel, items: np.ndarray, alpha: np.ndarray) -> np.ndarray:
        """Utility of ``items`` (R, L) with topic weights ``alpha`` (R, L, f), without the position term.

        ``sel`` selects the users' rows (see :func:`recoworld.arrays.selector`). Computed in place in one
        (R, L) array, term by term in the order of DESIGN.md §3.
        """
        p = self.params
        delta = self.world.delta
        log_t = np.einsum("rf,rkf->rk", self.rho[sel], alpha)
        log_t *= delta
        log_t += (1.0 - delta) * 0.98
        np.maximum(log_t, 1e-300, out=log_t)
        np.log(log_t, out=log_t)
        log_t += self.world.log_user_scale[self.population_index[sel]][:, None]
        log_t += np.take(self._item_term, items)
        np.clip(log_t, _LOG_FLOOR, _LOG_CAP, out=log_t)
        topics = np.take(self._topic, items)
        new = take_rows(self.topic_share[sel], topics) < p.novelty_share
        # (2 nu - 1)(2 nov - 1): seekers (nu > 1/2) prefer new topics, others familiar ones. The literal
        # nu nov - (1 - nu)(1 - nov) of DESIGN.md gives every user the same new-vs-familiar gap.
        lean = 2.0 * self.novelty[sel][:, None] - 1.0
        novelty = np.where(new, lean, -lean)
        novelty *= p.novelty_weight
        bored = take_rows(self.boredom[sel], topics)
        bored *= p.boredom_weight
        utility = log_t
        utility *= p.affinity_weight
        utility += np.take(self._pop_term, items)
        utility += novelty
        utility -= bored
        return utility

    def utility(self, rows: np.ndarray, items: np.ndarray) -> np.ndarray:
        return self._utility(self._select(rows), items, np.take(self._alpha, items, axis=0))

    def _slate_utility(self, sel, slate_items: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Topic weights (R, K, f) of the shown items and their utility including the position term."""
        alpha = np.take(self._alpha, slate_items, axis=0)
        utility = self._utility(sel, slate_items, alpha)
        utility += self._position_term[: slate_items.shape[1]]
        return alpha, utility

    def _select(self, rows: np.ndarray):
        return selector(rows, len(self.population_index))

    def _draws(self, slate_size: int, choices: bool) -> rng.Layout:
        """The uniforms one response needs, drawn at once: the choice's (if ``choices``), watch, instruct."""
        key = (slate_size, choices)
        if key not in self._layouts:
            k = slate_size
            counts = {P_WATCH: 2 * k, P_INSTRUCT: 2}
            if choices:
                counts |= {P_MNL: k + 1} if self.config.choice_model == "mnl" else {P_CLICK: 2 * k}
                counts[P_LIKE] = k
            self._layouts[key] = rng.Layout(counts)
        return self._layouts[key]

    # ------------------------------------------------------------------ response
    def respond(self, rows: np.ndarray, slate_items: np.ndarray) -> Feedback:
        if self._kernel is not None:
            return self._kernel.respond(rows, slate_items)
        sel = self._select(rows)
        u = self.streams.draw(sel, self._draws(slate_items.shape[1], choices=True))
        alpha, utility = self._slate_utility(sel, slate_items)
        if self.config.choice_model == "mnl":
            clicked = self._choose_mnl(utility, u[P_MNL])
            examined = np.ones_like(clicked)
            leave_now = np.zeros(len(rows), dtype=bool)
        else:
            clicked, examined, leave_now = self._choose_cascade(sel, utility, u[P_CLICK])
        liked = clicked & (u[P_LIKE] < _sigmoid(utility - self.params.like_threshold))
        return self._finish(rows, sel, slate_items, alpha, utility, clicked, liked, examined, leave_now, u)

    def _choose_cascade(self, sel, utility, u):
        k = utility.shape[1]
        clicked = u[:, :k] < _sigmoid(utility - self.params.click_threshold)
        hazard = self.params.leave_hazard * (1.0 + self.fatigue[sel])[:, None] * ~clicked
        leaves = u[:, k:] < hazard
        leave_now = leaves.any(axis=1)
        last = np.where(leave_now, np.argmax(leaves, axis=1), k - 1)
        examined = np.arange(k)[None, :] <= last[:, None]
        return clicked & examined, examined, leave_now

    def _choose_mnl(self, utility, u):
        r, k = utility.shape
        p = self.params
        noclick = p.noclick_bias + p.noclick_length_weight * np.log(k)
        logits = np.concatenate([utility, np.full((r, 1), noclick)], axis=1)
        gumbel = -np.log(-np.log(u))
        choice = np.argmax(logits + gumbel, axis=1)
        return np.arange(k)[None, :] == choice[:, None]

    def apply_choices(self, rows, slate_items, clicked, liked, examined, leave_now) -> Feedback:
        """Feed externally decided choices (e.g. an LLM's) through the same outcome and mindset update."""
        sel = self._select(rows)
        u = self.streams.draw(sel, self._draws(slate_items.shape[1], choices=False))
        alpha, utility = self._slate_utility(sel, slate_items)
        examined = np.asarray(examined, dtype=bool)
        clicked = np.asarray(clicked, dtype=bool) & examined
        liked = np.asarray(liked, dtype=bool) & clicked
        return self._finish(
            rows, sel, slate_items, alpha, utility, clicked, liked, examined, np.asarray(leave_now, bool), u
        )

    def _finish(self, rows, sel, slate_items, alpha, utility, clicked, liked, examined, leave_now, u):
        """Watch time of the clicked items, the request's value to the user, then the mindset update."""
        k = utility.shape[1]
        noise = rng.normal_from_uniforms(u[P_WATCH][:, :k], u[P_WATCH][:, k:])
        fraction = _sigmoid(utility - self.params.watch_threshold + 0.5 * noise)
        watch = np.where(clicked, fraction * np.take(self._duration, slate_items), 0.0)
        value = np.where(clicked, fraction, 0.0).sum(axis=1) + 0.5 * liked.sum(axis=1)
        followed, left, instruction_type, instruction_topic = self._update(
            rows, sel, slate_items, alpha, clicked, examined, value, leave_now, u[P_INSTRUCT]
        )
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
            instruction_text=self.instruction_texts(instruction_type, instruction_topic),
        )

    def instruction_texts(self, kind: np.ndarray, topic: np.ndarray) -> np.ndarray | None:
        """The sentences of structured instructions, an object array ("" for none; None when nobody spoke)."""
        if not np.count_nonzero(kind):  # INSTRUCTION_NONE is 0 (count_nonzero: cheaper than any on few rows)
            return None
        return self._instruction_texts[kind, topic + 1]

    # ------------------------------------------------------------------ mindset
    def _update(self, rows, sel, slate_items, alpha, clicked, examined, value, leave_now, u_instruct):
        """Drift, topic share, boredom, fatigue, satisfaction and patience; then judge the pending instruction
        and maybe speak. Returns (followed, left, instruction type, instruction topic)."""
        p = self.params
        n_clicks = clicked.sum(axis=1)
        clicked_mass = np.einsum("rk,rkf->rf", clicked.astype(np.float64), alpha)  # (R, f)
        viewed_mass = np.einsum("rk,rkf->rf", examined.astype(np.float64), alpha)
        mean_clicked = clicked_mass / np.maximum(n_clicks, 1)[:, None]
        keep = p.drift ** n_clicks[:, None]  # 1 without clicks: rho unchanged
        rho = keep * self.rho[sel]
        rho += (1.0 - keep) * mean_clicked
        self.rho[sel] = rho
        share = self.topic_share[sel]  # the history before this slate, for the "new" instruction's verdict
        new_share = np.where((n_clicks > 0)[:, None], 0.8 * share + 0.2 * mean_clicked, share)
        boredom = p.boredom_decay_request * self.boredom[sel]
        boredom += p.boredom_gain_click * clicked_mass
        boredom += p.boredom_gain_view * viewed_mass
        self.boredom[sel] = boredom
        self.fatigue[sel] += p.fatigue_per_item * examined.sum(axis=1)
        self.satisfaction[sel] += p.satisfaction_rate * (value - self.satisfaction[sel])
        gain = value - p.expectation
        patience = self.patience[sel] + np.where(gain < 0, p.disappointment_cost * gain, 0.5 * gain)
        patience -= p.fatigue_cost * self.fatigue[sel]
        cap = self.world.patience[self.population_index[sel]]
        followed, patience = self._judge_pending(sel, slate_items, share, np.minimum(patience, cap))
        self.topic_share[sel] = new_share
        self.patience[sel] = patience
        left = leave_now | (patience <= 0.0)
        instruction_type, instruction_topic = self._maybe_instruct(rows, sel, left & ~leave_now, u_instruct)
        left &= instruction_type == INSTRUCTION_NONE
        return followed, left, instruction_type, instruction_topic

    def _judge_pending(self, sel, slate_items, share_before, patience):
        """Did this slate honour the pending instruction? Adjust patience and the pending state.

        Only the rows holding an instruction are judged; ``patience`` (a fresh array) is updated in place.
        """
        p = self.params
        pending_type = self.pending_type[sel]
        followed = np.full(len(pending_type), -1, dtype=np.int8)
        judged = np.flatnonzero(pending_type != INSTRUCTION_NONE)
        if not judged.size:
            return followed, patience
        at = _slots(sel, judged)
        kind, target = pending_type[judged], self.pending_topic[at]
        topics = np.take(self._topic, slate_items[judged])
        k = slate_items.shape[1]
        avoid_ok = (topics == target[:, None]).sum(axis=1) <= max(1, k // 10)
        related = take_rows(self._is_related[np.maximum(target, 0)], topics)
        related_ok = related.mean(axis=1) >= p.instruction_share
        new = take_rows(share_before[judged], topics) < p.novelty_share
        new_ok = new.mean(axis=1) >= p.instruction_share
        ok = (
            ((kind == INSTRUCTION_AVOID) & avoid_ok)
            | ((kind == INSTRUCTION_RELATED) & related_ok)
            | ((kind == INSTRUCTION_NEW) & new_ok)
        )
        followed[judged] = ok
        patience[judged] += np.where(ok, p.instruction_bonus, -p.instruction_penalty)
        self.satisfaction[at] += np.where(ok, p.instruction_satisfaction, -p.instruction_satisfaction)
        turns = self.pending_turns[at] - 1
        clear = ok | (turns <= 0)
        self.pending_turns[at] = np.where(clear, 0, turns)
        self.pending_topic[at] = np.where(clear, -1, target)
        self.pending_type[at] = np.where(clear, INSTRUCTION_NONE, kind)
        return followed, patience

    def _maybe_instruct(self, rows, sel, about_to_leave, u):
        """Users who sense they are about to disengage may speak instead: a structured reflective instruction.

        ``u`` holds two uniforms per row (P_INSTRUCT): whether to speak, and which kind when bored.
        """
        p = self.params
        r = len(rows)
        kind = np.zeros(r, dtype=np.int8)
        topic = np.full(r, -1, dtype=np.int64)
        boredom = self.boredom[sel]
        bored = boredom.max(axis=1) > p.instruction_boredom
        low = (self.patience[sel] < p.instruction_patience) | about_to_leave
        may_speak = np.flatnonzero((self.pending_type[sel] == INSTRUCTION_NONE) & (bored | low))
        at = _slots(sel, may_speak)
        speak = u[may_speak, 0] < self.world.instruction_propensity[self.population_index[at]]
        speakers, at = may_speak[speak], at[speak]
        if not speakers.size:
            return kind, topic
        bored = bored[speakers]
        bored_kind = np.where(u[speakers, 1] < 0.5, INSTRUCTION_AVOID, INSTRUCTION_RELATED)
        low_kind = np.where(self.novelty[at] > 0.5, INSTRUCTION_NEW, INSTRUCTION_RELATED)
        said = np.where(bored, bored_kind, low_kind).astype(np.int8)
        about = np.where(bored, np.argmax(boredom[speakers], axis=1), np.argmax(self.rho[at], axis=1))
        about = np.where(said != INSTRUCTION_NEW, about, -1)
        kind[speakers], topic[speakers] = said, about
        self.register_instruction(rows[speakers], said, about)
        self.patience[at] = np.maximum(self.patience[at], 0.5)
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
        if self._kernel is not None:
            return self._kernel.end_session(rows)
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


class _CompiledResponse:
    """:meth:`SyntheticUserModel.respond` by the compiled kernel (:mod:`recoworld.kernels.respond`)."""

    def __init__(self, model: SyntheticUserModel):
        from recoworld.kernels import respond, session

        self._respond, self._start_session, self._end_session = (
            respond.respond,
            session.start_session,
            session.end_session,
        )
        p, k = model.params, model.config.slate_size
        constants = respond.Constants(
            mnl=model.config.choice_model == "mnl",
            delta=float(model.world.delta),
            log_floor=float(_LOG_FLOOR),
            log_cap=float(_LOG_CAP),
            affinity_weight=p.affinity_weight,
            novelty_share=p.novelty_share,
            novelty_weight=p.novelty_weight,
            boredom_weight=p.boredom_weight,
            click_threshold=p.click_threshold,
            like_threshold=p.like_threshold,
            watch_threshold=p.watch_threshold,
            leave_hazard=p.leave_hazard,
            noclick=float(p.noclick_bias + p.noclick_length_weight * np.log(k)),
            drift=p.drift,
            boredom_decay_request=p.boredom_decay_request,
            boredom_gain_click=p.boredom_gain_click,
            boredom_gain_view=p.boredom_gain_view,
            fatigue_per_item=p.fatigue_per_item,
            satisfaction_rate=p.satisfaction_rate,
            expectation=p.expectation,
            disappointment_cost=p.disappointment_cost,
            fatigue_cost=p.fatigue_cost,
            instruction_share=p.instruction_share,
            instruction_bonus=p.instruction_bonus,
            instruction_penalty=p.instruction_penalty,
            instruction_satisfaction=p.instruction_satisfaction,
            instruction_boredom=p.instruction_boredom,
            instruction_patience=p.instruction_patience,
            instruction_turns=int(p.instruction_turns),
            novelty_kappa=p.novelty_kappa,
            boredom_decay_day=p.boredom_decay_day,
            fatigue_decay_day=p.fatigue_decay_day,
            return_bias=p.return_bias,
            return_satisfaction=p.return_satisfaction,
            return_fatigue=p.return_fatigue,
        )
        self.constants = tuple(constants)  # kernels take plain tuples (numba dispatches them faster)
        self.model = model

    def bind(self, m: SyntheticUserModel) -> None:
        """Point the kernel at ``m``'s (newly allocated) state arrays."""
        from recoworld.kernels.respond import UserArrays

        w = m.world
        self.arrays = tuple(UserArrays(
            m.population_index, m.rho, m.boredom, m.topic_share, m.novelty, m.fatigue, m.patience,
            m.satisfaction, m.pending_type, m.pending_topic, m.pending_turns, m._alpha, m._topic,
            m._duration, m._item_term, m._pop_term, m._position_term, w.log_user_scale, w.patience,
            w.instruction_propensity, m._is_related, m.novelty_trait, w.return_bias,
        ))  # fmt: skip

    def start_session(self, rows: np.ndarray, gap_days: np.ndarray) -> None:
        streams = self.model.streams
        self._start_session(rows, gap_days, streams.keys, streams.counter, self.constants, self.arrays)

    def end_session(self, rows: np.ndarray) -> np.ndarray:
        streams = self.model.streams
        return self._end_session(rows, streams.keys, streams.counter, self.constants, self.arrays)

    def respond(self, rows: np.ndarray, slate_items: np.ndarray) -> Feedback:
        m = self.model
        if slate_items.shape[1] > len(m._position_term):
            raise ValueError(
                f"slate_items: at most {len(m._position_term)} items per row, got {slate_items.shape}"
            )
        streams = m.streams
        return self.feedback(
            self._respond(rows, slate_items, streams.keys, streams.counter, self.constants, self.arrays)
        )

    def feedback(self, out) -> Feedback:
        """The :class:`Feedback` of kernel outputs (:class:`recoworld.kernels.respond.Outputs`)."""
        return Feedback(
            clicked=out.clicked,
            liked=out.liked,
            examined=out.examined,
            watch_minutes=out.watch,
            left=out.left,
            instruction_type=out.instruction_type,
            instruction_topic=out.instruction_topic,
            instruction_followed=out.followed,
            true_utility=out.utility,
            instruction_text=self.model.instruction_texts(out.instruction_type, out.instruction_topic),
        )
