"""Personas, compact item lines, mindset memory and the prompts of the LLM user simulator.

Every prompt is a :class:`~recoworld.users.llm.backends.Prompt` whose context is a chain of pieces that
changes
slowly — the shared instructions (with a worked example), the user's persona, then its memory lines, one per
turn —
so that a backend with a prefix cache computes only what is new each turn. Item lines are ``cacheable``
segments
(their text does not depend on the user). The answer cue after each item carries the item's topic, so the
tokens
that decide see the persona.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from recoworld.users.base import INSTRUCTION_AVOID, INSTRUCTION_RELATED
from recoworld.users.llm.backends import Prompt, Segment
from recoworld.users.llm.parsing import CHOICES, NEXT_STEPS

__all__ = ["MindsetMemory", "PromptBuilder", "Traits", "item_line", "persona_text"]

ITEM_ANSWERS = tuple(" " + c for c in CHOICES)  # " skip", " click", " like"
NEXT_ANSWERS = tuple(" " + c for c in NEXT_STEPS)  # " continue", " instruct", " leave"

_SCORE_SYSTEM = (
    "You are a person scrolling a video app. For each video, answer skip, click or like: like what you "
    "love, click what matches your tastes, skip the rest. Then answer continue, instruct (tell the app what "
    "you want) or leave."
)
_SCORE_EXAMPLE_USER = "Profile: I love chess and golf. I also enjoy news.\nVideos:"
_SCORE_EXAMPLE_ANSWER = (
    "\nEndgame Puzzles| (chess) -> like\nStorm Chasers| (weather) -> skip\nPutting Tips| (golf) -> click"
    "\nRamen Taste Test| (food reviews) -> skip\nSpeedrun Secrets| (gaming) -> skip\nNext -> continue"
)
_GEN_SYSTEM = (
    "You are a person scrolling a video app. For each video write its title, a colon and skip, click or "
    "like. Like what you love, click what matches your tastes, skip the rest. Then write 'next:' and "
    "continue, instruct or leave; if you instruct, add a line 'say:' with one short sentence telling the app "
    "what you want."
)
_GEN_EXAMPLE_USER = (
    "Profile: I love chess and golf. I also enjoy news.\nVideos:\nEndgame Puzzles (chess)\n"
    "Storm Chasers (weather)\nPutting Tips (golf)\nRamen Taste Test (food reviews)"
)
_GEN_EXAMPLE_ANSWER = (
    "Endgame Puzzles: like\nStorm Chasers: skip\nPutting Tips: click\nRamen Taste Test: skip\nnext: continue"
)
_INSTRUCT_SYSTEM = (
    "You are a person using a video app. Tell the app, in one short sentence in the first person, what you "
    "want to see. Mention the topic by name."
)
_INSTRUCT_EXAMPLES = (
    (
        "You have seen too many cooking videos.",
        "There is too much cooking in my feed, please show me less of it.",
    ),
    (
        "You want more videos related to jazz.",
        "I want more videos related to jazz, something similar please.",
    ),
    ("Everything looks the same.", "Show me something new, I am tired of seeing the same things."),
)
_SUMMARY_SYSTEM = (
    "Summarise a person's recent experience with a video app in one short sentence in the first person: what "
    "they enjoyed, what bored them, how they feel."
)


@dataclass(frozen=True)
class Traits:
    """Behavioural traits that shape a persona's wording (all in [0, 1] except ``patience``, relative to the
    population median: > 1 more patient)."""

    novelty: float = 0.5  # taste for new topics
    patience: float = 1.0
    talkative: float = 0.5  # propensity to tell the app what they want


def persona_text(topic_names: tuple[str, ...], rho: np.ndarray, traits: Traits, top: int = 3) -> str:
    """A short first-person profile from the interests ``rho`` (over topics) and traits."""
    rho = np.asarray(rho, dtype=np.float64)
    order = np.argsort(-rho, kind="stable")[: max(1, top)]
    names = [topic_names[g] for g in order if rho[g] > 0] or [topic_names[int(order[0])]]
    if len(names) == 1:
        s = f"I love {names[0]}."
    else:
        s = f"I love {names[0]} and {names[1]}."
        if len(names) > 2:
            s += f" I also enjoy {', '.join(names[2:])}."
    bits = []
    if traits.novelty > 0.65:
        bits.append("I like discovering new topics")
    elif traits.novelty < 0.35:
        bits.append("I stick to what I know")
    if traits.patience < 0.7:
        bits.append("I get bored quickly")
    elif traits.patience > 1.4:
        bits.append("I am patient")
    if bits:
        text = ", ".join(bits)
        s += " " + text[0].upper() + text[1:] + "."
    return s


def item_line(catalog: Any, item: int, describe: bool = False) -> str:
    """The cached part of an item's line: its title (and a compact description when ``describe``)."""
    title = catalog.title[item]
    if not describe:
        return title
    desc = catalog.description[item]
    tail = desc.split(" about ", 1)[-1].rstrip(".") if " about " in desc else desc.rstrip(".")
    return f"{title}: {tail}"


@dataclass
class MindsetMemory:
    """A user's memory as text: an LLM-written ``summary`` (the mindset) and recent event ``lines``.

    Carried across turns and sessions; when more than ``max_lines`` lines accumulate, the caller replaces them
    by a
    new summary (:meth:`PromptBuilder.summary_prompt`), keeping the last ``keep_lines``.
    """

    summary: str = ""
    lines: list[str] = field(default_factory=list)

    def add(self, line: str) -> None:
        line = " ".join(line.split())
        if line:
            self.lines.append(line)

    def pieces(self) -> tuple[str, ...]:
        out = (f"Mindset: {self.summary}\n",) if self.summary else ()
        return out + tuple(f"- {line}\n" for line in self.lines)

    def text(self) -> str:
        return "".join(self.pieces())

    def clear(self) -> None:
        self.summary = ""
        self.lines = []


class PromptBuilder:
    """Builds the simulator's prompts for one backend's chat template and one catalogue."""

    def __init__(self, backend: Any, catalog: Any, *, describe: bool = False):
        self.catalog = catalog
        self.describe = describe
        self.topic_names: tuple[str, ...] = tuple(catalog.topic_names)
        chat = backend.chat
        sys_s, user_s, asst_s = chat(_SCORE_SYSTEM, _SCORE_EXAMPLE_USER, _SCORE_EXAMPLE_ANSWER.lstrip("\n"))
        end = getattr(backend, "chat_format", None)
        self._end = end.end if end is not None else "\n"
        # split the user wrapper around its content
        marker = "\x00"
        _, wrapped, asst_open = chat("", marker, "")
        self._user_open, self._user_close = wrapped.split(marker, 1)
        self._asst_open = asst_open
        self.score_system = sys_s + user_s + asst_s + self._end
        g_sys, g_user, g_asst = chat(_GEN_SYSTEM, _GEN_EXAMPLE_USER, _GEN_EXAMPLE_ANSWER)
        self.generate_system = g_sys + g_user + g_asst + self._end
        inst = chat(_INSTRUCT_SYSTEM, "", "")[0]
        for situation, answer in _INSTRUCT_EXAMPLES:
            _, u, a = chat("", situation, answer)
            inst += u + a + self._end
        self.instruct_system = inst
        self.summary_system = chat(_SUMMARY_SYSTEM, "", "")[0]
        self._score_block_context = self.score_system + self._asst_open.rstrip("\n")

    # ------------------------------------------------------------------ pieces
    def persona_piece(self, persona: str) -> str:
        return f"{self._user_open}Profile: {persona}\n"

    def context(self, system: str, persona: str, memory: MindsetMemory) -> tuple[str, ...]:
        return (system, self.persona_piece(persona), *memory.pieces())

    # ------------------------------------------------------------------ decisions
    def score_prompt(
        self, persona: str, memory: MindsetMemory, items: np.ndarray, neutral: bool = False
    ) -> Prompt:
        """Full mode, scoring style: every item scored (skip/click/like) and the next step, in one prompt."""
        c = self.catalog
        if neutral:
            ctx: tuple[str, ...] = (self.score_system, self.persona_piece("I watch all kinds of videos."))
        else:
            ctx = self.context(self.score_system, persona, memory)
        body = [Segment("Videos:" + self._user_close + self._asst_open.rstrip("\n"))]
        for i in np.asarray(items).tolist():
            body.append(Segment("\n" + item_line(c, i, self.describe) + "| (", cacheable=True))
            body.append(Segment(f"{self.topic_names[c.topic[i]]}) ->", answers=ITEM_ANSWERS))
        body.append(Segment("\nNext ->", answers=NEXT_ANSWERS))
        return Prompt(ctx, tuple(body), block_context=self._score_block_context)

    def generate_prompt(self, persona: str, memory: MindsetMemory, items: np.ndarray) -> Prompt:
        """Full mode, generation style: the list in the user turn, "Title: verdict" lines generated."""
        c = self.catalog
        body = [Segment("Videos:")]
        for i in np.asarray(items).tolist():
            body.append(
                Segment(
                    f"\n{item_line(c, i, self.describe)} ({self.topic_names[c.topic[i]]})", cacheable=True
                )
            )
        body.append(Segment(self._user_close + self._asst_open))
        return Prompt(
            self.context(self.generate_system, persona, memory),
            tuple(body),
            block_context=self.generate_system + self._user_open + "Videos:",
        )

    # ------------------------------------------------------------------ texts
    def instruction_prompt(
        self, persona: str, memory: MindsetMemory, kind: int, topic: int
    ) -> tuple[Prompt, str]:
        """Ask for the user's reflective instruction given its structured target (type, topic).

        Returns the prompt and the opening of the answer it ends with (the model continues it): the opening
        states the target, so the text stays grounded in the structured instruction even for small models.
        """
        name = self.topic_names[topic] if 0 <= topic < len(self.topic_names) else ""
        if kind == INSTRUCTION_AVOID and name:
            situation, opening = (
                f"You have seen too many {name} videos.",
                f"There are too many {name} videos in my feed,",
            )
        elif kind == INSTRUCTION_RELATED and name:
            situation, opening = (
                f"You want more videos related to {name}.",
                f"I want more videos related to {name},",
            )
        else:
            situation, opening = "Everything looks the same.", "I want something new,"
        recent = f"- {memory.lines[-1]}\n" if memory.lines else ""  # the latest event only: short prompts
        body = (
            Segment(f"Profile: {persona}\n{recent}{situation}" + self._user_close + self._asst_open),
            Segment(opening),
        )
        return Prompt((self.instruct_system, self._user_open), body), opening

    def summary_prompt(self, persona: str, memory: MindsetMemory) -> tuple[Prompt, str]:
        """Ask for a one-sentence mindset summarising the memory; returns the prompt and the opening."""
        lines = (f"Earlier: {memory.summary}\n" if memory.summary else "") + "".join(
            f"{x}\n" for x in memory.lines
        )
        opening = "Lately I"
        body = (
            Segment(f"Profile: {persona}\n{lines}" + self._user_close + self._asst_open),
            Segment(opening),
        )
        return Prompt((self.summary_system, self._user_open), body), opening


def clean_generated(opening: str, text: str, max_chars: int = 240) -> str:
    """The opening plus the generated continuation, cut at its first sentence end and at the first repeated
    clause; "" when what remains is unusable (too short, an apology loop, not text)."""
    raw = str(text)
    sep = " " if raw[:1].isspace() else ""
    cont = " ".join(raw.split())
    for end in (". ", "! ", "? "):
        i = cont.find(end)
        if i >= 0:
            cont = cont[: i + 1]
    seen: set[str] = set()
    kept = []
    for clause in re.split(r"(?<=[,;.!?])\s+", cont):
        key = clause.lower().strip(" ,;.!?")
        if key and key in seen:
            break
        seen.add(key)
        kept.append(clause)
    cont = " ".join(kept).strip()
    low = cont.lower()
    if any(bad in low for bad in ("sorry", "as an ai", "assistant", "i cannot", "i can't", "unable to")):
        return ""
    if len(cont) < 2 or not any(ch.isalpha() for ch in cont):
        return ""
    out = (opening + ("" if cont[:1] in ",.;!?'" else sep) + cont).strip()
    out = out[:max_chars]
    return out if out.endswith((".", "!", "?")) else out.rstrip(",; ") + "."


def event_line(topic_names: tuple[str, ...], topics: np.ndarray, choice: np.ndarray) -> str:
    """One memory line for a slate: which topics were liked and clicked, how many skipped."""
    liked = [topic_names[t] for t, c in zip(topics, choice, strict=False) if c == 2]
    clicked = [topic_names[t] for t, c in zip(topics, choice, strict=False) if c == 1]
    skipped = int((np.asarray(choice) == 0).sum())
    parts = []
    if liked:
        parts.append("liked " + ", ".join(dict.fromkeys(liked)))
    if clicked:
        parts.append("watched " + ", ".join(dict.fromkeys(clicked)))
    if not parts:
        return f"Nothing caught my eye ({skipped} skipped)."
    return ("; ".join(parts) + f"; skipped {skipped}.").capitalize()


def template_summary(topic_names: tuple[str, ...], memory: MindsetMemory) -> str:
    """A deterministic fallback mindset when the LLM's summary is unusable: the topics mentioned most."""
    counts: dict[str, int] = {}
    for line in memory.lines:
        low = line.lower()
        for name in topic_names:
            if name.lower() in low:
                counts[name] = counts.get(name, 0) + 1
    top = sorted(counts, key=lambda k: -counts[k])[:3]
    if not top:
        return memory.summary or "Not much has caught my eye lately."
    return "Lately I have been watching " + ", ".join(top) + "."
