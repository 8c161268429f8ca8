"""Batch invariance, bad input and the mechanisms of the synthetic user (DESIGN.md §1, §3)."""

import gymnasium as gym
import numpy as np
import pytest
from envtools import SYNTHETIC_IDS, random_slates

import recoworld  # noqa: F401
from recoworld.envs.slates import InvalidActionError, deduplicate

TRACKED = ("slate_items", "clicked", "watch_minutes", "instruction_type", "user_index", "day", "turn")


def _record(obs, reward, terminated, truncated, info, i=None):
    pick = (lambda v: v) if i is None else (lambda v: v[i])
    return (
        pick(obs["candidate_embedding"]),
        pick(obs["context"]),
        pick(reward),
        pick(terminated),
        pick(truncated),
        *(pick(info[k]) for k in TRACKED),
    )


@pytest.mark.parametrize("env_id", SYNTHETIC_IDS)
@pytest.mark.parametrize("num_envs", [1, 7, 64])
def test_batch_invariance(env_id, num_envs, rng):
    """Sub-env i of make_vec(seed=s) follows gym.make(seed=s + i) exactly, across autoresets too."""
    _check_batch_invariance(env_id, num_envs, rng, {})


@pytest.mark.parametrize("env_id", SYNTHETIC_IDS[:3])
def test_batch_invariance_of_the_numpy_reference(env_id, rng):
    """As above for the numpy backend (the default is the compiled one where numba is installed)."""
    _check_batch_invariance(env_id, 7, rng, {"kernel": "numpy"})


def _check_batch_invariance(env_id: str, num_envs: int, rng, kwargs: dict) -> None:
    envs = gym.make_vec(env_id, num_envs=num_envs, vectorization_mode="vector_entry_point", **kwargs)
    obs, _ = envs.reset(seed=100)
    applied = [[] for _ in range(num_envs)]  # (action, record) pairs actually served to each sub-env
    restarting = np.zeros(num_envs, dtype=bool)
    for _ in range(60):
        action = random_slates(rng, num_envs)
        obs, reward, terminated, truncated, info = envs.step(action)
        for i in np.flatnonzero(~restarting):
            applied[i].append((action[i], _record(obs, reward, terminated, truncated, info, i)))
        restarting = terminated | truncated
    for i in sorted({0, num_envs // 2, num_envs - 1}):
        env = gym.make(env_id, **kwargs).unwrapped
        env.reset(seed=100 + i)
        for action, expected in applied[i]:
            obs, reward, terminated, truncated, info = env.step(action)
            actual = _record(obs, reward, terminated, truncated, info)
            for a, b in zip(actual, expected, strict=True):
                np.testing.assert_array_equal(a, b)
            if terminated or truncated:
                env.reset()


@pytest.mark.parametrize(
    "action, message",
    [
        (np.zeros(9, dtype=np.int64), "shape"),
        (np.full(10, 50), "out of range"),
        (np.full(10, -1), "out of range"),
        (np.full(10, np.nan), "NaN"),
        (np.zeros(10, dtype=np.float32), "dtype"),
        (np.array(["a"] * 10), "dtype"),
    ],
)
def test_malformed_action_is_rejected_and_env_stays_usable(action, message):
    env = gym.make("RecoWorld-v0").unwrapped
    reference = gym.make("RecoWorld-v0").unwrapped
    env.reset(seed=3)
    reference.reset(seed=3)
    with pytest.raises(InvalidActionError, match=message):
        env.step(action)
    good = np.arange(10)
    a, b = env.step(good), reference.step(good)
    np.testing.assert_array_equal(a[4]["slate_items"], b[4]["slate_items"])
    assert a[1] == b[1]


def test_vector_env_rejects_bad_batch_and_keeps_state(rng):
    envs = gym.make_vec("RecoWorld-v0", num_envs=4, vectorization_mode="vector_entry_point")
    envs.reset(seed=0)
    with pytest.raises(InvalidActionError, match="shape"):
        envs.step(np.zeros((3, 10), dtype=np.int64))
    obs, reward, *_ = envs.step(random_slates(rng, 4))
    assert reward.shape == (4,)


@pytest.mark.parametrize("kernel", ["numpy", "auto"])
def test_action_of_a_restarting_sub_env_is_ignored_even_if_malformed(kernel, rng):
    envs = gym.make_vec(
        "RecoWorld-Session-v0", num_envs=8, vectorization_mode="vector_entry_point", kernel=kernel
    )
    envs.reset(seed=0)
    ended = np.zeros(8, dtype=bool)
    while not ended.any():
        _, _, terminated, truncated, _ = envs.step(random_slates(rng, 8))
        ended = terminated | truncated
    action = random_slates(rng, 8)
    action[ended] = 99  # out of range, but these sub-envs start their next user: their action is ignored
    _, reward, terminated, truncated, info = envs.step(action)
    assert np.all(reward[ended] == 0) and not info["_slate_items"][ended].any()
    restarting = terminated | truncated
    if not restarting.all():  # the other sub-envs' actions are validated
        with pytest.raises(InvalidActionError, match="out of range"):
            envs.step(np.full((8, 10), 99))


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"slate_size": 0}, "slate_size"),
        ({"slate_size": 60}, "slate_size"),
        ({"choice_model": "probit"}, "choice_model"),
        ({"reward": "likes"}, "reward"),
        ({"max_gap_days": 0}, "max_gap_days"),
        ({"drift": 1.5}, "drift"),
        ({"novelty_kappa": -1.0}, "novelty_kappa"),
        ({"slates": 3}, "slates"),
    ],
)
def test_invalid_keywords_name_the_keyword(kwargs, name):
    with pytest.raises(ValueError, match=name):
        gym.make("RecoWorld-v0", **kwargs)


def test_repeated_indices_are_replaced_by_best_unused_and_counted():
    slates, replaced = deduplicate(np.array([[3, 3, 0, 3], [1, 2, 0, 4]]), 10)
    np.testing.assert_array_equal(slates, [[3, 1, 0, 2], [1, 2, 0, 4]])
    np.testing.assert_array_equal(replaced, [2, 0])
    env = gym.make("RecoWorld-v0").unwrapped
    env.reset(seed=0)
    *_, info = env.step(np.zeros(10, dtype=np.int64))
    assert info["duplicates_replaced"] == 9 and len(set(info["slate_items"].tolist())) == 10


# ---------------------------------------------------------------------------------------------- mechanisms
N_USERS = 400


def _oracle(envs):
    sim = envs.sim
    utility = sim.users.utility(sim.rows, sim.candidates)
    return np.argsort(-utility, axis=1, kind="stable")[:, : sim.config.slate_size]


def _run(policy, seed=0, n=N_USERS, env_id="RecoWorld-v0", **kwargs):
    """One episode per user; per-user totals of watch time, last day, steps, instructions, leaves."""
    envs = gym.make_vec(env_id, num_envs=n, vectorization_mode="vector_entry_point", **kwargs)
    obs, _ = envs.reset(seed=seed)
    rng = np.random.default_rng(seed)
    done = np.zeros(n, dtype=bool)
    out = {k: np.zeros(n) for k in ("watch", "last_day", "steps", "instructions", "first_instruction", "gap")}
    out["first_instruction"][:] = np.inf
    while not done.all():
        action = policy(envs, obs, rng)
        obs, reward, terminated, truncated, info = envs.step(action)
        live = ~done
        out["watch"][live] += reward[live]
        out["last_day"][live] = info["day"][live]
        out["steps"][live] += 1
        spoke = live & (info["instruction_type"] > 0)
        out["instructions"][spoke] += 1
        out["first_instruction"][spoke] = np.minimum(out["first_instruction"][spoke], out["steps"][spoke])
        ended = live & info["session_ended"]
        out["gap"][ended & (out["gap"] == 0)] = np.where(info["churned"], 99, info["return_gap_days"])[
            ended & (out["gap"] == 0)
        ]
        done |= terminated | truncated
    return out


def _random(envs, obs, rng):
    return random_slates(rng, envs.num_envs)


def _popular(envs, obs, rng):
    return np.tile(np.arange(envs.config.slate_size), (envs.num_envs, 1))


def _single_topic(envs, obs, rng):
    """Always the candidates of the user's most frequent candidate topic first: a monotonous feed."""
    topics = obs["candidate_topic"]
    counts = np.apply_along_axis(np.bincount, 1, topics, minlength=topics.max() + 1)
    top = np.argmax(counts, axis=1)
    key = np.where(topics == top[:, None], 0, 1)
    return np.argsort(key, axis=1, kind="stable")[:, : envs.config.slate_size]


def _varied(envs, obs, rng):
    """One candidate per topic as far as possible: a diverse feed."""
    topics = obs["candidate_topic"]
    first = np.ones_like(topics, dtype=bool)
    ordered = np.sort(topics, axis=1)
    _ = ordered
    seen = np.zeros((topics.shape[0], topics.max() + 1), dtype=bool)
    for c in range(topics.shape[1]):
        t = topics[:, c]
        first[:, c] = ~seen[np.arange(len(t)), t]
        seen[np.arange(len(t)), t] = True
    return np.argsort(~first, axis=1, kind="stable")[:, : envs.config.slate_size]


def _mean_ci(x):
    x = np.asarray(x, dtype=float)
    half = 1.96 * x.std(ddof=1) / np.sqrt(len(x))
    return x.mean(), half


def test_oracle_beats_random_by_a_wide_margin_and_popular_sits_between():
    oracle, popular, random = (_run(p) for p in (lambda e, o, r: _oracle(e), _popular, _random))
    for metric in ("watch",):
        o, p, r = (np.mean(x[metric]) for x in (oracle, popular, random))
        assert o > 1.5 * r, (o, r)
        assert r < p < o, (r, p, o)
    d7 = {name: np.mean(x["last_day"] >= 7) for name, x in (("o", oracle), ("p", popular), ("r", random))}
    assert d7["o"] > d7["r"] + 0.1, d7
    assert d7["r"] < d7["p"] < d7["o"] + 0.03, d7  # popularity is a strong retention baseline here


def test_monotonous_feed_triggers_instruction_or_leave_sooner_than_varied_feed():
    mono, varied = (
        _run(_single_topic, env_id="RecoWorld-Session-v0"),
        _run(_varied, env_id="RecoWorld-Session-v0"),
    )
    mono_first = np.minimum(mono["first_instruction"], mono["steps"])
    varied_first = np.minimum(varied["first_instruction"], varied["steps"])
    diff, half = _mean_ci(varied_first - mono_first)  # paired: same users, same luck
    assert diff - half > 0, (diff, half)


def test_honouring_instructions_restores_patience_and_lengthens_sessions():
    def honour(envs, obs, rng):
        slate = _oracle(envs)
        inst = obs["instruction"]
        kind = np.argmax(inst[:, :4], axis=1)
        topics = obs["candidate_topic"]
        target = np.argmax(inst[:, 4:], axis=1)
        rel = envs.catalog.related_topics[target]
        utility = envs.candidate_utility()
        bonus = np.zeros_like(utility)
        bonus += np.where((kind == 1)[:, None] & (topics == target[:, None]), -100.0, 0.0)
        bonus += np.where((kind == 2)[:, None] & (topics[:, :, None] == rel[:, None, :]).any(2), 100.0, 0.0)
        bonus += np.where((kind == 3)[:, None] & (obs["candidate_novelty"] == 1), 100.0, 0.0)
        ranked = np.argsort(-(utility + bonus), axis=1, kind="stable")[:, : envs.config.slate_size]
        return np.where((kind > 0)[:, None], ranked, slate)

    def ignore(envs, obs, rng):
        inst = obs["instruction"]
        kind = np.argmax(inst[:, :4], axis=1)
        topics = obs["candidate_topic"]
        target = np.argmax(inst[:, 4:], axis=1)
        utility = envs.candidate_utility()
        # the opposite of what was asked: the avoided topic first, nothing new
        contrary = np.where((kind == 1)[:, None] & (topics == target[:, None]), 100.0, 0.0)
        contrary += np.where((kind == 3)[:, None] & (obs["candidate_novelty"] == 1), -100.0, 0.0)
        contrary += np.where((kind == 2)[:, None] & (topics == target[:, None]), 100.0, 0.0)
        return np.argsort(-(utility + contrary), axis=1, kind="stable")[:, : envs.config.slate_size]

    kwargs = {"env_id": "RecoWorld-Session-v0", "instruction_boredom": 0.3}
    a, b = _run(honour, **kwargs), _run(ignore, **kwargs)
    spoke = (a["instructions"] > 0) & (b["instructions"] > 0)
    assert spoke.sum() > 30
    diff, half = _mean_ci(a["steps"][spoke] - b["steps"][spoke])
    assert diff - half > 0, (diff, half, spoke.sum())


def test_higher_satisfaction_shortens_return_gaps():
    env = gym.make_vec("RecoWorld-v0", num_envs=2000, vectorization_mode="vector_entry_point")
    env.reset(seed=0)
    users = env.sim.users
    rows = env.sim.rows
    users.fatigue[:] = 0.0
    users.satisfaction[:] = 0.2
    low = users.end_session(rows)
    users.satisfaction[:] = 1.5
    high = users.end_session(rows)  # same uniforms: a paired comparison
    assert np.all(high <= low)
    assert high.mean() < low.mean() - 0.2


def test_novelty_seekers_click_more_on_new_topics():
    env = gym.make_vec("RecoWorld-v0", num_envs=4000, vectorization_mode="vector_entry_point")
    env.reset(seed=1)
    sim = env.sim
    users = sim.users
    users.topic_share[:] = 0.0
    users.topic_share[:, 0] = 1.0  # everyone has only consumed topic 0 lately
    items = sim.candidates[:, :10]
    new = sim.catalog.topic[items] != 0
    users.novelty[:] = 0.9
    seekers = users.utility(sim.rows, items)
    users.novelty[:] = 0.1
    avoiders = users.utility(sim.rows, items)
    # the utility gap between new and familiar items is larger for novelty seekers: more clicks on new items
    gain = (seekers - avoiders)[new].mean() - (seekers - avoiders)[~new].mean()
    assert gain > 0.5
    fb_high = _clicks_on_new(sim, 0.9, items, new)
    fb_low = _clicks_on_new(sim, 0.1, items, new)
    assert fb_high > fb_low * 1.2, (fb_high, fb_low)


def _clicks_on_new(sim, nu, items, new):
    users = sim.users
    saved = {
        k: getattr(users, k).copy()
        for k in ("rho", "boredom", "topic_share", "fatigue", "patience", "satisfaction")
    }
    users.novelty[:] = nu
    fb = users.respond(sim.rows, items)
    for k, v in saved.items():
        getattr(users, k)[:] = v
    return (fb.clicked & new).sum() / new.sum()
