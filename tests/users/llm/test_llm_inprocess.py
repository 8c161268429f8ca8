"""The embedded SmolLM2-135M-Instruct in-process: the KV-cached engine against the plain transformers model,
and
the LLM user model through the real simulator in every mode."""

from __future__ import annotations

import numpy as np
import pytest

from recoworld.config import WorldConfig
from recoworld.envs.core import Simulator
from recoworld.users.llm import Prompt, Segment, make_llm_user_model
from recoworld.users.synthetic import SyntheticUserModel

pytestmark = pytest.mark.llm

ANSWERS = (" skip", " click", " like")


def reference_logprobs(backend, text_points: list[str], answers) -> np.ndarray:
    """Log-probabilities of the answers after each text, by one plain forward pass of the HF model."""
    import torch

    tok, model = backend.tokenizer, backend.model
    full = text_points[-1]
    ids = tok(full, add_special_tokens=False)["input_ids"]
    with torch.inference_mode():
        lp = torch.log_softmax(model(torch.tensor([ids])).logits[0].float(), dim=-1)
    out = []
    for t in text_points:
        n = len(tok(t, add_special_tokens=False)["input_ids"])
        out.append([float(lp[n - 1, tok(a, add_special_tokens=False)["input_ids"][0]]) for a in answers])
    return np.array(out)


def exact_prompt(tag: str) -> Prompt:
    return Prompt(
        (
            "<|im_start|>system\nYou rate videos: skip, click or like.<|im_end|>\n",
            f"<|im_start|>user\nI love {tag}.\n",
        ),
        (
            Segment("Videos:<|im_end|>\n<|im_start|>assistant\nPasta Night (cooking) ->", answers=ANSWERS),
            Segment("\nDerby Day (football) ->", answers=ANSWERS),
        ),
    )


def test_engine_matches_the_plain_model_and_reuses_prefixes(embedded_backend):
    b = embedded_backend
    assert b.engine is not None
    p = exact_prompt("cooking and jazz")
    ref = reference_logprobs(b, [t for t, _ in p.score_points()], ANSWERS)
    reused = b.stats.reused_tokens
    (first,) = b.score([p])
    np.testing.assert_allclose(first, ref, atol=0.15)  # bf16/fp32 kernels differ slightly
    p2 = Prompt(p.context + ("Yesterday I watched pasta videos.\n",), p.body)
    (second,) = b.score([p2])  # the context of p is cached: only the new line and the body are computed
    assert b.stats.reused_tokens > reused
    ref2 = reference_logprobs(b, [t for t, _ in p2.score_points()], ANSWERS)
    np.testing.assert_allclose(second, ref2, atol=0.15)
    hits = b.stats.cache_hits
    (again,) = b.score([p])
    assert b.stats.cache_hits == hits + 1
    np.testing.assert_array_equal(again, first)


def test_batched_equals_single(embedded_backend):
    b = embedded_backend
    prompts = [
        exact_prompt(t) for t in ("chess", "golf and tennis", "very many different things like science")
    ]
    batched = b._score_uncached(prompts)
    single = [b._score_uncached([p])[0] for p in prompts]
    for x, y in zip(batched, single, strict=False):
        np.testing.assert_allclose(x, y, atol=0.05)


def test_generation_matches_plain_greedy(embedded_backend):
    import torch

    b = embedded_backend
    text = "<|im_start|>user\nName three fruits.<|im_end|>\n<|im_start|>assistant\n"
    (ours,) = b.generate([Prompt((text,))], 8, stop=())
    ids = b.tokenizer(text, add_special_tokens=False)["input_ids"]
    with torch.inference_mode():
        out = b.model.generate(torch.tensor([ids]), max_new_tokens=8, do_sample=False,
                               pad_token_id=b.tokenizer.eos_token_id)  # fmt: skip
    theirs = b.tokenizer.decode(out[0, len(ids) :], skip_special_tokens=True)
    assert ours.split()[:3] == theirs.split()[:3]


def test_cacheable_blocks_give_finite_scores(embedded_backend):
    b = embedded_backend
    p = Prompt(
        ("<|im_start|>system\nRate videos.<|im_end|>\n", "<|im_start|>user\nI love cooking.\n"),
        (Segment("Videos:<|im_end|>\n<|im_start|>assistant"), Segment("\nPasta Night| (", cacheable=True),
         Segment("cooking) ->", answers=ANSWERS), Segment("\nDerby Day| (", cacheable=True),
         Segment("football) ->", answers=ANSWERS)),
    )  # fmt: skip
    (s,) = b.score([p])
    assert s.shape == (2, 3) and np.isfinite(s).all() and (s < 0).all()


@pytest.mark.parametrize(("mode", "style"), [("full", "score"), ("full", "generate"), ("hybrid", "score")])
def test_user_model_through_the_simulator(embedded_backend, mode, style):
    n = 3

    def factory(world, cfg, streams):
        return make_llm_user_model(SyntheticUserModel(world, cfg, streams), mode=mode, style=style,
                                   backend=embedded_backend, memory_lines=2, keep_lines=1)  # fmt: skip

    sim = Simulator(WorldConfig(), n, user_model=factory)
    sim.reset(np.arange(n), np.arange(n))
    users = sim.users
    assert users.persona[0].startswith("I love")
    rng = np.random.default_rng(0)
    for _ in range(3):
        action = np.stack([rng.permutation(50)[:10] for _ in range(n)])
        slates, rep = sim.validate(action)
        rho = users.rho.copy()
        res = sim.step(slates, rep)
        clicked = res.info["clicked"]
        assert clicked.shape == (n, 10) and (res.info["liked"] <= clicked).all()
        moved = np.abs(users.rho - rho).sum(axis=1) > 0
        assert (moved | ~clicked.any(axis=1) | res.info["session_ended"]).all()  # mindset follows the choices
        done = res.terminated | res.truncated
        if done.any():
            sim.next_episode(np.flatnonzero(done))
    st = users.llm_stats()
    assert st["llm_decisions"] == 3 * n and st["llm_failures"] == 0
    assert st["llm_full_decisions"] == (3 * n if mode == "full" else 0)
    assert st["llm_summaries"] >= 1  # memory_lines=2: summarised by the LLM (or its documented fallback)
    assert "Mindset:" in users.memory_text(0)


def test_hybrid_instruction_texts_are_grounded(world, embedded_backend):
    from recoworld import rng
    from recoworld.users.base import INSTRUCTION_AVOID, INSTRUCTION_RELATED, Feedback
    from recoworld.users.llm import LLMUserModel, parse_instruction

    base = SyntheticUserModel(world, WorldConfig(), rng.Streams(2))
    um = LLMUserModel(base, embedded_backend, mode="hybrid")
    um.allocate(2)
    rows = np.arange(2)
    um.reset_users(rows, np.array([1, 2]))
    um.start_session(rows, np.zeros(2, dtype=np.int64))
    fb = Feedback(
        clicked=np.zeros((2, 10), bool), liked=np.zeros((2, 10), bool), examined=np.ones((2, 10), bool),
        watch_minutes=np.zeros((2, 10)), left=np.zeros(2, bool),
        instruction_type=np.array([INSTRUCTION_AVOID, INSTRUCTION_RELATED], np.int8),
        instruction_topic=np.array([0, 2]), instruction_followed=np.full(2, -1, np.int8),
        true_utility=np.zeros((2, 10)),
    )  # fmt: skip
    um._instruction_texts(rows, fb, np.zeros(2, bool), ["", ""])
    for j in range(2):
        kind, topic, _, ok = parse_instruction(fb.instruction_text[j], um.topic_names)
        assert ok and (kind, topic) == (fb.instruction_type[j], fb.instruction_topic[j])


def test_backend_pickles_by_reference(embedded_backend):
    import pickle

    assert pickle.loads(pickle.dumps(embedded_backend)) is embedded_backend


def test_small_item_cache_evicts_safely(embedded_backend):
    """With an item-line cache smaller than a few slates, eviction never drops a line the batch needs."""
    eng = embedded_backend.engine
    budget = eng.blocks.budget
    eng.blocks.budget = eng.per_token * 120  # room for ~12 titles
    failures = embedded_backend.stats.failures
    try:
        for k in range(3):
            body = [Segment("Videos:<|im_end|>\n<|im_start|>assistant")]
            for j in range(8):
                body += [Segment(f"\nVideo number {k * 8 + j} about things| (", cacheable=True),
                         Segment("misc) ->", answers=ANSWERS)]  # fmt: skip
            p = Prompt(
                ("<|im_start|>system\nRate videos.<|im_end|>\n", f"<|im_start|>user\nUser {k}.\n"),
                tuple(body),
            )
            (s,) = embedded_backend.score([p])
            assert np.isfinite(s).all()
    finally:
        eng.blocks.budget = budget
    assert embedded_backend.stats.failures == failures
