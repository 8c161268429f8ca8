"""Metric tests on hand-built trajectories with known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from recoworld.evaluation.metrics import (
    TrajectoryRecorder,
    kaplan_meier,
    novelty_bits,
    retention,
    return_gap_histogram,
    serendipitous_clicks,
    slate_diversity,
    slate_topics,
    survival_from_records,
    user_metrics,
)

G = 4  # topics
C = 4  # candidates
K = 2  # slate size


def _obs(n: int, topics, hist=None) -> dict[str, np.ndarray]:
    topics = np.broadcast_to(np.asarray(topics, dtype=np.int64), (n, C)).copy()
    hist = np.zeros((n, G), np.float32) if hist is None else np.asarray(hist, np.float32)
    return {"candidate_topic": topics, "topic_histogram": hist}


def _info(n: int, **over) -> dict[str, np.ndarray]:
    info = {
        "candidate_items": np.tile(np.array([10, 11, 12, 13]), (n, 1)),
        "slate_items": np.tile(np.array([10, 11]), (n, 1)),
        "clicked": np.zeros((n, K), bool),
        "liked": np.zeros((n, K), bool),
        "examined": np.ones((n, K), bool),
        "watch_minutes": np.zeros((n, K)),
        "duplicates_replaced": np.zeros(n, np.int64),
        "session_ended": np.zeros(n, bool),
        "left": np.zeros(n, bool),
        "churned": np.zeros(n, bool),
        "return_gap_days": np.full(n, -1, np.int64),
        "day": np.zeros(n, np.int64),
        "session": np.zeros(n, np.int64),
        "turn": np.zeros(n, np.int64),
        "instruction_type": np.zeros(n, np.int64),
        "instruction_topic": np.full(n, -1, np.int64),
        "instruction_followed": np.full(n, -1, np.int64),
        "user_index": np.array([5, 7][:n], np.int64),
    }
    for k, v in over.items():
        info[k] = np.asarray(v)
    return info


def _no(n=2):
    return np.zeros(n, bool)


def build_two_users() -> dict[str, np.ndarray]:
    """User 0: day 0 two requests (session 0), back on day 2 (session 1) for one request, then churns.
    User 1: one request on day 0, leaves with a return gap beyond the horizon (truncated, not churned).
    A garbage step after both finished (what a NEXT_STEP autoreset returns) must be ignored."""
    share = np.array([0.5, 0.25, 0.125, 0.125])  # popularity of items 10..13 (14 items in the catalogue)
    popularity = np.ones(14)
    popularity[10:14] = share * 100
    rec = TrajectoryRecorder(2, popularity=popularity)
    topics = [0, 0, 1, 2]  # candidates 10, 11 share topic 0
    # step 1: both on day 0; user 0 clicks slot 0 (topic 0) watching 3 min; user 1 clicks both, leaves
    rec.record(
        _obs(2, topics),
        _info(
            2,
            clicked=[[True, False], [True, True]],
            watch_minutes=[[3.0, 0.0], [1.0, 2.0]],
            session_ended=[False, True],
            return_gap_days=[-1, 2],
        ),
        _no(),
        np.array([False, True]),
        reward=np.array([3.0, 3.0]),
    )
    # step 2: user 0's second request of session 0, slate [12, 13] (topics 1, 2); the session ends,
    # back in 2 days.
    # user 1's row is an autoreset: its data must be ignored
    rec.record(
        _obs(2, topics, hist=[[1, 0, 0, 0], [0, 0, 0, 0]]),
        _info(
            2,
            slate_items=[[12, 13], [10, 11]],
            clicked=[[False, True], [True, True]],
            watch_minutes=[[0.0, 4.0], [99.0, 99.0]],
            session_ended=[True, False],
            return_gap_days=[2, -1],
            instruction_type=[1, 3],
            instruction_topic=[0, 1],
            turn=[1, 0],
        ),
        _no(),
        _no(),
        reward=np.array([4.0, 198.0]),
    )
    # step 3: user 0 on day 2, session 1, honours its pending instruction, then churns
    rec.record(
        _obs(2, topics, hist=[[0.5, 0, 0.5, 0], [0, 0, 0, 0]]),
        _info(
            2,
            slate_items=[[10, 12], [10, 11]],
            clicked=[[False, True], [True, True]],
            watch_minutes=[[0.0, 5.0], [99.0, 99.0]],
            session_ended=[True, True],
            churned=[True, False],
            day=[2, 0],
            session=[1, 0],
            instruction_followed=[1, -1],
        ),
        np.array([True, False]),
        _no(),
        reward=np.array([5.0, 198.0]),
    )
    assert rec.all_done
    # after both ended nothing is recorded
    rec.record(_obs(2, topics), _info(2, clicked=[[True, True]] * 2), _no(), np.array([True, True]))
    return rec.records()


def test_recorder_counts_on_hand_built_trajectory():
    r = build_two_users()
    np.testing.assert_array_equal(r["user_index"], [5, 7])
    np.testing.assert_array_equal(r["requests"], [3, 1])
    np.testing.assert_array_equal(r["sessions"], [2, 1])
    np.testing.assert_array_equal(r["last_day"], [2, 0])
    np.testing.assert_array_equal(r["churned"], [True, False])
    np.testing.assert_array_equal(r["truncated"], [False, True])
    np.testing.assert_array_equal(r["impressions"], [6, 2])
    np.testing.assert_array_equal(r["clicks"], [3, 2])
    np.testing.assert_allclose(r["watch_minutes"], [12.0, 3.0])
    np.testing.assert_allclose(r["reward"], [12.0, 3.0])
    np.testing.assert_array_equal(r["instructions"], [1, 0])
    np.testing.assert_array_equal(r["instruction_followed"], [1, 0])
    np.testing.assert_array_equal(r["instruction_pending"], [1, 0])
    # return gaps: user 0 -> [2], user 1 -> [2]
    np.testing.assert_array_equal(r["gap_count"], [1, 1])
    np.testing.assert_array_equal(r["gaps"], [2, 2])
    # distinct shown items per user: user 0 saw 10, 11, 12, 13; user 1 saw 10, 11
    np.testing.assert_array_equal(r["item_count"], [4, 2])
    np.testing.assert_array_equal(r["items"], [10, 11, 12, 13, 10, 11])


def test_user_metrics_known_answers():
    r = build_two_users()
    m = user_metrics(r, horizon_days=7)
    np.testing.assert_array_equal(m["day1_retention"], [1.0, 0.0])
    np.testing.assert_array_equal(m["day7_retention"], [0.0, 0.0])
    np.testing.assert_array_equal(m["sessions_per_user"], [2.0, 1.0])
    np.testing.assert_allclose(m["session_length"], [1.5, 1.0])
    np.testing.assert_allclose(m["watch_time_per_user"], [12.0, 3.0])
    np.testing.assert_allclose(m["ctr"], [0.5, 1.0])
    # slates of user 0: [10, 11] topics (0, 0) -> 0; [12, 13] topics (1, 2) -> 1; [10, 12] (0, 1) -> 1
    np.testing.assert_allclose(m["diversity"], [2 / 3, 0.0])
    # novelty: -log2 of each shown item's share of the catalogue's total popularity
    share = np.ones(14)
    share[10:14] = np.array([0.5, 0.25, 0.125, 0.125]) * 100
    share /= share.sum()
    bits = -np.log2(share)
    expected0 = (bits[10] + bits[11] + bits[12] + bits[13] + bits[10] + bits[12]) / 6
    np.testing.assert_allclose(m["novelty"], [expected0, (bits[10] + bits[11]) / 2])
    # serendipity: user 0's first click had an empty history (not eligible); click on 13 (topic 2) with
    # history top topics {0} -> serendipitous; click on 12 (topic 1), history {0, 2} -> serendipitous.
    # user 1: its only clicks had an empty history -> undefined
    assert m["serendipity"][0] == 1.0 and math.isnan(m["serendipity"][1])
    np.testing.assert_allclose(m["instruction_rate"], [1 / 3, 0.0])
    assert m["instruction_follow_rate"][0] == 1.0 and math.isnan(m["instruction_follow_rate"][1])


def test_retention_day7_undefined_for_short_horizon():
    r = {"last_day": np.array([0, 3, 7])}
    np.testing.assert_array_equal(retention(r, 1, horizon_days=7), [0, 1, 1])
    np.testing.assert_array_equal(retention(r, 7, horizon_days=7), [0, 0, 1])
    assert np.isnan(retention(r, 7, horizon_days=3)).all()


def test_slate_diversity_known_values():
    topics = np.array([[0, 0, 1, 1], [0, 0, 0, 0], [0, 1, 2, 3], [3, 3, 3, 1]])
    # same-topic pairs: 2 of 6, 6 of 6, 0 of 6, 3 of 6
    np.testing.assert_allclose(slate_diversity(topics), [1 - 2 / 6, 0.0, 1.0, 0.5])
    assert np.isnan(slate_diversity(np.array([[1], [2]]))).all()


def test_slate_topics_lookup():
    cand = np.array([[5, 6, 7], [8, 9, 10]])
    ctop = np.array([[0, 1, 2], [3, 4, 5]])
    np.testing.assert_array_equal(slate_topics(np.array([[7, 5], [9, 99]]), cand, ctop), [[2, 0], [4, -1]])


def test_novelty_bits():
    share = np.array([0.5, 0.25, 0.25])
    np.testing.assert_allclose(novelty_bits(np.array([0, 1, 2]), share), [1.0, 2.0, 2.0])


def test_serendipitous_clicks_top3_and_empty_history():
    hist = np.array([[0.4, 0.3, 0.2, 0.1, 0.0], [0.0] * 5, [1.0, 0, 0, 0, 0]])
    topics = np.array([[3, 0, 4], [1, 2, 3], [1, 0, 2]])
    clicked = np.array([[True, True, True], [True, False, False], [True, True, False]])
    seren, eligible = serendipitous_clicks(clicked, topics, hist)
    # row 0: top3 = {0, 1, 2}; clicks on 3 and 4 are serendipitous, 0 is not
    # row 1: empty history -> nothing eligible; row 2: top = {0} (only positive share); click on 1 counts
    np.testing.assert_array_equal(seren, [2, 0, 1])
    np.testing.assert_array_equal(eligible, [3, 0, 2])


def test_kaplan_meier_with_censoring_known_values():
    # (time, churned): (1, yes), (1, censored), (2, yes), (3, censored), (3, yes)
    km = kaplan_meier(np.array([1, 1, 2, 3, 3]), np.array([True, False, True, False, True]), horizon=4)
    s1 = 1 - 1 / 5
    s2 = s1 * (1 - 1 / 3)
    s3 = s2 * (1 - 1 / 2)
    np.testing.assert_allclose(km.survival, [1.0, s1, s2, s3, s3])
    np.testing.assert_array_equal(km.at_risk, [5, 5, 3, 2, 0])
    np.testing.assert_array_equal(km.events, [0, 1, 1, 1, 0])
    assert np.all(km.lo <= km.survival + 1e-12) and np.all(km.survival <= km.hi + 1e-12)
    assert np.all((km.lo >= 0) & (km.hi <= 1))


def test_kaplan_meier_no_censoring_is_empirical_survival():
    times = np.array([0, 0, 1, 2, 2, 2, 5])
    km = kaplan_meier(times, np.ones(7, bool), horizon=5)
    expected = [(times > t).mean() for t in range(6)]
    np.testing.assert_allclose(km.survival, expected)


def test_survival_from_records_censors_at_horizon():
    records = {"last_day": np.array([0, 2, 3, 1]), "churned": np.array([True, True, False, False])}
    km = survival_from_records(records, horizon_days=3)
    # churn at 0 and 2; the two others are censored at 3 (alive through the horizon)
    np.testing.assert_allclose(km.survival, [0.75, 0.75, 0.5, 0.5])
    np.testing.assert_array_equal(km.at_risk, [4, 3, 3, 2])


def test_return_gap_histogram():
    np.testing.assert_array_equal(return_gap_histogram(np.array([1, 1, 3, 0, 9]), 3), [1, 2, 0, 2])
    np.testing.assert_array_equal(return_gap_histogram(np.array([], np.int64), 2), [0, 0, 0])


@pytest.mark.parametrize("k", [2, 5, 10])
def test_diversity_matches_pairwise_definition(k):
    rng = np.random.default_rng(k)
    topics = rng.integers(0, 3, size=(50, k))
    brute = []
    for row in topics:
        pairs = [(i, j) for i in range(k) for j in range(i + 1, k)]
        brute.append(1 - np.mean([row[i] == row[j] for i, j in pairs]))
    np.testing.assert_allclose(slate_diversity(topics), brute)
