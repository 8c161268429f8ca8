"""A real llama.cpp OpenAI-compatible server (started by the session fixture) serving the embedded GGUF."""

from __future__ import annotations

import numpy as np
import pytest

from recoworld.config import WorldConfig
from recoworld.envs.core import Simulator
from recoworld.users.llm import Prompt, Segment, make_backend, make_llm_user_model
from recoworld.users.synthetic import SyntheticUserModel

pytestmark = pytest.mark.server


@pytest.fixture(scope="module")
def server_backend(llama_server):
    b = make_backend(base_url=llama_server, concurrency=1, timeout=60.0)
    yield b
    b.close()


def test_server_scores_and_generates(server_backend):
    b = server_backend
    assert b.model and b.model != "default"
    p = Prompt(
        ("<|im_start|>system\nAnswer yes or no.<|im_end|>\n",),
        (
            Segment(
                "<|im_start|>user\nIs the sky blue?<|im_end|>\n<|im_start|>assistant\n", answers=("Yes", "No")
            ),
        ),
    )
    (s,) = b.score([p])
    assert s.shape == (1, 2) and np.isfinite(s).all() and (s <= 0).all()
    (text,) = b.generate([Prompt.of("<|im_start|>user\nSay hello.<|im_end|>\n<|im_start|>assistant\n")], 8)
    assert isinstance(text, str) and text
    assert b.stats.prompt_tokens > 0 and b.stats.completion_tokens > 0 and b.stats.failures == 0


@pytest.mark.parametrize("style", ["score", "generate"])
def test_user_model_through_the_server(server_backend, style):
    n = 2

    def factory(world, cfg, streams):
        return make_llm_user_model(SyntheticUserModel(world, cfg, streams), mode="full", style=style,
                                   backend=server_backend)  # fmt: skip

    sim = Simulator(WorldConfig(), n, user_model=factory)
    sim.reset(np.arange(n), np.arange(n))
    slates, rep = sim.validate(np.tile(np.arange(10), (n, 1)))
    res = sim.step(slates, rep)
    assert res.info["clicked"].shape == (n, 10)
    st = sim.users.llm_stats()
    assert st["llm_failures"] == 0 and st["llm_full_decisions"] == n
