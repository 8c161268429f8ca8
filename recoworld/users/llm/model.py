"""The LLM user model: the batched :class:`~recoworld.users.base.UserModel` protocol, answered by a language
model
on top of the synthetic user (DESIGN.md §4).

* ``mode="hybrid"``: the synthetic model decides every behaviour; the LLM writes the reflective instructions'
  text (given their structured target) and the mindset summaries. Cheap: the LLM is called only when a user
  speaks
  or its memory grows long.
* ``mode="full"``: the LLM decides, per slate, skip/click/like for every item and continue/instruct/leave; the
  decisions go through the synthetic user's outcome and mindset update (``apply_choices``), so the latent
  state
  (interests, boredom, fatigue, patience) stays consistent and ground truth stays measurable. Two styles:
  ``"score"`` compares the log-probabilities of the allowed answers at every item in one pass; ``"generate"``
  writes line-oriented answers parsed leniently (:mod:`recoworld.users.llm.parsing`).

Whatever cannot be read becomes a documented default (skip / continue) and is counted in :meth:`llm_stats`.
A user that runs out of patience in the synthetic mindset still ends its session in full mode (the LLM's
"leave"
is added to it, never removed), so sessions stay bounded whatever the model answers.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from recoworld import rng
from recoworld.users.base import (
    INSTRUCTION_AVOID,
    INSTRUCTION_NEW,
    INSTRUCTION_NONE,
    Feedback,
)
from recoworld.users.instructions import render_instruction
from recoworld.users.llm.backends import LLMBackend
from recoworld.users.llm.parsing import CONTINUE, INSTRUCT, LEAVE, parse_decisions, parse_instruction
from recoworld.users.llm.prompts import (
    MindsetMemory,
    PromptBuilder,
    Traits,
    clean_generated,
    event_line,
    persona_text,
    template_summary,
)

__all__ = ["MODES", "STYLES", "LLMUserConfig", "LLMUserModel"]

MODES = ("hybrid", "full")
STYLES = ("score", "generate")
P_LLM_ITEMS, P_LLM_NEXT = 40, 41  # stream purposes (the synthetic user uses 1..8)


def _check(ok: bool, name: str, message: str) -> None:
    if not ok:
        raise ValueError(f"{name}: {message}")


@dataclass(frozen=True)
class LLMUserConfig:
    """Settings of the LLM user model; every field is validated (a bad value raises ``ValueError`` naming it).

    Decisions in the scoring style: the answers' log-probabilities plus ``item_bias`` (skip, click, like) and
    ``next_bias`` (continue, instruct, leave), divided by ``temperature``, give a distribution over the
    allowed
    answers, sampled with the user's counter-based random stream (``decision="sample"``) or maximised
    (``"argmax"``). With ``contrast=True`` the log-probabilities under a neutral persona are subtracted and
    ``log(prior)`` added (pointwise mutual information between persona and answer): better fidelity for small
    models, twice the cost.
    """

    mode: str = "hybrid"
    style: str = "score"
    describe: bool = (
        False  # item descriptions in the prompts (larger models use them; SmolLM2-135M does worse)
    )
    temperature: float = 0.5
    item_bias: tuple[float, float, float] = (0.0, 0.0, 0.0)
    next_bias: tuple[float, float, float] = (0.0, 0.0, 0.0)
    decision: str = "sample"
    contrast: bool = False
    prior: tuple[float, float, float] = (0.7, 0.2, 0.1)
    memory_lines: int = 12  # summarise the memory when it holds more event lines than this
    keep_lines: int = 3  # lines kept verbatim after a summary
    llm_summaries: bool = True  # False: deterministic summaries (no LLM call)
    llm_instructions: bool = True  # False: instruction texts from templates (hybrid mode then calls no LLM)
    instruction_tokens: int = (
        20  # continuation of the grounded opening ("There are too many X videos in my feed,")
    )
    summary_tokens: int = 32
    generate_tokens: int = 0  # 0: 4 tokens per item + 24
    max_batch: int = 64  # users per backend call

    def __post_init__(self) -> None:
        _check(self.mode in MODES, "mode", f"must be one of {MODES}, got {self.mode!r}")
        _check(self.style in STYLES, "style", f"must be one of {STYLES}, got {self.style!r}")
        _check(self.decision in ("sample", "argmax"), "decision", "must be 'sample' or 'argmax'")
        _check(self.temperature > 0, "temperature", "must be positive")
        for name in ("item_bias", "next_bias", "prior"):
            v = getattr(self, name)
            _check(
                len(tuple(v)) == 3 and all(np.isfinite(x) for x in v), name, "must be three finite numbers"
            )
        _check(all(x > 0 for x in self.prior), "prior", "must be positive")
        _check(self.memory_lines >= 1, "memory_lines", "must be at least 1")
        _check(0 <= self.keep_lines < self.memory_lines, "keep_lines", "must lie in [0, memory_lines)")
        for name in ("instruction_tokens", "summary_tokens", "max_batch"):
            _check(getattr(self, name) >= 1, name, "must be at least 1")
        _check(self.generate_tokens >= 0, "generate_tokens", "must be non-negative")


class LLMUserModel:
    """A user model whose decisions (``full``) or words (``hybrid``) come from a language model.

    Args:
        base: the synthetic user model (owns the latent state, the random streams and the outcome model; must
            offer ``apply_choices`` for full mode).
        backend: an :class:`~recoworld.users.llm.backends.LLMBackend`.
        mode, style: see the module docstring; ``config`` (an :class:`LLMUserConfig`) or keyword overrides of
        its
            fields set the rest.
        catalog: the item catalogue (titles, topics, descriptions); by default ``base.catalog``.

    Attributes of the base model that this class does not define (``population_index``, ``rho``, ...) are
    forwarded to it, so that environments use the wrapper exactly like the synthetic model.
    """

    def __init__(
        self,
        base: Any,
        backend: LLMBackend,
        *,
        mode: str | None = None,
        style: str | None = None,
        catalog: Any = None,
        config: LLMUserConfig | None = None,
        **overrides: Any,
    ):
        cfg = config or LLMUserConfig()
        if mode is not None:
            overrides["mode"] = mode
        if style is not None:
            overrides["style"] = style
        unknown = sorted(set(overrides) - {f.name for f in dataclasses.fields(LLMUserConfig)})
        if unknown:
            raise ValueError(f"unknown keyword(s) {unknown}; see recoworld.users.llm.LLMUserConfig")
        self.config = dataclasses.replace(cfg, **overrides) if overrides else cfg
        if self.config.mode == "full" and not hasattr(base, "apply_choices"):
            raise TypeError(
                "mode='full' needs a base user model with apply_choices (e.g. SyntheticUserModel)"
            )
        self.base = base
        self.backend = backend
        self.catalog = catalog if catalog is not None else base.catalog
        self.topic_names: tuple[str, ...] = tuple(self.catalog.topic_names)
        self.prompts = PromptBuilder(backend, self.catalog, describe=self.config.describe)
        self.counters = {
            "decisions": 0,  # slates answered
            "full_decisions": 0,  # slates answered by the LLM (full mode)
            "parse_failures": 0,  # answers (or score rows) with at least one unread field
            "default_items": 0,  # item verdicts that fell back to skip
            "default_next": 0,  # next steps that fell back to continue
            "instructions": 0,
            "own_instructions": 0,  # instructions the LLM chose to give (full mode)
            "instruction_texts": 0,  # instruction texts written by the LLM
            "instruction_text_fallbacks": 0,  # unusable texts replaced by the template
            "instruction_target_recovered": 0,  # texts whose (type, topic) could be read back
            "instruction_target_agrees": 0,  # ... and matched the synthetic target (hybrid fidelity)
            "summaries": 0,
            "summary_fallbacks": 0,
        }
        self._fallback_rng = np.random.default_rng(0)
        n = len(getattr(base, "population_index", ()))  # adopt the base's slots as they are (no reallocation)
        self.memory = [MindsetMemory() for _ in range(n)]
        self.persona = [""] * n

    # ------------------------------------------------------------------ forwarding
    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name in ("base",):
            raise AttributeError(name)
        return getattr(self.__dict__["base"], name) if "base" in self.__dict__ else _raise(name)

    # ------------------------------------------------------------------ protocol
    def allocate(self, batch_size: int) -> None:
        self.base.allocate(batch_size)
        self.memory = [MindsetMemory() for _ in range(batch_size)]
        self.persona = [""] * batch_size

    def reset_users(self, rows: np.ndarray, population_index: np.ndarray) -> None:
        self.base.reset_users(rows, population_index)
        for r in np.asarray(rows).tolist():
            self.memory[r].clear()

    def start_session(self, rows: np.ndarray, gap_days: np.ndarray) -> None:
        self.base.start_session(rows, gap_days)
        gaps = np.asarray(gap_days).tolist()
        for r, g in zip(np.asarray(rows).tolist(), gaps, strict=True):
            self.persona[r] = self._persona(r)
            if g > 0:
                self.memory[r].add(f"Came back after {int(g)} day{'s' if g != 1 else ''}.")

    def end_session(self, rows: np.ndarray) -> np.ndarray:
        gaps = self.base.end_session(rows)
        self._summarise(np.asarray(rows), force=False)
        return gaps

    def utility(self, rows: np.ndarray, items: np.ndarray) -> np.ndarray:
        return self.base.utility(rows, items)

    def latent(self, rows: np.ndarray) -> np.ndarray:
        return self.base.latent(rows)

    def respond(self, rows: np.ndarray, slate_items: np.ndarray) -> Feedback:
        rows = np.asarray(rows)
        slate_items = np.asarray(slate_items)
        self.counters["decisions"] += len(rows)
        if len(rows) == 0:
            return self.base.respond(rows, slate_items)
        if self.config.mode == "hybrid":
            fb = self.base.respond(rows, slate_items)
            llm_instruct = np.zeros(len(rows), dtype=bool)
            said = [""] * len(rows)
        else:
            fb, llm_instruct, said = self._respond_full(rows, slate_items)
        self._instruction_texts(rows, fb, llm_instruct, said)
        self._remember(rows, slate_items, fb)
        self._summarise(rows, force=False)
        return fb

    # ------------------------------------------------------------------ full mode
    def _respond_full(
        self, rows: np.ndarray, slate_items: np.ndarray
    ) -> tuple[Feedback, np.ndarray, list[str]]:
        cfg = self.config
        n, k = slate_items.shape
        choice = np.zeros((n, k), dtype=np.int8)
        next_step = np.zeros(n, dtype=np.int8)
        said = [""] * n
        u_items = self._uniforms(rows, P_LLM_ITEMS, k)
        u_next = self._uniforms(rows, P_LLM_NEXT, 1)[:, 0]
        for lo in range(0, n, cfg.max_batch):
            sl = slice(lo, min(n, lo + cfg.max_batch))
            r_chunk = rows[sl].tolist()
            if cfg.style == "score":
                prompts = [
                    self.prompts.score_prompt(self.persona[r], self.memory[r], slate_items[j])
                    for j, r in zip(range(sl.start, sl.stop), r_chunk, strict=False)
                ]
                scores = self.backend.score(prompts)
                if cfg.contrast:
                    neutral = self.backend.score(
                        [
                            self.prompts.score_prompt("", self.memory[r], slate_items[j], neutral=True)
                            for j, r in zip(range(sl.start, sl.stop), r_chunk, strict=False)
                        ]
                    )
                else:
                    neutral = [None] * len(scores)
                for j, s, s0 in zip(range(sl.start, sl.stop), scores, neutral, strict=False):
                    choice[j], next_step[j] = self._decide_scores(s, s0, k, u_items[j], u_next[j])
            else:
                prompts = [
                    self.prompts.generate_prompt(self.persona[r], self.memory[r], slate_items[j])
                    for j, r in zip(range(sl.start, sl.stop), r_chunk, strict=False)
                ]
                texts = self.backend.generate(prompts, cfg.generate_tokens or 4 * k + 24, stop=("\n\n",))
                for j, t in zip(range(sl.start, sl.stop), texts, strict=False):
                    d = parse_decisions(t, k, titles=[self.catalog.title[i] for i in slate_items[j]])
                    choice[j], next_step[j], said[j] = d.choice, d.next_step, d.text
                    self._count_defaults(int((~d.read_items).sum()), int(d.defaults - (~d.read_items).sum()))
        self.counters["full_decisions"] += n
        clicked = choice >= 1
        liked = choice == 2
        examined = np.ones((n, k), dtype=bool)
        fb = self.base.apply_choices(rows, slate_items, clicked, liked, examined, next_step == LEAVE)
        return fb, (next_step == INSTRUCT) & ~(next_step == LEAVE), said

    def _decide_scores(
        self, s: np.ndarray, s0: np.ndarray | None, k: int, u_items: np.ndarray, u_next: float
    ) -> tuple[np.ndarray, int]:
        cfg = self.config
        s = np.asarray(s, dtype=np.float64)
        items = np.full((k, 3), np.nan)
        nxt = np.full(3, np.nan)
        if s.ndim == 2 and s.shape[0] >= k + 1 and s.shape[1] >= 3:
            items, nxt = s[:k, :3], s[k, :3]
            if s0 is not None:
                s0 = np.asarray(s0, dtype=np.float64)
                if s0.shape == s.shape:
                    items = items - s0[:k, :3] + np.log(np.asarray(cfg.prior))
        choice = _sample(items + np.asarray(cfg.item_bias), cfg.temperature, u_items, cfg.decision)
        step = _sample(
            (nxt + np.asarray(cfg.next_bias))[None], cfg.temperature, np.array([u_next]), cfg.decision
        )
        bad_items = int((choice < 0).sum())
        bad_next = int(step[0] < 0)
        self._count_defaults(bad_items, bad_next)
        choice = np.where(choice < 0, 0, choice).astype(np.int8)
        return choice, int(CONTINUE if step[0] < 0 else step[0])

    def _count_defaults(self, items: int, nxt: int) -> None:
        self.counters["default_items"] += items
        self.counters["default_next"] += nxt
        if items or nxt:
            self.counters["parse_failures"] += 1
            self.backend.stats.parse_failures += 1

    def _uniforms(self, rows: np.ndarray, purpose: int, n: int) -> np.ndarray:
        streams = getattr(self.base, "streams", None)
        if isinstance(streams, rng.Streams):
            return streams.uniform(rows, purpose, n)
        return self._fallback_rng.random((len(rows), n))

    # ------------------------------------------------------------------ instructions
    def _instruction_texts(
        self, rows: np.ndarray, fb: Feedback, llm_instruct: np.ndarray, said: list[str]
    ) -> None:
        """Write the text of every instruction; in full mode also register the LLM's own instructions."""
        n = len(rows)
        kind = np.asarray(fb.instruction_type).copy()
        topic = np.asarray(fb.instruction_topic).copy()
        texts = list(fb.instruction_text) if fb.instruction_text is not None else [""] * n
        new = llm_instruct & (kind == INSTRUCTION_NONE)
        if new.any():  # the LLM speaks where the synthetic user did not: a target from its text or mindset
            self.counters["own_instructions"] += int(new.sum())
            for j in np.flatnonzero(new).tolist():
                fallback = self._state_target(int(rows[j]))
                t, g, clean, ok = parse_instruction(said[j], self.topic_names, fallback=fallback)
                if not ok or t == INSTRUCTION_NONE:
                    t, g = fallback
                kind[j], topic[j] = t, g
                texts[j] = clean if ok and len(clean) >= 8 else ""
            self._register(rows[new], kind[new], topic[new])
            fb.left = np.where(new, False, fb.left)
        speaking = np.flatnonzero(kind != INSTRUCTION_NONE)
        if len(speaking) == 0:
            fb.instruction_type, fb.instruction_topic = kind.astype(np.int8), topic.astype(np.int64)
            return
        self.counters["instructions"] += len(speaking)
        need = [j for j in speaking.tolist() if not (new[j] and texts[j])]
        if need and self.config.llm_instructions:
            asks = [
                self.prompts.instruction_prompt(
                    self.persona[int(rows[j])], self.memory[int(rows[j])], int(kind[j]), int(topic[j])
                )
                for j in need
            ]
            outs = self.backend.generate(
                [p for p, _ in asks], self.config.instruction_tokens, stop=("\n", ". ")
            )
            for j, (_, opening), text in zip(need, asks, outs, strict=False):
                texts[j] = clean_generated(opening, text)
                self.counters["instruction_texts"] += bool(texts[j])
        for j in speaking.tolist():
            if not texts[j]:
                g = int(topic[j])
                texts[j] = render_instruction(int(kind[j]), self.topic_names[g] if g >= 0 else "")
                self.counters["instruction_text_fallbacks"] += 1
            t, g, _, ok = parse_instruction(texts[j], self.topic_names)
            if ok:
                self.counters["instruction_target_recovered"] += 1
                if t == kind[j] and (t == INSTRUCTION_NEW or g == topic[j]):
                    self.counters["instruction_target_agrees"] += 1
        fb.instruction_type, fb.instruction_topic = kind.astype(np.int8), topic.astype(np.int64)
        fb.instruction_text = texts

    def _state_target(self, r: int) -> tuple[int, int]:
        """A target from the synthetic mindset: the most boring topic when boredom is notable, else "new"."""
        boredom = getattr(self.base, "boredom", None)
        if boredom is not None and len(boredom) > r:
            g = int(np.argmax(boredom[r]))
            if boredom[r, g] > 0.1:
                return INSTRUCTION_AVOID, g
        return INSTRUCTION_NEW, -1

    def _register(self, rows: np.ndarray, kind: np.ndarray, topic: np.ndarray) -> None:
        """Make the synthetic user hold an instruction the LLM gave (pending state judged on later slates)."""
        register = getattr(self.base, "register_instruction", None)
        if register is None:
            return
        free = self.base.pending_type[rows] == INSTRUCTION_NONE
        register(rows[free], kind[free], topic[free])

    # ------------------------------------------------------------------ memory
    def _remember(self, rows: np.ndarray, slate_items: np.ndarray, fb: Feedback) -> None:
        topics = self.catalog.topic[slate_items]
        choice = fb.clicked.astype(np.int8) + fb.liked.astype(np.int8)
        texts = fb.instruction_text if fb.instruction_text is not None else [""] * len(rows)
        for j, r in enumerate(rows.tolist()):
            line = event_line(self.topic_names, topics[j], choice[j])
            if fb.instruction_type[j] != INSTRUCTION_NONE and texts[j]:
                line += f' I asked: "{texts[j]}"'
            if fb.left[j]:
                line += " Then I left."
            self.memory[r].add(line)

    def _summarise(self, rows: np.ndarray, force: bool) -> None:
        cfg = self.config
        due = [
            int(r)
            for r in rows.tolist()
            if len(self.memory[r].lines) > cfg.memory_lines or (force and self.memory[r].lines)
        ]
        if not due:
            return
        texts: list[str] = [""] * len(due)
        if cfg.llm_summaries:
            for lo in range(0, len(due), cfg.max_batch):
                chunk = due[lo : lo + cfg.max_batch]
                asks = [self.prompts.summary_prompt(self.persona[r], self.memory[r]) for r in chunk]
                outs = self.backend.generate([p for p, _ in asks], cfg.summary_tokens, stop=("\n", ". "))
                texts[lo : lo + len(chunk)] = [
                    clean_generated(o, t) for (_, o), t in zip(asks, outs, strict=False)
                ]
        for r, clean in zip(due, texts, strict=False):
            m = self.memory[r]
            self.counters["summaries"] += 1
            if not clean:
                clean = template_summary(self.topic_names, m)
                self.counters["summary_fallbacks"] += cfg.llm_summaries
            m.summary = clean[:240]
            m.lines = m.lines[len(m.lines) - cfg.keep_lines :] if cfg.keep_lines else []

    def _persona(self, r: int) -> str:
        b = self.base
        rho = (
            np.asarray(b.rho[r])
            if hasattr(b, "rho")
            else np.asarray(b.latent(np.array([r]))[0, : len(self.topic_names)])
        )
        traits = Traits()
        world = getattr(b, "world", None)
        pop = int(b.population_index[r]) if hasattr(b, "population_index") else 0
        try:
            novelty = float(b.novelty_trait[r]) if hasattr(b, "novelty_trait") else 0.5
            patience = 1.0
            talk = 0.5
            if world is not None and hasattr(world, "patience"):
                patience = float(world.patience[pop] / max(np.median(world.patience), 1e-9))
            if world is not None and hasattr(world, "instruction_propensity"):
                talk = float(world.instruction_propensity[pop])
            traits = Traits(novelty=novelty, patience=patience, talkative=talk)
        except (AttributeError, IndexError, TypeError, ValueError):
            pass
        return persona_text(self.topic_names, rho, traits)

    def warm_items(self, items: np.ndarray | None = None, chunk: int = 10) -> int:
        """Pre-encode the prompt lines of ``items`` (default: the whole catalogue) in backends that cache them
        (in-process ``item_cache``); a one-off cost that later decisions no longer pay. Returns the number of
        cached item lines (0 for backends without such a cache)."""
        warm = getattr(self.backend, "warm", None)
        if warm is None:
            return 0
        items = np.arange(self.catalog.num_items) if items is None else np.asarray(items).ravel()
        empty = MindsetMemory()
        if self.config.style == "score":
            prompts = [
                self.prompts.score_prompt("", empty, items[i : i + chunk], neutral=True)
                for i in range(0, len(items), chunk)
            ]
        else:
            prompts = [
                self.prompts.generate_prompt("", empty, items[i : i + chunk])
                for i in range(0, len(items), chunk)
            ]
        return int(warm(prompts))

    # ------------------------------------------------------------------ accounting
    def llm_stats(self) -> dict[str, float]:
        """Backend accounting (calls, tokens, seconds, retries, failures, cache hits) and the model's counters
        (decisions, parse failures, defaults, instructions, summaries), flat, for ``info``."""
        out: dict[str, float] = {f"llm_{k}": v for k, v in self.backend.stats.as_dict().items()}
        out.update({f"llm_{k}": v for k, v in self.counters.items()})
        return out

    def memory_text(self, row: int) -> str:
        """The memory (mindset summary and recent lines) of slot ``row`` as text."""
        return self.memory[row].text()


def _sample(logits: np.ndarray, temperature: float, u: np.ndarray, how: str) -> np.ndarray:
    """Per row: index drawn from softmax(logits / T) by inverse CDF with ``u`` (or argmax); -1 if unusable."""
    logits = np.asarray(logits, dtype=np.float64)
    out = np.full(logits.shape[0], -1, dtype=np.int64)
    ok = np.isfinite(logits).all(axis=1)
    if not ok.any():
        return out
    z = logits[ok] / temperature
    if how == "argmax":
        out[ok] = np.argmax(z, axis=1)
        return out
    z = z - z.max(axis=1, keepdims=True)
    p = np.exp(z)
    p /= p.sum(axis=1, keepdims=True)
    cdf = np.cumsum(p, axis=1)
    out[ok] = np.minimum((np.asarray(u)[ok][:, None] > cdf).sum(axis=1), logits.shape[1] - 1)
    return out


def _raise(name: str) -> Any:
    raise AttributeError(name)
