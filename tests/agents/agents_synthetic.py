"""Synthetic RecoWorld-shaped observations and a tiny vector environment for the agent tests.

Both follow docs/interfaces.md (leading batch dimension N) so that the agents can be tested without the real
simulator; ``ToyVecEnv`` has a known click model (users click candidates of the topics they like) so learning
can be checked quickly.
"""

from __future__ import annotations

import numpy as np

C, G, E, H, K = 50, 20, 16, 10, 10


def synthetic_obs(
    n: int,
    seed: int = 0,
    *,
    c: int = C,
    g: int = G,
    e: int = E,
    h: int = H,
    latent: bool = False,
    instruction: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    emb = rng.standard_normal((n, c, e))
    emb /= np.linalg.norm(emb, axis=2, keepdims=True)
    hist = rng.standard_normal((n, h, e))
    hist /= np.linalg.norm(hist, axis=2, keepdims=True)
    filled = rng.integers(0, h + 1, size=n)
    empty = np.arange(h)[None, :] >= filled[:, None]
    hist[empty] = 0.0
    fb = np.where(empty, 0.0, rng.uniform(0.05, 1.0, (n, h)))
    th = rng.dirichlet(np.ones(g), size=n)
    ctx = np.zeros((n, 5))
    ctx[:, 0] = rng.uniform(0, 1, n)
    ctx[:, 4] = rng.random(n) < 0.3
    instr = np.zeros((n, 4 + g), dtype=np.float32) if instruction is None else instruction
    obs = {
        "candidate_embedding": emb.astype(np.float32),
        "candidate_topic": rng.integers(0, g, size=(n, c)).astype(np.int64),
        "candidate_popularity": rng.uniform(0, 1, (n, c)).astype(np.float32),
        "candidate_novelty": (rng.random((n, c)) < 0.3).astype(np.int8),
        "history_embedding": hist.astype(np.float32),
        "history_feedback": fb.astype(np.float32),
        "topic_histogram": th.astype(np.float32),
        "context": ctx.astype(np.float32),
        "instruction": instr,
    }
    if latent:
        lat = np.concatenate(
            [rng.dirichlet(np.ones(g), size=n), rng.uniform(0, 0.5, (n, g)), rng.uniform(0, 1, (n, 4))],
            axis=1,
        )
        obs["latent"] = lat.astype(np.float32)
    return obs


def synthetic_info(n: int, k: int = K, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed + 1)
    examined = np.cumsum(rng.random((n, k)) < 0.1, axis=1) == 0
    examined[:, 0] = True
    clicked = examined & (rng.random((n, k)) < 0.3)
    return {
        "clicked": clicked,
        "_clicked": np.ones(n, dtype=bool),
        "examined": examined,
        "liked": clicked & (rng.random((n, k)) < 0.3),
        "watch_minutes": clicked * rng.uniform(0, 5, (n, k)),
        "session_ended": rng.random(n) < 0.1,
        "churned": np.zeros(n, dtype=bool),
        "instruction_followed": -np.ones(n, dtype=np.int64),
    }


class ToyVecEnv:
    """A minimal batched recommendation world with the RecoWorld observation/info layout.

    Items have a topic and an embedding (topic direction + noise). User ``u`` has interest weights over
    topics;
    P(click) = sigmoid(4·interest[topic]·G/3 − 2.5 + 0.5·pop − 0.3·log(1 + position)) under a cascade that
    stops
    after each slot with probability 0.1. A session lasts 5 requests; an episode 3 sessions; then a new user.
    """

    def __init__(self, num_envs: int, seed: int = 0, *, num_items: int = 600, latent: bool = False):
        self.n = num_envs
        rng = np.random.default_rng(12345)
        self.item_topic = rng.integers(0, G, num_items)
        proj = rng.standard_normal((G, E))
        proj /= np.linalg.norm(proj, axis=1, keepdims=True)
        emb = proj[self.item_topic] + 0.1 * rng.standard_normal((num_items, E))
        self.item_emb = (emb / np.linalg.norm(emb, axis=1, keepdims=True)).astype(np.float32)
        self.item_pop = rng.uniform(0, 1, num_items)
        self.num_items = num_items
        self.latent = latent
        self.rng = np.random.default_rng(seed)

    def _new_users(self, rows):
        self.interest[rows] = self.rng.dirichlet(np.full(G, 0.3), size=len(rows))
        self.turn[rows] = 0
        self.session[rows] = 0
        self.hist[rows] = 0
        self.hist_fb[rows] = 0
        self.th[rows] = 0

    def reset(self, seed=None):
        if seed is not None:
            self.rng = np.random.default_rng(seed)
        n = self.n
        self.interest = np.zeros((n, G))
        self.turn = np.zeros(n, dtype=np.int64)
        self.session = np.zeros(n, dtype=np.int64)
        self.hist = np.zeros((n, H, E), dtype=np.float32)
        self.hist_fb = np.zeros((n, H), dtype=np.float32)
        self.th = np.zeros((n, G))
        self._new_users(np.arange(n))
        return self._obs(), {}

    def _obs(self):
        n = self.n
        self.cand = self.rng.integers(0, self.num_items, (n, C))
        topic = self.item_topic[self.cand]
        nov = self.th[np.arange(n)[:, None], topic] < 0.05
        ctx = np.zeros((n, 5), dtype=np.float32)
        ctx[:, 0] = self.turn / 5
        ctx[:, 2] = self.session / 3
        ctx[:, 3] = self.session / 3
        ctx[:, 4] = self.turn == 0
        obs = {
            "candidate_embedding": self.item_emb[self.cand],
            "candidate_topic": topic.astype(np.int64),
            "candidate_popularity": self.item_pop[self.cand].astype(np.float32),
            "candidate_novelty": nov.astype(np.int8),
            "history_embedding": self.hist.copy(),
            "history_feedback": self.hist_fb.copy(),
            "topic_histogram": (self.th / np.maximum(self.th.sum(1, keepdims=True), 1e-9)).astype(np.float32),
            "context": ctx,
            "instruction": np.zeros((n, 4 + G), dtype=np.float32),
        }
        if self.latent:
            obs["latent"] = np.concatenate([self.interest, np.zeros((n, G)), np.zeros((n, 4))], 1).astype(
                np.float32
            )
        return obs

    def click_prob(self, items, positions):
        rows = np.arange(self.n)[:, None]
        interest = self.interest[rows, self.item_topic[items]]
        z = 4 * interest * G / 3 - 2.5 + 0.5 * self.item_pop[items] - 0.3 * np.log1p(positions)
        return 1 / (1 + np.exp(-z))

    def step(self, action):
        action = np.asarray(action)
        n = self.n
        items = self.cand[np.arange(n)[:, None], action]
        p = self.click_prob(items, np.arange(K)[None, :])
        stop = self.rng.random((n, K)) < 0.1
        examined = np.concatenate([np.ones((n, 1), bool), np.cumsum(stop[:, :-1], axis=1) == 0], axis=1)
        clicked = examined & (self.rng.random((n, K)) < p)
        watch = clicked * 3.0 * p
        for r in range(n):
            for k in np.flatnonzero(clicked[r]):
                self.hist[r] = np.roll(self.hist[r], 1, axis=0)
                self.hist_fb[r] = np.roll(self.hist_fb[r], 1)
                self.hist[r, 0] = self.item_emb[items[r, k]]
                self.hist_fb[r, 0] = p[r, k]
                self.th[r] *= 0.95
                self.th[r, self.item_topic[items[r, k]]] += 1
        reward = watch.sum(axis=1)
        self.turn += 1
        ended = self.turn >= 5
        self.session[ended] += 1
        self.turn[ended] = 0
        done = self.session >= 3
        info = {
            "clicked": clicked,
            "_clicked": np.ones(n, bool),
            "examined": examined,
            "watch_minutes": watch,
            "session_ended": ended,
            "churned": np.zeros(n, bool),
            "instruction_followed": -np.ones(n, dtype=np.int64),
        }
        if done.any():
            self._new_users(np.flatnonzero(done))
        return self._obs(), reward, done, np.zeros(n, bool), info


def run_toy(agent, n: int = 64, steps: int = 60, seed: int = 0) -> float:
    """Mean reward per user-step of ``agent`` (learning online) on :class:`ToyVecEnv`."""
    env = ToyVecEnv(n, seed=seed, latent=True)
    obs, _ = env.reset(seed=seed)
    total = 0.0
    for _ in range(steps):
        a = agent.act(obs)
        nxt, r, term, trunc, info = env.step(a)
        agent.update(obs, a, r, info)
        total += r.sum()
        obs = nxt
    return total / (n * steps)
