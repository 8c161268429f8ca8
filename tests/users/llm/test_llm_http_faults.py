"""The OpenAI-compatible backend against a fault-injecting local server: every failure is retried, then
counted,
and nothing crashes — neither the backend nor a user model simulating through it."""

from __future__ import annotations

import time

import numpy as np
import pytest
from conftest import free_port

from recoworld.users.llm import LLMUnavailableError, Prompt, RetryPolicy, Segment
from recoworld.users.llm.openai_backend import OpenAIBackend

ANSWERS = (" skip", " click", " like")


def backend(url: str, **kw) -> OpenAIBackend:
    retry = RetryPolicy(timeout=kw.pop("timeout", 0.5), max_retries=kw.pop("max_retries", 2), backoff=0.01,
                        max_backoff=0.02, breaker_failures=kw.pop("breaker_failures", 1000))  # fmt: skip
    return OpenAIBackend(url, retry=retry, concurrency=kw.pop("concurrency", 1), **kw)


def two_point_prompt(tag: str = "") -> Prompt:
    return Prompt(
        ("System.\n", f"Profile {tag}\n"),
        (Segment("A video", cacheable=True), Segment(" ->", answers=ANSWERS),
         Segment("\nNext ->", answers=(" continue", " leave"))),
    )  # fmt: skip


def test_ok_server_scores_and_generates(fault_server):
    b = backend(fault_server.url)
    assert b.model == "fault-model"
    (s,) = b.score([two_point_prompt()])
    assert s.shape == (2, 3)
    np.testing.assert_allclose(s[0], [-1.5, -0.5, -2.5])
    assert s[1, 0] == pytest.approx(-0.2) and s[1, 1] == pytest.approx(-3.0) and np.isnan(s[1, 2])
    assert b.generate([Prompt.of("Hello")], 8) == ["1 click"]
    assert b.stats.requests == 2 and b.stats.failures == 0 and b.stats.prompt_tokens == 30


def test_response_cache_by_content(fault_server):
    b = backend(fault_server.url)
    b.score([two_point_prompt("a")])
    hits = fault_server.hits
    b.score([two_point_prompt("a")])
    assert fault_server.hits == hits and b.stats.cache_hits == 1
    b.score([two_point_prompt("b")])
    assert fault_server.hits == hits + 2


@pytest.mark.parametrize("mode", ["http500", "malformed", "empty_choices", "garbage"])
def test_bad_answers_are_retried_then_counted(fault_server, mode):
    fault_server.mode = mode
    b = backend(fault_server.url, max_retries=2)
    (s,) = b.score([two_point_prompt()])
    assert s.shape == (2, 3) and np.isnan(s).all()
    assert b.generate([Prompt.of("Hi")], 4) == [""]
    assert b.stats.failures == 3  # two score points + one generation
    assert b.stats.retries == 6  # 2 retries each
    assert fault_server.hits == 9


def test_timeouts_are_bounded_retried_and_counted(fault_server):
    fault_server.mode, fault_server.delay = "timeout", 1.0
    b = backend(fault_server.url, timeout=0.2, max_retries=1)
    t0 = time.monotonic()
    assert b.generate([Prompt.of("Hi")], 4) == [""]
    assert time.monotonic() - t0 < 1.5
    assert b.stats.timeouts == 2 and b.stats.retries == 1 and b.stats.failures == 1


def test_flaky_server_recovers_with_retries(fault_server):
    fault_server.mode, fault_server.fail_first = "flaky", 2
    b = backend(fault_server.url, max_retries=3)
    (s,) = b.score([Prompt.of("x ->", ANSWERS)])
    assert np.isfinite(s).all()
    assert b.stats.retries == 2 and b.stats.failures == 0


def test_connection_refused_is_counted_not_raised():
    url = f"http://127.0.0.1:{free_port()}"
    b = backend(url, check=False, max_retries=1)
    (s,) = b.score([two_point_prompt()])
    assert np.isnan(s).all()
    assert b.stats.failures == 2 and b.stats.retries == 2


def test_circuit_breaker_fails_fast():
    url = f"http://127.0.0.1:{free_port()}"
    b = backend(url, check=False, max_retries=2, breaker_failures=1)
    b.generate([Prompt.of("a")], 2)
    retries = b.stats.retries
    b.generate([Prompt.of("b")], 2)
    assert b.stats.retries == retries and b.stats.failures == 2  # no retries while the breaker is open


def test_unreachable_server_at_construction_is_one_clear_error():
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(LLMUnavailableError, match="cannot reach an OpenAI-compatible server"):
        OpenAIBackend(url, retry=RetryPolicy(timeout=0.5))


@pytest.mark.parametrize("bad", ["localhost:8000", "ftp://x", "", "http://"])
def test_bad_base_url(bad):
    with pytest.raises(ValueError, match="base_url"):
        OpenAIBackend(bad, check=False)


def test_concurrent_requests(fault_server):
    b = backend(fault_server.url, concurrency=4)
    out = b.score([two_point_prompt(str(i)) for i in range(8)])
    assert all(np.isfinite(s[0]).all() for s in out)
    assert b.stats.requests == 8 and fault_server.hits == 16
    b.close()


@pytest.mark.parametrize("style", ["score", "generate"])
@pytest.mark.parametrize("mode", ["ok", "http500", "malformed", "timeout"])
def test_user_model_survives_a_bad_server(world, fault_server, mode, style):
    """A full-mode simulation through a failing server runs on with defaults (skip / continue), counted."""
    from recoworld.config import WorldConfig
    from recoworld.envs.core import Simulator
    from recoworld.users.llm import make_llm_user_model
    from recoworld.users.synthetic import SyntheticUserModel

    fault_server.mode, fault_server.delay = mode, 0.3
    b = backend(fault_server.url, timeout=0.1, max_retries=1, breaker_failures=4)

    def factory(w, cfg, streams):
        return make_llm_user_model(SyntheticUserModel(w, cfg, streams), mode="full", style=style, backend=b)

    sim = Simulator(WorldConfig(), 3, user_model=factory)
    sim.reset(np.arange(3), np.arange(3))
    for _ in range(2):
        slates, rep = sim.validate(np.tile(np.arange(10), (3, 1)))
        res = sim.step(slates, rep)
        assert res.info["clicked"].shape == (3, 10)
    st = sim.users.llm_stats()
    assert st["llm_full_decisions"] == 6
    if mode == "ok":
        assert st["llm_failures"] == 0
    else:
        assert st["llm_failures"] > 0
        assert st["llm_parse_failures"] == 6 and st["llm_default_next"] == 6
        assert not res.info["clicked"].any()  # unread verdicts are skips
