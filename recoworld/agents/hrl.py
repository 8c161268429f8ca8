"""Hierarchical RL for novelty-seeking intent (after Li et al. 2023), with the fixed-propensity ablation.

* **High level** (torch): at the first request of every session (``context[4] == 1``) and again every
  ``replan_every`` requests (default 1; ``None``: session start only) a policy network picks a novelty
  propensity ``p`` from a few discrete levels (``propensities``). It sees the user's long-term summary — topic
  histogram and its entropy, history feedback, the session context, sessions served, their mean return and the
  novelty evidence of all this user's clicks so far (:func:`novelty_evidence` of the novel vs familiar click
  tallies: a θ estimate) — and the novelty evidence of the current session's clicks (this session's lean ν).
  It is trained as an actor-critic: each decision's option return is the session's return until the next
  decision (the environment's rewards plus the diversity and novelty terms of Chen et al. 2021,
  ``diversity_weight · (1 − mean pairwise same-topic)`` and ``novelty_weight · mean(1 − popularity)`` of each
  slate; ``candidate_popularity`` is log-scaled, so ``1 − popularity`` is an affine stand-in for −log
  p(item)); advantages are generalised advantage estimates over the session (:func:`gae`; ``discount``,
  ``gae_lambda``: λ = 1 credits the rest of the session, λ = 0 the option's return plus the value of the next
  decision) against the policy's value head; each batch of ``batch_options`` decisions takes ``epochs``
  clipped policy-gradient steps (PPO's surrogate) with an entropy bonus.
* **Low level**: relevance scores from a model of clicks on user ⊗ item features (``relevance="linear"``: the
  Bayesian ridge of LinUCB, posterior mean; ``"mlp"``: a torch MLP trained by logistic loss), conditioned on
  the propensity: ``score = relevance + p · s · candidate_novelty`` where ``s`` is the row's spread (standard
  deviation) of relevance scores, so that propensities are unit-free; the slate is the top K after the same
  topic-diversity re-ranking as the bandits (``diversity``). The first slate of a session is a *probe*:
  ``probe_share`` of its slots (:func:`probe_slots`) hold the most relevant novel candidates, the rest the
  most relevant familiar ones, so that this session's clicks carry evidence of its novelty lean.
* ``fixed_propensity=p`` gives the same low level (probe included) with a constant propensity and no high
  level (``hrl_fixed``).

torch is imported lazily, when an agent is built; ``import recoworld.agents`` does not need it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .bandits import BayesLinear
from .base import (
    CTX_FIRST,
    BaseRecommender,
    Info,
    Observation,
    ObsSpec,
    diversified_top_k,
    feedback_mask,
    new_episode_rows,
)
from .features import Featurizer, feature_dim, intra_slate_diversity


def _require_torch():
    try:
        import torch
    except ImportError as exc:  # pragma: no cover - exercised only without torch
        raise ImportError(
            "the hierarchical RL agent needs PyTorch: pip install recoworld[rl] (or pip install torch)"
        ) from exc
    return torch


DEFAULT_PROPENSITIES = (-2.0, -1.0, 0.0, 1.0, 2.0)


class HRLAgent(BaseRecommender):
    """Hierarchical novelty-propensity agent; see the module docstring for the arguments' meaning."""

    name = "hrl"

    def __init__(
        self,
        *,
        slate_size: int = 10,
        seed: int | None = None,
        spec: ObsSpec | None = None,
        propensities: Sequence[float] = DEFAULT_PROPENSITIES,
        fixed_propensity: float | None = None,
        relevance: str = "linear",
        diversity_weight: float = 0.5,
        novelty_weight: float = 0.5,
        replan_every: int | None = 1,
        discount: float = 1.0,
        gae_lambda: float = 0.0,
        epochs: int = 4,
        clip: float = 0.2,
        hidden: int = 64,
        lr: float = 1e-3,
        low_lr: float = 3e-3,
        entropy_weight: float = 0.01,
        value_weight: float = 0.5,
        batch_options: int = 512,
        neutral_bias: float = 2.0,
        max_turns: int = 20,
        use_exposure: bool = True,
        diversity: float = 1.0,
        probe_share: float = 0.5,
    ):
        self.torch = _require_torch()
        self.features = Featurizer(use_exposure)
        self.diversity = float(diversity)
        if relevance not in ("linear", "mlp"):
            raise ValueError(f"relevance must be 'linear' or 'mlp', got {relevance!r}")
        if not (0.0 <= discount <= 1.0 and 0.0 <= gae_lambda <= 1.0):
            raise ValueError(f"discount and gae_lambda must lie in [0, 1], got {discount!r}, {gae_lambda!r}")
        if epochs < 1:
            raise ValueError(f"epochs must be a positive integer, got {epochs!r}")
        self.discount, self.gae_lambda = float(discount), float(gae_lambda)
        self.epochs, self.clip = int(epochs), float(clip)
        if replan_every is not None and replan_every < 1:
            raise ValueError(f"replan_every must be a positive integer or None, got {replan_every!r}")
        if not 0.0 <= probe_share <= 1.0:
            raise ValueError(f"probe_share must lie in [0, 1], got {probe_share!r}")
        self.probe_share = float(probe_share)
        self.propensities = np.asarray(propensities, dtype=np.float64)
        if self.propensities.ndim != 1 or self.propensities.size < 1:
            raise ValueError("propensities must be a non-empty sequence of numbers")
        self.fixed_propensity = None if fixed_propensity is None else float(fixed_propensity)
        self.relevance = relevance
        self.diversity_weight = float(diversity_weight)
        self.novelty_weight = float(novelty_weight)
        self.replan_every = replan_every
        self.hidden = int(hidden)
        self.lr, self.low_lr = float(lr), float(low_lr)
        self.entropy_weight, self.value_weight = float(entropy_weight), float(value_weight)
        self.batch_options = int(batch_options)
        self.neutral_bias = float(neutral_bias)
        self.deterministic = False  # True: the high level takes its most probable level (evaluation)
        self.max_turns = int(max_turns)
        if fixed_propensity is not None:
            self.name = "hrl_fixed"
        super().__init__(slate_size=slate_size, seed=seed, spec=spec)

    # ------------------------------------------------------------------ state
    def _reset_users(self) -> None:
        self._rows = 0
        self.features.reset()

    def _reset_state(self) -> None:
        self.ridge = None
        self.mlp = self.policy = None
        self._buffer: list[tuple[np.ndarray, ...]] = []  # per session: states, levels, log-probs, rewards
        self._buffered = 0  # decisions in the buffer
        self._ret_sq, self._ret_count = 1.0, 0  # running mean square of the returns-to-go (reward scale)
        self.stats: dict[str, Any] = {
            "high_level_updates": 0,
            "level_counts": np.zeros(len(self.propensities)),
        }
        if self.spec is not None:
            self._build(self.spec)

    def _build(self, spec: ObsSpec) -> None:
        torch = self.torch
        d = feature_dim(spec.embedding_dim)
        self.ridge = BayesLinear(d, 1.0, 0.25)
        init_seed = int(self.rng.integers(2**31))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(init_seed)
            nn = torch.nn
            self.mlp = nn.Sequential(nn.Linear(d, self.hidden), nn.ReLU(), nn.Linear(self.hidden, 1)).double()
            s = self.state_dim(spec)
            self.policy = nn.Sequential(
                nn.Linear(s, self.hidden),
                nn.Tanh(),
                nn.Linear(self.hidden, self.hidden),
                nn.Tanh(),
                nn.Linear(self.hidden, len(self.propensities) + 1),
            ).double()
            with torch.no_grad():  # start near the neutral level: deviate only where returns say so
                self.policy[-1].bias[int(np.argmin(np.abs(self.propensities)))] += self.neutral_bias
        self.mlp_opt = torch.optim.Adam(self.mlp.parameters(), lr=self.low_lr)
        self.policy_opt = torch.optim.Adam(self.policy.parameters(), lr=self.lr)

    @staticmethod
    def state_dim(spec: ObsSpec) -> int:
        return spec.num_topics + 19

    def _check(self, obs: Observation) -> None:
        super()._check(obs)
        if self.ridge is None:
            self._build(self.spec)
        n = obs["candidate_topic"].shape[0]
        if self._rows != n:
            self._alloc(n)

    def _alloc(self, n: int) -> None:
        self._rows = n
        self.level = np.zeros(n, dtype=np.int64)
        self.open = np.zeros(n, dtype=bool)
        # per row, the open session's decisions: (state, level, log-probability, session return so far)
        self.decisions: list[list[tuple[np.ndarray, int, float, float]]] = [[] for _ in range(n)]
        self.session_cum = np.zeros(n)  # the session's return so far (rewards + bonuses)
        self.turns_in_option = np.zeros(n, dtype=np.int64)
        # per-user long-term tallies: [novel examined, novel clicked, familiar examined, familiar clicked]
        self.user_tally = np.zeros((n, 4))
        self.session_tally = np.zeros((n, 4))
        self.user_sessions = np.zeros(n)
        self.user_return_sum = np.zeros(n)
        self.session_return = np.zeros(n)

    # ------------------------------------------------------------------ high level
    def high_level_state(self, obs: Observation) -> np.ndarray:
        """(N, G + 19) summary the high-level policy sees: long-term (topic histogram, its entropy and peak,
        history feedback, context, this user's past sessions and their mean return, the novelty evidence of
        all the user's clicks so far) and in-session (the novelty evidence of this session's clicks)."""
        hist = np.asarray(obs["topic_histogram"], dtype=np.float64)
        tot = hist.sum(axis=1, keepdims=True)
        p = hist / np.where(tot > 0, tot, 1.0)
        ent = -(p * np.log(np.where(p > 0, p, 1.0))).sum(axis=1) / np.log(max(hist.shape[1], 2))
        fb = np.asarray(obs["history_feedback"], dtype=np.float64)
        filled = (fb > 0).mean(axis=1)
        ctx = np.asarray(obs["context"], dtype=np.float64)
        mean_ret = self.user_return_sum / np.maximum(self.user_sessions, 1)
        extra = np.column_stack(
            [
                ent,
                hist.max(axis=1),
                fb.mean(axis=1),
                filled,
                np.tanh(self.user_sessions / 5),
                np.tanh(mean_ret / 50),
            ]
        )
        return np.concatenate(
            [hist, extra, ctx, novelty_evidence(self.user_tally), novelty_evidence(self.session_tally)],
            axis=1,
        )

    def _policy_probs(self, states: np.ndarray) -> np.ndarray:
        torch = self.torch
        with torch.no_grad():
            out = self.policy(torch.as_tensor(states, dtype=torch.float64))
            return torch.softmax(out[:, :-1], dim=1).numpy()

    def _decide(self, obs: Observation, rows: np.ndarray) -> None:
        """A high-level decision (a propensity level) for ``rows``, credited when the session ends."""
        if rows.size == 0:
            return
        state = self.high_level_state(obs)[rows]
        if self.fixed_propensity is None:
            probs = self._policy_probs(state)
            u = self.rng.random(len(rows))
            a = np.minimum((np.cumsum(probs, axis=1) < u[:, None]).sum(axis=1), len(self.propensities) - 1)
            if self.deterministic:
                a = np.argmax(probs, axis=1)
            logp = np.log(probs[np.arange(len(rows)), a])
        else:
            a, logp = np.zeros(len(rows), dtype=np.int64), np.zeros(len(rows))
        self.level[rows] = a
        for j, r in enumerate(rows.tolist()):
            self.decisions[r].append((state[j], int(a[j]), float(logp[j]), float(self.session_cum[r])))
        self.turns_in_option[rows] = 0
        self.open[rows] = True
        np.add.at(self.stats["level_counts"], a, 1)

    def _close(self, rows: np.ndarray) -> None:
        """The session of ``rows`` ended: buffer its decisions with each option's return (the session's return
        from the decision to the next one, or to the end)."""
        rows = rows[self.open[rows]]
        if rows.size == 0:
            return
        for r in rows.tolist():
            if self.fixed_propensity is None and self.learning:
                states, levels, logps, at = zip(*self.decisions[r], strict=True)
                rewards = np.diff(np.append(at, self.session_cum[r]))
                self._buffer.append((np.stack(states), np.array(levels), np.array(logps), rewards))
                self._buffered += len(levels)
            self.decisions[r] = []
        self.session_cum[rows] = 0.0
        self.open[rows] = False
        if self._buffered >= self.batch_options:
            self._train_high_level()

    def _train_high_level(self) -> None:
        """Actor-critic update on the buffered sessions: GAE advantages (``discount``, ``gae_lambda``) from
        the value head, then ``epochs`` clipped policy-gradient steps (PPO's surrogate; one step is REINFORCE
        with a baseline)."""
        torch = self.torch
        sessions, self._buffer, self._buffered = self._buffer, [], 0
        states = torch.as_tensor(np.concatenate([b[0] for b in sessions]), dtype=torch.float64)
        actions = torch.as_tensor(np.concatenate([b[1] for b in sessions]), dtype=torch.int64)
        logp_old = torch.as_tensor(np.concatenate([b[2] for b in sessions]), dtype=torch.float64)
        to_go = np.concatenate([np.cumsum(b[3][::-1])[::-1] for b in sessions])
        self._ret_count += 1
        self._ret_sq += (float(np.mean(to_go**2)) - self._ret_sq) / min(self._ret_count, 20)
        scale = np.sqrt(self._ret_sq) + 1e-8
        with torch.no_grad():
            values = self.policy(states)[:, -1].numpy()
        bounds = np.cumsum([0] + [len(b[3]) for b in sessions])
        adv = np.concatenate(
            [
                gae(b[3] / scale, values[lo:hi], self.discount, self.gae_lambda)
                for b, lo, hi in zip(sessions, bounds[:-1], bounds[1:], strict=True)
            ]
        )
        target = torch.as_tensor(adv + values, dtype=torch.float64)
        adv = torch.as_tensor((adv - adv.mean()) / (adv.std() + 1e-8), dtype=torch.float64)
        for _ in range(self.epochs):
            out = self.policy(states)
            logp = torch.log_softmax(out[:, :-1], dim=1)
            ratio = torch.exp(logp.gather(1, actions[:, None])[:, 0] - logp_old)
            pg = -torch.minimum(ratio * adv, ratio.clamp(1 - self.clip, 1 + self.clip) * adv).mean()
            ent = -(logp.exp() * logp).sum(dim=1).mean()
            loss = pg + self.value_weight * ((out[:, -1] - target) ** 2).mean() - self.entropy_weight * ent
            self.policy_opt.zero_grad()
            loss.backward()
            self.policy_opt.step()
        self.stats["high_level_updates"] += 1

    def propensity(self) -> np.ndarray:
        """(N,) the propensity currently in force per row."""
        if self.fixed_propensity is not None:
            return np.full(self._rows, self.fixed_propensity)
        return self.propensities[self.level]

    # ------------------------------------------------------------------ low level
    def relevance_scores(self, obs: Observation) -> np.ndarray:
        X = self.features.candidates(obs)
        if self.relevance == "linear":
            return self.ridge.mean(X)
        torch = self.torch
        with torch.no_grad():
            return self.mlp(torch.as_tensor(X, dtype=torch.float64))[..., 0].numpy()

    def _score(self, obs: Observation) -> np.ndarray:
        return self._lean(self.relevance_scores(obs), obs)

    def _lean(self, rel: np.ndarray, obs: Observation) -> np.ndarray:
        """Low level: relevance + propensity × (relevance spread of the row) × novelty flag."""
        nov = np.asarray(obs["candidate_novelty"], dtype=np.float64)
        spread = rel.std(axis=1, keepdims=True)
        spread = np.where(spread > 0, spread, 1.0)
        return rel + self.propensity()[:, None] * spread * nov

    def _act(self, obs: Observation) -> np.ndarray:
        fresh = new_episode_rows(obs)
        if fresh.any():
            rows = np.flatnonzero(fresh)
            self._close(rows)
            for arr in (self.user_tally, self.session_tally):
                arr[rows] = 0.0
            self.user_sessions[rows] = 0.0
            self.user_return_sum[rows] = 0.0
            self.session_return[rows] = 0.0
        ctx = np.asarray(obs["context"], dtype=np.float64)
        start = ctx[:, CTX_FIRST] > 0.5
        start_rows = np.flatnonzero(start)
        if start_rows.size:
            self._close(start_rows)
            self.session_tally[start_rows] = 0.0
            self.session_return[start_rows] = 0.0
        decide = start | ~self.open
        if self.replan_every is not None:
            decide |= self.open & (self.turns_in_option >= self.replan_every)
        self._decide(obs, np.flatnonzero(decide))
        rel = self.relevance_scores(obs)
        slates = diversified_top_k(
            self._lean(rel, obs), obs["candidate_topic"], self.slate_size, self.diversity
        )
        if self.probe_share > 0 and start_rows.size:
            self._probe(obs, rel, start_rows, slates)
        return slates

    def _probe(self, obs: Observation, rel: np.ndarray, rows: np.ndarray, slates: np.ndarray) -> None:
        """Replace the first slate of a session by a probe: ``probe_share`` of its slots, spread evenly down
        the slate, hold the most relevant novel candidates, the others the most relevant familiar ones (each
        group topic-diversified); rows without enough candidates of either kind keep their slate."""
        k = self.slate_size
        novel_slots = probe_slots(k, self.probe_share)
        m = int(novel_slots.sum())
        nov = np.asarray(obs["candidate_novelty"], dtype=bool)[rows]
        enough = (nov.sum(axis=1) >= m) & ((~nov).sum(axis=1) >= k - m)
        rows, nov = rows[enough], nov[enough]
        if rows.size == 0:
            return
        rel = rel[rows]
        topics = np.asarray(obs["candidate_topic"])[rows]
        novel = diversified_top_k(np.where(nov, rel, -np.inf), topics, m, self.diversity)
        familiar = diversified_top_k(np.where(nov, -np.inf, rel), topics, k - m, self.diversity)
        probe = np.empty((rows.size, k), dtype=np.int64)
        probe[:, novel_slots], probe[:, ~novel_slots] = novel, familiar
        slates[rows] = probe

    def _update(self, obs: Observation, action: np.ndarray, reward: np.ndarray, info: Info) -> None:
        self._check(obs)
        n, k = action.shape
        mask = feedback_mask(info, n, k)
        clicked = np.asarray(info["clicked"], dtype=bool).reshape(n, k) & mask
        nov = np.take_along_axis(np.asarray(obs["candidate_novelty"], dtype=bool), action, axis=1)
        topics = np.take_along_axis(np.asarray(obs["candidate_topic"], dtype=np.int64), action, axis=1)
        pop = np.take_along_axis(np.asarray(obs["candidate_popularity"], dtype=np.float64), action, axis=1)
        served = mask.any(axis=1)
        tally = np.stack(
            [(mask & nov).sum(1), (clicked & nov).sum(1), (mask & ~nov).sum(1), (clicked & ~nov).sum(1)],
            axis=1,
        ).astype(np.float64)
        self.user_tally += tally
        self.session_tally += tally
        bonus = self.diversity_weight * intra_slate_diversity(topics) + self.novelty_weight * (
            1.0 - pop
        ).mean(1)
        step_return = np.where(served, reward + bonus, 0.0)
        self.session_cum += np.where(self.open, step_return, 0.0)
        self.session_return += np.where(served, reward, 0.0)
        self.turns_in_option += served
        ended = np.asarray(info.get("session_ended", np.zeros(n, dtype=bool)), dtype=bool).reshape(n) & served
        if ended.any():
            rows = np.flatnonzero(ended)
            self.user_sessions[rows] += 1
            self.user_return_sum[rows] += self.session_return[rows]
            self._close(rows)
        if self.learning and mask.any():
            self._learn_relevance(obs, action, mask, clicked)
        self.features.record(obs, action, clicked, mask)

    def _learn_relevance(self, obs, action, mask, clicked) -> None:
        rows = np.flatnonzero(mask.any(axis=1))
        X = self.features.slots(obs, action, rows)[mask[rows]]
        y = clicked[rows][mask[rows]].astype(np.float64)
        if self.relevance == "linear":
            self.ridge.update(X, y)
            return
        torch = self.torch
        if len(y) > 4096:
            pick = self.rng.choice(len(y), 4096, replace=False)
            X, y = X[pick], y[pick]
        logits = self.mlp(torch.as_tensor(X))[:, 0]
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, torch.as_tensor(y))
        self.mlp_opt.zero_grad()
        loss.backward()
        self.mlp_opt.step()


def gae(rewards: np.ndarray, values: np.ndarray, discount: float, lam: float) -> np.ndarray:
    """Generalised advantage estimates of one session's decisions (the value after the last one is 0):
    ``lam = 1`` gives the discounted rest of the session minus the value, ``discount = 0`` the option's own
    return minus the value."""
    adv = np.zeros(len(rewards))
    running, next_value = 0.0, 0.0
    for t in range(len(rewards) - 1, -1, -1):
        delta = rewards[t] + discount * next_value - values[t]
        running = delta + discount * lam * running
        adv[t], next_value = running, values[t]
    return adv


def novelty_evidence(tally: np.ndarray) -> np.ndarray:
    """(N, 4) features of click tallies ``[novel examined, novel clicked, familiar examined, familiar
    clicked]``: the Beta(1, 1) posterior means of the novel and the familiar click rate, the log-odds of the
    first over the second (the evidence of a novelty lean) and the amount of evidence ``log1p(min(novel
    examined, familiar examined)) / 3``."""
    ne, nc, fe, fc = np.asarray(tally, dtype=np.float64).T
    p_novel, p_familiar = (nc + 1) / (ne + 2), (fc + 1) / (fe + 2)
    lean = np.log(p_novel / (1 - p_novel)) - np.log(p_familiar / (1 - p_familiar))
    return np.column_stack([p_novel, p_familiar, lean, np.log1p(np.minimum(ne, fe)) / 3])


def probe_slots(k: int, share: float) -> np.ndarray:
    """(k,) bool: ``round(share · k)`` slots for novel candidates, spread evenly down the slate and starting
    below a familiar one (``share = 0.5``: slots 1, 3, 5, …)."""
    m = int(round(share * k))
    j = np.arange(k)
    return (j + 1) * m // k > j * m // k


__all__ = ["DEFAULT_PROPENSITIES", "HRLAgent", "gae", "novelty_evidence", "probe_slots"]
