"""LLMUserModel's decision mapping, defaults, instructions and memory, with a deterministic test double
backend
(the real backends are exercised in test_llm_inprocess.py, test_llm_server.py and test_llm_http_faults.py)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from recoworld import rng
from recoworld.config import WorldConfig
from recoworld.users.base import INSTRUCTION_AVOID, INSTRUCTION_NONE
from recoworld.users.llm import (
    BaseBackend,
    LLMUnavailableError,
    LLMUserConfig,
    LLMUserModel,
    parse_instruction,
)
from recoworld.users.synthetic import SyntheticUserModel


class ScriptedBackend(BaseBackend):
    """Scores: click is likely exactly for items of ``loved`` topics; the next step is ``next_step``.
    Generations: ``gen(prompt_text) -> str``. ``nan=True``: every score fails."""

    name = "scripted"

    def __init__(self, loved: str = "", next_step: int = 0, gen=None, nan: bool = False):
        super().__init__(cache_entries=0)
        self.loved, self.next_step, self.gen, self.nan = loved, next_step, gen, nan

    def _score_uncached(self, prompts):
        out = []
        for p in prompts:
            rows = []
            for text, answers in p.score_points():
                if self.nan:
                    rows.append([np.nan] * len(answers))
                elif len(answers) == 3 and answers[0].strip() == "continue":
                    rows.append([0.0 if j == self.next_step else -20.0 for j in range(3)])
                else:
                    line = text.rsplit("\n", 1)[-1]
                    rows.append(
                        [-20.0, 0.0, -20.0]
                        if self.loved and f"({self.loved})" in line
                        else [0.0, -20.0, -20.0]
                    )
            out.append(np.array(rows))
        return out

    def _generate_uncached(self, prompts, max_tokens, stop):
        return [self.gen(p.text) if self.gen else "" for p in prompts]


def make(world, backend, n=3, **kw):
    streams = rng.Streams(n)
    base = SyntheticUserModel(world, WorldConfig(), streams)
    um = LLMUserModel(base, backend, **kw)
    um.allocate(n)
    rows = np.arange(n)
    streams.assign(rows, rng.user_key(np.arange(n), np.zeros(n, dtype=np.int64)))
    um.reset_users(rows, np.arange(n) * 11)
    um.start_session(rows, np.zeros(n, dtype=np.int64))
    return um, base, rows


def slate_with_topic(world, topic: int, n: int) -> np.ndarray:
    c = world.catalog
    mine = np.flatnonzero(c.topic == topic)[:3]
    other = np.flatnonzero(c.topic != topic)[:7]
    return np.tile(np.concatenate([mine, other]), (n, 1))


def test_config_validation_names_the_field():
    for kw, field in [({"mode": "x"}, "mode"), ({"style": "x"}, "style"), ({"temperature": 0}, "temperature"),
                      ({"keep_lines": 20}, "keep_lines"), ({"prior": (1, 0, 1)}, "prior"),
                      ({"item_bias": (0, 1)}, "item_bias")]:  # fmt: skip
        with pytest.raises(ValueError, match=field):
            LLMUserConfig(**kw)


def test_unknown_keyword_is_an_error(world):
    with pytest.raises(ValueError, match="colour"):
        make(world, ScriptedBackend(), colour="red")


def test_full_mode_decisions_replace_the_synthetic_choices(world):
    um, base, rows = make(world, ScriptedBackend(loved=world.catalog.topic_names[4]), mode="full")
    slates = slate_with_topic(world, 4, 3)
    rho = base.rho.copy()
    fb = um.respond(rows, slates)
    assert fb.clicked[:, :3].all() and not fb.clicked[:, 3:].any()  # exactly the loved topic's items
    assert not fb.liked.any() and fb.examined.all() and not fb.left.any()
    assert (base.rho[:, 4] > rho[:, 4]).all()  # fed through the synthetic mindset update
    assert um.counters["full_decisions"] == 3 and um.counters["parse_failures"] == 0
    assert "watched " + world.catalog.topic_names[4] in um.memory_text(0).lower()


def test_full_mode_leave(world):
    um, _, rows = make(world, ScriptedBackend(next_step=2), mode="full")
    fb = um.respond(rows, slate_with_topic(world, 0, 3))
    assert fb.left.all()
    assert "Then I left." in um.memory_text(1)


def test_full_mode_llm_instruction_is_registered_and_grounded(world):
    gen = lambda text: " please show me less of it."  # noqa: E731
    um, base, rows = make(world, ScriptedBackend(next_step=1, gen=gen), mode="full")
    base.boredom[:, 7] = 0.9  # the mindset says: bored of topic 7
    fb = um.respond(rows, slate_with_topic(world, 0, 3))
    assert (fb.instruction_type == INSTRUCTION_AVOID).all() and (fb.instruction_topic == 7).all()
    assert not fb.left.any()
    assert (base.pending_type[rows] == INSTRUCTION_AVOID).all() and (base.pending_topic[rows] == 7).all()
    name = world.catalog.topic_names[7]
    assert (
        fb.instruction_text[0] == f"There are too many {name} videos in my feed, please show me less of it."
    )
    assert parse_instruction(fb.instruction_text[0], um.topic_names)[:2] == (INSTRUCTION_AVOID, 7)
    assert um.counters["instruction_target_agrees"] == 3


def test_unreadable_scores_fall_back_to_skip_and_continue(world):
    um, _, rows = make(world, ScriptedBackend(nan=True), mode="full")
    fb = um.respond(rows, slate_with_topic(world, 0, 3))
    assert not fb.clicked.any() and not fb.left.any()
    assert um.counters["parse_failures"] == 3
    assert um.counters["default_items"] == 30 and um.counters["default_next"] == 3
    assert um.llm_stats()["llm_parse_failures"] == 3


def test_generation_style_reads_titles(world):
    c = world.catalog
    slates = slate_with_topic(world, 2, 2)
    title = c.title[slates[0, 1]]
    gen = lambda text: f"Something odd\n{title}: like\nnext: continue"  # noqa: E731
    um, _, rows = make(world, ScriptedBackend(gen=gen), n=2, mode="full", style="generate")
    fb = um.respond(rows, slates)
    assert fb.liked[:, 1].all() and fb.clicked.sum() == 2
    assert um.counters["default_items"] == 18 and um.counters["default_next"] == 0


def test_hybrid_keeps_synthetic_behaviour_and_falls_back_to_templates(world):
    um, base, rows = make(world, ScriptedBackend(gen=lambda t: "I'm sorry, I'm sorry"), n=4, mode="hybrid")
    twin_streams = rng.Streams(4)
    twin = SyntheticUserModel(world, WorldConfig(), twin_streams)
    twin.allocate(4)
    twin_streams.assign(rows, rng.user_key(np.arange(4), np.zeros(4, dtype=np.int64)))
    twin.reset_users(rows, np.arange(4) * 11)
    twin.start_session(rows, np.zeros(4, dtype=np.int64))
    spoke = 0
    for _ in range(12):
        slates = np.tile(world.catalog.items_by_topic[:10], (4, 1))  # monotonous: boredom, instructions
        fb = um.respond(rows, slates)
        ft = twin.respond(rows, slates)
        np.testing.assert_array_equal(fb.clicked, ft.clicked)  # the synthetic model decides
        np.testing.assert_array_equal(fb.instruction_type, ft.instruction_type)
        base.streams.advance(rows)
        twin_streams.advance(rows)
        spoke += int((fb.instruction_type != INSTRUCTION_NONE).sum())
        if fb.instruction_text is not None:
            for j in np.flatnonzero(fb.instruction_type != INSTRUCTION_NONE):
                assert fb.instruction_text[j]  # the apology loop was rejected: template text
    assert spoke > 0 and um.counters["instruction_text_fallbacks"] == spoke


def test_sampled_decisions_are_reproducible_and_batch_invariant(world):
    b = ScriptedBackend(loved=world.catalog.topic_names[1])
    kw = {"mode": "full", "decision": "sample", "item_bias": (0.0, 19.0, 0.0)}  # click ~ 50/50 everywhere
    um, _, rows = make(world, b, n=4, **kw)
    one, _, _ = make(world, b, n=4, **kw)
    slates = slate_with_topic(world, 1, 4)
    full = um.respond(rows, slates).clicked
    part = one.respond(np.array([2]), slates[2:3]).clicked
    np.testing.assert_array_equal(full[2], part[0])
    assert 0 < full.mean() < 1


def test_attributes_are_forwarded_to_the_base(world):
    um, base, _ = make(world, ScriptedBackend(), mode="hybrid")
    assert um.population_index is base.population_index
    with pytest.raises(AttributeError):
        _ = um.no_such_attribute


def test_import_does_not_pull_torch():
    code = (
        "import sys, recoworld, recoworld.users.llm; "
        "assert 'torch' not in sys.modules and 'transformers' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_missing_model_is_one_clear_error(tmp_path):
    from recoworld.users.llm import make_backend

    with pytest.raises(LLMUnavailableError, match="does not exist|pip install"):
        make_backend(model_path=tmp_path / "nope")
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(LLMUnavailableError, match=r"not a \.gguf|pip install"):
        make_backend(model_path=tmp_path / "notes.txt")
    with pytest.raises(LLMUnavailableError, match="config.json|pip install"):
        make_backend(model_path=tmp_path)
    with pytest.raises(ValueError, match="base_url"):
        make_backend(model_path=tmp_path, base_url="http://127.0.0.1:1")


def test_llm_user_factory_builds_the_wrapper_for_the_simulator():
    import pickle

    from recoworld.envs.core import Simulator
    from recoworld.users.llm import llm_user_factory

    with pytest.raises(ValueError, match="colour"):
        llm_user_factory(colour="red")
    f = llm_user_factory(mode="hybrid", backend=ScriptedBackend(), llm_instructions=False)
    assert "mode='hybrid'" in repr(f)
    pickle.loads(pickle.dumps(llm_user_factory(mode="full", base_url="http://127.0.0.1:1")))
    sim = Simulator(WorldConfig(), 2, user_model=f)
    sim.reset(np.arange(2), np.arange(2))
    slates, rep = sim.validate(np.tile(np.arange(10), (2, 1)))
    res = sim.step(slates, rep)
    assert isinstance(sim.users, LLMUserModel) and res.info["clicked"].shape == (2, 10)


def test_user_model_pickles_with_its_backend_by_reference(world, fault_server):
    import pickle

    from recoworld.users.llm.openai_backend import OpenAIBackend

    b = OpenAIBackend(fault_server.url, concurrency=1)
    um, _, rows = make(world, b, n=2, mode="full")
    um.respond(rows, slate_with_topic(world, 0, 2))
    clone = pickle.loads(pickle.dumps(um))
    assert clone.backend is b  # same process: the live backend, not a second one
    assert clone.memory_text(0) == um.memory_text(0)
    fb = clone.respond(rows, slate_with_topic(world, 0, 2))
    assert fb.clicked.shape == (2, 10)
