"""Any OpenAI-compatible completion server as an LLM backend: vLLM, llama.cpp's server (``llama_cpp.server``),
Ollama, LM Studio, ... Standard library only (``http.client``), persistent connections per worker thread.

Scoring uses ``/v1/completions`` with ``max_tokens=1`` and ``logprobs=k`` at each scored point of a prompt:
the
answers' log-probabilities are read from the server's top-k list (answers absent from it get a floor below the
smallest listed value; see :func:`recoworld.users.llm.backends.match_answers`). The points of one prompt are
sent
in order on one connection, so a server with prefix caching (llama.cpp, vLLM) computes each prompt about once.

Every request is bounded by a timeout and retried with exponential backoff on connection errors, timeouts,
5xx/429
answers and malformed bodies; a request that still fails yields NaN scores / an empty text and is counted — a
run
never crashes because of the server.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import threading
import time
import urllib.parse
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from recoworld.users.llm.backends import (
    BaseBackend,
    ChatFormat,
    LLMUnavailableError,
    Prompt,
    RetryPolicy,
    dumps,
    match_answers,
)

__all__ = ["OpenAIBackend"]


class _Failure(Exception):
    def __init__(self, message: str, retry: bool, timeout: bool = False):
        super().__init__(message)
        self.retry = retry
        self.timeout = timeout


class OpenAIBackend(BaseBackend):
    """An OpenAI-compatible server at ``base_url`` (``http://host:port`` or ``http://host:port/v1``).

    Args:
        base_url: the server's address.
        model: the model name sent with each request; by default the first one ``/v1/models`` lists.
        api_key: sent as a bearer token when given.
        retry: timeouts, retries, backoff and the circuit breaker (:class:`RetryPolicy`).
        concurrency: prompts in flight at once (raise it for vLLM; llama.cpp's server serves one at a time).
        top_logprobs: how many alternatives to ask for when scoring (servers cap it; 20 is the OpenAI limit).
        chat_format: the model's chat template ("chatml", "llama3", "plain" or a :class:`ChatFormat`).
        check: contact ``/v1/models`` at construction and raise :class:`LLMUnavailableError` if the server
            cannot be reached (a clear error up front instead of a run of defaults).
    """

    name = "openai"

    def __init__(
        self,
        base_url: str,
        model: str | None = None,
        *,
        api_key: str | None = None,
        retry: RetryPolicy | None = None,
        concurrency: int = 4,
        top_logprobs: int = 20,
        chat_format: ChatFormat | str | None = "chatml",
        check: bool = True,
        cache_entries: int = 50_000,
    ):
        super().__init__(cache_entries=cache_entries, chat_format=chat_format)
        self._remember_init(
            (base_url, model),
            {"api_key": api_key, "retry": retry, "concurrency": concurrency, "top_logprobs": top_logprobs,
             "chat_format": chat_format, "check": check, "cache_entries": cache_entries},
        )  # fmt: skip
        if not isinstance(base_url, str) or "://" not in base_url:
            raise ValueError(
                f"base_url: expected an http(s) URL such as http://127.0.0.1:8000, got {base_url!r}"
            )
        parsed = urllib.parse.urlsplit(base_url.rstrip("/"))
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise ValueError(
                f"base_url: expected an http(s) URL such as http://127.0.0.1:8000, got {base_url!r}"
            )
        self.base_url = base_url.rstrip("/")
        self._scheme = parsed.scheme
        self._host = parsed.hostname
        self._port = parsed.port or (443 if parsed.scheme == "https" else 80)
        path = parsed.path.rstrip("/")
        self._prefix = path if path.endswith("/v1") else path + "/v1"
        self.api_key = api_key
        self.retry = retry or RetryPolicy()
        self.concurrency = max(1, int(concurrency))
        self.top_logprobs = int(top_logprobs)
        self._local = threading.local()
        self._stats_lock = threading.Lock()
        self._consecutive_failures = 0
        self._breaker_until = 0.0
        self._pool: ThreadPoolExecutor | None = None
        self.model = model
        if check:
            models = self._check()
            if self.model is None:
                self.model = models[0] if models else None
        if self.model is None:
            self.model = "default"

    # ------------------------------------------------------------------ transport
    def _conn(self) -> http.client.HTTPConnection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            cls = http.client.HTTPSConnection if self._scheme == "https" else http.client.HTTPConnection
            conn = cls(self._host, self._port, timeout=self.retry.timeout)
            self._local.conn = conn
        return conn

    def _drop_conn(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()
        self._local.conn = None

    def _once(self, method: str, path: str, payload: dict | None) -> dict:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        body = dumps(payload) if payload is not None else None
        conn = self._conn()
        try:
            conn.request(method, self._prefix + path, body=body, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
        except TimeoutError as exc:
            self._drop_conn()
            raise _Failure(f"timeout after {self.retry.timeout}s", retry=True, timeout=True) from exc
        except (OSError, http.client.HTTPException) as exc:
            self._drop_conn()
            raise _Failure(f"connection error: {exc!r}", retry=True) from exc
        if resp.status != 200:
            if resp.getheader("connection", "").lower() == "close":
                self._drop_conn()
            raise _Failure(f"HTTP {resp.status}", retry=resp.status in self.retry.retry_status)
        try:
            out = json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise _Failure("malformed JSON", retry=True) from exc
        if not isinstance(out, dict):
            raise _Failure("malformed JSON (not an object)", retry=True)
        return out

    def _request(self, method: str, path: str, payload: dict | None, validate: Any = None) -> dict | None:
        """One request with retries; None when it finally fails (counted)."""
        attempts = 1 + max(0, self.retry.max_retries)
        if time.monotonic() < self._breaker_until:
            attempts = 1
        for attempt in range(attempts):
            try:
                out = self._once(method, path, payload)
                if validate is not None:
                    validate(out)
                with self._stats_lock:
                    self._consecutive_failures = 0
                return out
            except _Failure as exc:
                last = exc
            except (KeyError, IndexError, TypeError, ValueError) as exc:  # garbage that passed as JSON
                last = _Failure(f"unexpected response: {exc!r}", retry=True)
            if last.timeout:
                with self._stats_lock:
                    self.stats.timeouts += 1
            if not last.retry or attempt == attempts - 1:
                break
            with self._stats_lock:
                self.stats.retries += 1
            time.sleep(min(self.retry.max_backoff, self.retry.backoff * (2**attempt)))
        with self._stats_lock:
            self.stats.failures += 1
            self._consecutive_failures += 1
            if self._consecutive_failures >= self.retry.breaker_failures:
                self._breaker_until = time.monotonic() + self.retry.breaker_seconds
        self.last_error = str(last)
        return None

    def _check(self) -> list[str]:
        try:
            out = self._once("GET", "/models", None)
        except _Failure as exc:
            raise LLMUnavailableError(
                f"cannot reach an OpenAI-compatible server at {self.base_url} ({exc}). Start one, e.g. "
                "`python -m llama_cpp.server --model FILE.gguf --host 127.0.0.1 --port 8000` "
                "(pip install 'llama-cpp-python[server]'), `vllm serve MODEL` or `ollama serve`, and pass "
                "its address as base_url; or leave base_url unset to run the embedded model in-process"
            ) from exc
        data = out.get("data") if isinstance(out, dict) else None
        return (
            [str(m.get("id")) for m in data if isinstance(m, dict) and m.get("id")]
            if isinstance(data, list)
            else []
        )

    def _account(self, out: dict) -> None:
        usage = out.get("usage")
        if isinstance(usage, dict):
            with self._stats_lock:
                self.stats.prompt_tokens += int(usage.get("prompt_tokens") or 0)
                self.stats.completion_tokens += int(usage.get("completion_tokens") or 0)

    def _map(self, fn: Any, items: list) -> list:
        if self.concurrency == 1 or len(items) <= 1:
            return [fn(x) for x in items]
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="recoworld-llm")
        return list(self._pool.map(fn, items))

    # ------------------------------------------------------------------ backend
    def _score_one(self, prompt: Prompt) -> np.ndarray | None:
        points = prompt.score_points()
        width = max((len(a) for _, a in points), default=0)
        out = np.full((len(points), width), np.nan)
        for j, (text, answers) in enumerate(points):
            payload = {
                "model": self.model,
                "prompt": text,
                "max_tokens": 1,
                "temperature": 0.0,
                "logprobs": self.top_logprobs,
            }

            def validate(res: dict, answers: tuple[str, ...] = answers) -> None:
                _validate_completion(res)
                if np.isnan(_answers_from_completion(res, answers)).all():
                    raise ValueError("no usable logprobs or text")

            res = self._request("POST", "/completions", payload, validate=validate)
            if res is None:
                continue
            self._account(res)
            out[j, : len(answers)] = _answers_from_completion(res, answers)
        return out

    def _score_uncached(self, prompts: Sequence[Prompt]) -> list[np.ndarray | None]:
        return self._map(self._score_one, list(prompts))

    def _generate_one(self, args: tuple[Prompt, int, tuple[str, ...]]) -> str | None:
        prompt, max_tokens, stop = args
        payload: dict[str, Any] = {
            "model": self.model,
            "prompt": prompt.text,
            "max_tokens": max_tokens,
            "temperature": 0.0,
        }
        stops = [s for s in (*stop, *self.chat_format.stops) if s][:4]
        if stops:
            payload["stop"] = stops
        res = self._request("POST", "/completions", payload, validate=_validate_text)
        if res is None:
            return None
        self._account(res)
        return res["choices"][0]["text"]

    def _generate_uncached(
        self, prompts: Sequence[Prompt], max_tokens: int, stop: tuple[str, ...]
    ) -> list[str | None]:
        return self._map(self._generate_one, [(p, max_tokens, stop) for p in prompts])

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
        self._drop_conn()

    def __repr__(self) -> str:
        return f"OpenAIBackend({self.base_url!r}, model={self.model!r})"


def _validate_completion(out: dict) -> None:
    choices = out["choices"]
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise ValueError("no choices")


def _validate_text(out: dict) -> None:
    _validate_completion(out)
    if not isinstance(out["choices"][0].get("text"), str):
        raise ValueError("no text")


def _answers_from_completion(res: dict, answers: tuple[str, ...]) -> np.ndarray:
    """Answer log-probabilities from a completion with logprobs (legacy or chat-style), else from its text."""
    choice = res["choices"][0]
    lp = choice.get("logprobs")
    top: dict[str, float] = {}
    if isinstance(lp, dict):
        tl = lp.get("top_logprobs")
        if isinstance(tl, list) and tl and isinstance(tl[0], dict):  # legacy: [{token: logprob}]
            top = {str(k): float(v) for k, v in tl[0].items() if _finite(v)}
        content = lp.get("content")
        if not top and isinstance(content, list) and content and isinstance(content[0], dict):  # chat-style
            for alt in content[0].get("top_logprobs") or []:
                if isinstance(alt, dict) and "token" in alt and _finite(alt.get("logprob")):
                    top[str(alt["token"])] = float(alt["logprob"])
        tokens, tlp = lp.get("tokens"), lp.get("token_logprobs")
        if isinstance(tokens, list) and tokens and isinstance(tlp, list) and tlp and _finite(tlp[0]):
            top.setdefault(str(tokens[0]), float(tlp[0]))
    if top:
        return match_answers(top, answers)
    text = choice.get("text")
    if isinstance(text, str) and text.strip():  # no logprobs: the greedy answer as a near-one-hot score
        scores = match_answers({text: 0.0}, answers)
        hit = scores > -0.5
        if hit.any():
            return np.where(hit, np.log(0.98), np.log(0.02 / max(1, len(answers) - 1)))
    return np.full(len(answers), np.nan)


def _finite(v: Any) -> bool:
    try:
        return bool(np.isfinite(float(v)))
    except (TypeError, ValueError):
        return False
