"""Lenient, total parsing of LLM answers. Nothing here raises: whatever cannot be read becomes a documented
default
and is counted.

Defaults (``DEFAULT_CHOICE``, ``DEFAULT_NEXT``): an item whose verdict cannot be read is **skipped**; a
missing or
unreadable next step is **continue**. An instruction whose target cannot be recovered from its text gets the
caller's fallback target (the synthetic user's own, in :mod:`recoworld.users.llm.model`).

The answer contract of the generation style (what the prompt asks for; the parser accepts much more)::

    Quick Pasta Tricks: click
    Derby Day Highlights: skip
    ...
    next: instruct
    say: too much cooking lately, show me something related

Lines are matched to items by title when the titles are given (small models copy titles, then often drift);
numbered lines (``1 click``) and bare verdicts (taken in order) are read too.

Accepted variations: ``1. Click``, ``1) like``, ``#3 - skip``, ``item 4: watch``, verdicts without numbers
(taken in
order), several verdicts on one line, synonyms (watch/open/yes → click, love/favourite → like, pass/no/ignore/
dislike → skip; stay/more → continue; quit/exit/stop/bye → leave; ask/tell/request → instruct), any case,
stray
punctuation, chatter before and after.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from recoworld.users.base import (
    INSTRUCTION_AVOID,
    INSTRUCTION_NEW,
    INSTRUCTION_NONE,
    INSTRUCTION_RELATED,
)

__all__ = [
    "CHOICES",
    "DEFAULT_CHOICE",
    "DEFAULT_NEXT",
    "NEXT_STEPS",
    "Decisions",
    "parse_decisions",
    "parse_instruction",
]

CHOICES = ("skip", "click", "like")  # indices 0, 1, 2
NEXT_STEPS = ("continue", "instruct", "leave")  # indices 0, 1, 2
SKIP, CLICK, LIKE = 0, 1, 2
CONTINUE, INSTRUCT, LEAVE = 0, 1, 2
DEFAULT_CHOICE = SKIP
DEFAULT_NEXT = CONTINUE

_CHOICE_WORDS = {
    "skip": SKIP, "skipped": SKIP, "skips": SKIP, "pass": SKIP, "no": SKIP, "ignore": SKIP, "dislike": SKIP,
    "nope": SKIP, "scroll": SKIP, "click": CLICK, "clicked": CLICK, "clicks": CLICK, "watch": CLICK,
    "watched": CLICK, "open": CLICK, "view": CLICK, "yes": CLICK, "play": CLICK, "like": LIKE, "liked": LIKE,
    "likes": LIKE, "love": LIKE, "loved": LIKE, "favourite": LIKE, "favorite": LIKE, "heart": LIKE,
}  # fmt: skip
_NEXT_WORDS = {
    "continue": CONTINUE, "continues": CONTINUE, "stay": CONTINUE, "more": CONTINUE, "keep": CONTINUE,
    "instruct": INSTRUCT, "instruction": INSTRUCT, "ask": INSTRUCT, "tell": INSTRUCT, "request": INSTRUCT,
    "leave": LEAVE, "leaves": LEAVE, "quit": LEAVE, "exit": LEAVE, "stop": LEAVE, "bye": LEAVE,
    "goodbye": LEAVE, "close": LEAVE,
}  # fmt: skip
_NEXT_LABEL = re.compile(
    r"^\s*(?:[-*#>]\s*)?(next|then|after(?:wards)?|decision|action|now)\b\s*[:\-=>)]*", re.I
)
_SAY_LABEL = re.compile(
    r"^\s*(?:[-*#>]\s*)?(say|says|instruction|request|message|tell)\b\s*[:\-=>]+\s*", re.I
)
_NUMBERED = re.compile(
    r"^\s*(?:[-*#>(\[]\s*)?(?:item|video|no\.?|#)?\s*(\d{1,3})\s*[.):\]\-=>]*\s*(.*)$", re.I
)
_WORD = re.compile(r"[a-z]+")


@dataclass
class Decisions:
    """A parsed answer: per-item choice (0 skip, 1 click, 2 like), next step (0 continue, 1 instruct, 2
    leave),
    the instruction text ("" if none), and how many fields fell back to their default."""

    choice: np.ndarray
    next_step: int = DEFAULT_NEXT
    text: str = ""
    defaults: int = 0
    read_items: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))

    @property
    def failed(self) -> bool:
        """True when nothing at all could be read."""
        return not bool(self.read_items.any()) and self.defaults >= len(self.choice) + 1


def _first(words: list[str], table: dict[str, int]) -> int | None:
    for w in words:
        if w in table:
            return table[w]
    return None


def parse_decisions(
    text: object, num_items: int, titles: list[str] | tuple[str, ...] | None = None
) -> Decisions:
    """Read per-item verdicts and the next step from ``text`` (see the module docstring). Never raises.

    With ``titles`` (the slate's item titles), a line that starts with (most of) an item's title gives that
    item's
    verdict ("Pasta Tricks: click"), whatever its position; lines naming an item already read are ignored.
    """
    n = max(0, int(num_items)) if isinstance(num_items, (int, np.integer)) else 0
    try:
        t = text if isinstance(text, str) else ("" if text is None else str(text))
        return _parse_decisions(t, n, [str(x) for x in titles][:n] if titles is not None else None)
    except Exception:  # noqa: BLE001 - total by contract
        return Decisions(
            choice=np.full(n, DEFAULT_CHOICE, dtype=np.int8),
            defaults=n + 1,
            read_items=np.zeros(n, dtype=bool),
        )


def _title_index(line: str, titles: list[str]) -> int | None:
    """The item whose title best matches the start of ``line`` (before a colon or arrow), or None."""
    head = re.split(r"\s*(?::|->|=>|\s-\s)", line, maxsplit=1)[0]
    words = set(_WORD.findall(head.lower()))
    if not words:
        return None
    best, best_score = None, 0.0
    for i, t in enumerate(titles):
        tw = set(_WORD.findall(t.lower()))
        if not tw:
            continue
        score = len(words & tw) / len(words | tw)
        if score > best_score:
            best, best_score = i, score
    return best if best_score >= 0.5 else None


def _parse_decisions(text: str, n: int, titles: list[str] | None = None) -> Decisions:
    choice = np.full(n, DEFAULT_CHOICE, dtype=np.int8)
    read = np.zeros(n, dtype=bool)
    next_step: int | None = None
    say = ""
    unnumbered: list[int] = []
    for raw in text.replace("\r", "\n").split("\n"):
        line = raw.strip()
        if not line:
            continue
        m = _SAY_LABEL.match(line)
        if m:
            say = say or line[m.end() :].strip().strip("\"'")
            continue
        m = _NEXT_LABEL.match(line)
        if m:
            step = _first(_WORD.findall(line[m.end() :].lower()), _NEXT_WORDS)
            if step is not None and next_step is None:
                next_step = step
                if step == INSTRUCT and not say:
                    rest = re.split(r"\binstruct\w*\b\s*[:\-,]*", line, maxsplit=1, flags=re.I)
                    if len(rest) == 2 and len(rest[1].strip()) > 3:
                        say = rest[1].strip().strip("\"'")
            continue
        if titles:
            idx = _title_index(line, titles)
            if idx is not None:
                tail = re.split(r"(?::|->|=>|\s-\s)", line, maxsplit=1)
                verdict = _first(_WORD.findall(tail[-1].lower()), _CHOICE_WORDS) if len(tail) == 2 else None
                if verdict is not None and not read[idx]:
                    choice[idx] = verdict
                    read[idx] = True
                continue
        m = _NUMBERED.match(line)
        if m and m.group(1) is not None and m.group(2) is not None:
            idx = int(m.group(1)) - 1
            verdict = _first(_WORD.findall(m.group(2).lower()), _CHOICE_WORDS)
            if verdict is not None and 0 <= idx < n and not read[idx]:
                choice[idx] = verdict
                read[idx] = True
                continue
            if verdict is not None and not (0 <= idx < n):
                continue  # an item number out of range: ignore the line
        words = _WORD.findall(line.lower())
        verdicts = [_CHOICE_WORDS[w] for w in words if w in _CHOICE_WORDS]
        if verdicts:
            unnumbered.extend(verdicts)
            continue
        step = _first(words, _NEXT_WORDS)
        if step is not None and next_step is None:
            next_step = step
    # verdicts without numbers fill the unread items in order
    free = np.flatnonzero(~read)
    for idx, verdict in zip(free, unnumbered, strict=False):
        choice[idx] = verdict
        read[idx] = True
    defaults = int((~read).sum()) + (next_step is None)
    return Decisions(
        choice=choice,
        next_step=DEFAULT_NEXT if next_step is None else int(next_step),
        text=_clean(say),
        defaults=defaults,
        read_items=read,
    )


# ------------------------------------------------------------------------------------------ instructions
_AVOID_CUES = (
    "too many", "too much", "no more", "less ", "fewer", "stop", "avoid", "tired of", "bored of", "sick of",
    "enough", "without", "don't want", "do not want", "not interested", "hate", "annoy",
)  # fmt: skip
_RELATED_CUES = ("related", "similar", "like that", "along those lines", "close to", "in the same vein")
_NEW_CUES = (
    "something new", "new", "something else", "different", "fresh", "never seen", "haven't seen", "surprise",
    "change", "variety", "other things",
)  # fmt: skip


def _clean(text: str) -> str:
    text = " ".join(text.replace("\n", " ").split())
    return text[:300]


def parse_instruction(
    text: object, topic_names: tuple[str, ...] | list[str], fallback: tuple[int, int] | None = None
) -> tuple[int, int, str, bool]:
    """Recover a structured instruction (type, topic) from a sentence. Never raises.

    Returns ``(type, topic, clean_text, recovered)``: ``recovered`` is False when the target came from
    ``fallback`` (or is "none" without one). Rules: a mentioned topic with an avoid cue ("too many", "tired
    of",
    "no more", ...) and no related cue → AVOID; a mentioned topic otherwise → RELATED; no topic but a novelty
    cue
    ("new", "something else", "different") → NEW.
    """
    try:
        s = text if isinstance(text, str) else ("" if text is None else str(text))
        clean = _clean(s)
        low = " " + clean.lower() + " "
        best, best_pos = -1, len(low) + 1
        for g in sorted(range(len(topic_names)), key=lambda g: -len(str(topic_names[g]))):
            name = str(topic_names[g]).lower().strip()
            if not name:
                continue
            m = re.search(r"(?<![a-z])" + re.escape(name) + r"(?![a-z])", low)
            if m and m.start() < best_pos:
                best, best_pos = g, m.start()
        has_avoid = any(c in low for c in _AVOID_CUES)
        has_related = any(c in low for c in _RELATED_CUES)
        has_new = any(c in low for c in _NEW_CUES)
        if best >= 0:
            kind = INSTRUCTION_AVOID if has_avoid and not has_related else INSTRUCTION_RELATED
            return kind, best, clean, True
        if has_new or (has_avoid and "same" in low):
            return INSTRUCTION_NEW, -1, clean, True
        if fallback is not None:
            return int(fallback[0]), int(fallback[1]), clean, False
        return INSTRUCTION_NONE, -1, clean, False
    except Exception:  # noqa: BLE001 - total by contract
        fb = fallback if fallback is not None else (INSTRUCTION_NONE, -1)
        return int(fb[0]), int(fb[1]), "", False
