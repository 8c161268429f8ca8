"""The lenient parsers are total: any text gives a valid answer, defaults are documented and counted."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recoworld.catalog import topic_vocabulary
from recoworld.users.base import INSTRUCTION_AVOID, INSTRUCTION_NEW, INSTRUCTION_NONE, INSTRUCTION_RELATED
from recoworld.users.instructions import render_instruction
from recoworld.users.llm.parsing import (
    CLICK,
    CONTINUE,
    DEFAULT_CHOICE,
    DEFAULT_NEXT,
    INSTRUCT,
    LEAVE,
    LIKE,
    SKIP,
    parse_decisions,
    parse_instruction,
)

NAMES, _ = topic_vocabulary(40)


def test_contract_answer_is_read_exactly():
    d = parse_decisions("1 click\n2 skip\n3 like\nnext: instruct\nsay: less cooking please", 3)
    assert d.choice.tolist() == [CLICK, SKIP, LIKE]
    assert d.next_step == INSTRUCT and d.text == "less cooking please" and d.defaults == 0


@pytest.mark.parametrize(
    "text, choice, nxt, defaults",
    [
        ("1. Click\n2) LIKE\n3 - pass\nNext: leave", [CLICK, LIKE, SKIP], LEAVE, 0),
        ("#1: watch it\nitem 2: dislike\n3: love it!!", [CLICK, SKIP, LIKE], CONTINUE, 1),
        ("Sure! Here you go:\nclick\nskip\nlike\nThen: continue", [CLICK, SKIP, LIKE], CONTINUE, 0),
        ("click skip like", [CLICK, SKIP, LIKE], CONTINUE, 1),
        ("2 like", [SKIP, LIKE, SKIP], CONTINUE, 3),
        ("7 click\n1 like", [LIKE, SKIP, SKIP], CONTINUE, 3),  # item 7 does not exist
        ("", [SKIP, SKIP, SKIP], CONTINUE, 4),
        ("I would rather quit now.", [SKIP, SKIP, SKIP], LEAVE, 3),
        ("next -> instruct: show me more jazz", [SKIP, SKIP, SKIP], INSTRUCT, 3),
    ],
)
def test_lenient_variants(text, choice, nxt, defaults):
    d = parse_decisions(text, 3)
    assert d.choice.tolist() == choice
    assert d.next_step == nxt
    assert d.defaults == defaults


def test_instruct_text_after_the_word():
    d = parse_decisions("1 skip\nnext -> instruct: show me more jazz", 1)
    assert d.next_step == INSTRUCT and d.text == "show me more jazz"


def test_empty_answer_is_all_defaults():
    d = parse_decisions("", 5)
    assert d.failed and d.defaults == 6
    assert (d.choice == DEFAULT_CHOICE).all() and d.next_step == DEFAULT_NEXT


@pytest.mark.parametrize("bad", [None, 42, b"1 click", object(), ["1 click"]])
def test_non_text_never_raises(bad):
    d = parse_decisions(bad, 2)
    assert d.choice.shape == (2,)


@settings(max_examples=300, deadline=None)
@given(text=st.text(max_size=400), n=st.integers(min_value=0, max_value=12))
def test_parse_decisions_is_total(text, n):
    d = parse_decisions(text, n)
    assert d.choice.shape == (n,) and d.choice.dtype == np.int8
    assert set(np.unique(d.choice).tolist()) <= {SKIP, CLICK, LIKE}
    assert d.next_step in (CONTINUE, INSTRUCT, LEAVE)
    assert 0 <= d.defaults <= n + 1
    assert int((~d.read_items).sum()) <= d.defaults <= int((~d.read_items).sum()) + 1
    assert isinstance(d.text, str) and len(d.text) <= 300


@settings(max_examples=200, deadline=None)
@given(
    lines=st.lists(
        st.tuples(st.integers(1, 10), st.sampled_from(["skip", "click", "like", "Skip", "LIKE", "watch"])),
        max_size=10,
    ),
    noise=st.text(alphabet="xyz .,!?\t", max_size=30),
)
def test_numbered_lines_are_read(lines, noise):
    text = noise + "\n" + "\n".join(f"{i}: {w}" for i, w in lines)
    d = parse_decisions(text, 10)
    want = {"skip": SKIP, "click": CLICK, "like": LIKE, "watch": CLICK}
    first: dict[int, int] = {}
    for i, w in lines:
        first.setdefault(i, want[w.lower()])
    for i, v in first.items():
        assert d.choice[i - 1] == v


@settings(max_examples=300, deadline=None)
@given(text=st.text(max_size=300))
def test_parse_instruction_is_total(text):
    kind, topic, clean, ok = parse_instruction(text, NAMES, fallback=(INSTRUCTION_AVOID, 3))
    assert kind in (INSTRUCTION_AVOID, INSTRUCTION_RELATED, INSTRUCTION_NEW)
    assert -1 <= topic < len(NAMES)
    assert isinstance(clean, str)
    if not ok:
        assert (kind, topic) == (INSTRUCTION_AVOID, 3)


@pytest.mark.parametrize("kind", [INSTRUCTION_AVOID, INSTRUCTION_RELATED, INSTRUCTION_NEW])
def test_synthetic_templates_are_recovered(kind):
    """The synthetic user's rendered instructions read back to their structured form, for every topic."""
    for g, name in enumerate(NAMES):
        text = render_instruction(kind, name)
        k, t, _, ok = parse_instruction(text, NAMES)
        assert ok
        assert k == kind
        assert t == (g if kind != INSTRUCTION_NEW else -1)


def test_instruction_without_target_uses_fallback():
    assert parse_instruction("hmm.", NAMES) == (INSTRUCTION_NONE, -1, "hmm.", False)
    assert parse_instruction("hmm.", NAMES, fallback=(INSTRUCTION_NEW, -1))[:2] == (INSTRUCTION_NEW, -1)
    assert parse_instruction("Too much cooking lately, less please", NAMES)[:2] == (INSTRUCTION_AVOID, 0)
    assert parse_instruction("More videos similar to jazz!", NAMES)[:2] == (INSTRUCTION_RELATED, 2)
