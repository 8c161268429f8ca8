"""The LLM user simulator (DESIGN.md §4, docs/llm_users.md): the synthetic user's latent state, spoken and (in
full
mode) decided by a language model, in-process (transformers) or through any OpenAI-compatible server.

Importing this package imports neither torch nor transformers; backends import them when constructed and raise
:class:`LLMUnavailableError` naming the extra to install (``pip install 'recoworld[llm]'``) when they are
missing.
"""

from recoworld.users.llm.backends import (
    BackendStats,
    BaseBackend,
    ChatFormat,
    LLMBackend,
    LLMError,
    LLMUnavailableError,
    Prompt,
    RetryPolicy,
    Segment,
    embedded_model_path,
)
from recoworld.users.llm.factory import llm_user_factory, make_backend, make_llm_user_model, shared_backend
from recoworld.users.llm.model import MODES, STYLES, LLMUserConfig, LLMUserModel
from recoworld.users.llm.parsing import Decisions, parse_decisions, parse_instruction

__all__ = [
    "MODES",
    "STYLES",
    "BackendStats",
    "BaseBackend",
    "ChatFormat",
    "Decisions",
    "LLMBackend",
    "LLMError",
    "LLMUnavailableError",
    "LLMUserConfig",
    "LLMUserModel",
    "Prompt",
    "RetryPolicy",
    "Segment",
    "embedded_model_path",
    "llm_user_factory",
    "make_backend",
    "make_llm_user_model",
    "parse_decisions",
    "parse_instruction",
    "shared_backend",
]


def __getattr__(name: str):  # the backends' classes, imported on first use
    if name == "TransformersBackend":
        from recoworld.users.llm.transformers_backend import TransformersBackend

        return TransformersBackend
    if name == "OpenAIBackend":
        from recoworld.users.llm.openai_backend import OpenAIBackend

        return OpenAIBackend
    raise AttributeError(name)
