"""Construction helpers: one backend per configuration per process (loading a model is slow), and the factory
the ``RecoWorld-LLM-v0`` environment calls."""

from __future__ import annotations

import inspect
import os
import threading
from typing import Any

from recoworld.users.llm.backends import LLMBackend, RetryPolicy
from recoworld.users.llm.model import LLMUserConfig, LLMUserModel

__all__ = ["FACTORY_KEYS", "llm_user_factory", "make_backend", "make_llm_user_model", "shared_backend"]

_SHARED: dict[tuple, LLMBackend] = {}
_LOCK = threading.Lock()


def make_backend(
    *,
    model_path: str | os.PathLike | None = None,
    base_url: str | None = None,
    gguf_file: str | None = None,
    model: str | None = None,
    api_key: str | None = None,
    device: str = "cpu",
    dtype: str = "auto",
    threads: int | None = None,
    item_cache: bool = True,
    timeout: float = 30.0,
    max_retries: int = 3,
    concurrency: int = 4,
    chat_format: Any = None,
) -> LLMBackend:
    """A new backend: an OpenAI-compatible server when ``base_url`` is given, else ``transformers`` in-process
    with ``model_path`` (default: the embedded SmolLM2-135M-Instruct GGUF)."""
    if base_url is not None and (model_path is not None or gguf_file is not None):
        raise ValueError(
            "base_url: give either base_url (a server) or model_path/gguf_file (in-process), not both"
        )
    if base_url is not None:
        from recoworld.users.llm.openai_backend import OpenAIBackend

        return OpenAIBackend(
            base_url,
            model,
            api_key=api_key,
            retry=RetryPolicy(timeout=timeout, max_retries=max_retries),
            concurrency=concurrency,
            chat_format=chat_format if chat_format is not None else "chatml",
        )
    from recoworld.users.llm.transformers_backend import TransformersBackend

    return TransformersBackend(
        model_path,
        gguf_file=gguf_file,
        device=device,
        dtype=dtype,
        threads=threads,
        item_cache=item_cache,
        chat_format=chat_format,
    )


def shared_backend(**kwargs: Any) -> LLMBackend:
    """:func:`make_backend` memoised per process on its arguments (environments share one loaded model)."""
    bound = inspect.signature(make_backend).bind(**kwargs)
    bound.apply_defaults()  # shared_backend() and shared_backend(device="cpu") share one model
    key = tuple(sorted((k, repr(v)) for k, v in bound.arguments.items()))
    with _LOCK:
        b = _SHARED.get(key)
        if b is None:
            b = make_backend(**kwargs)
            _SHARED[key] = b
        return b


def make_llm_user_model(
    base: Any,
    *,
    mode: str = "hybrid",
    style: str = "score",
    backend: LLMBackend | None = None,
    model_path: str | os.PathLike | None = None,
    base_url: str | None = None,
    gguf_file: str | None = None,
    model: str | None = None,
    api_key: str | None = None,
    device: str = "cpu",
    threads: int | None = None,
    item_cache: bool = True,
    timeout: float = 30.0,
    max_retries: int = 3,
    concurrency: int = 4,
    chat_format: Any = None,
    catalog: Any = None,
    config: LLMUserConfig | None = None,
    **overrides: Any,
) -> LLMUserModel:
    """An :class:`LLMUserModel` over ``base`` (a ``SyntheticUserModel``).

    ``backend`` wins when given; otherwise a process-wide shared backend is built from ``base_url`` (an
    OpenAI-compatible server: vLLM, llama.cpp, Ollama) or ``model_path``/``gguf_file`` (in-process
    transformers;
    default the embedded SmolLM2-135M-Instruct GGUF). ``overrides`` are fields of :class:`LLMUserConfig`
    (``contrast=True``, ``temperature=0.7``, ``describe=True``, ...).
    """
    if backend is None:
        backend = shared_backend(
            model_path=model_path,
            base_url=base_url,
            gguf_file=gguf_file,
            model=model,
            api_key=api_key,
            device=device,
            threads=threads,
            item_cache=item_cache,
            timeout=timeout,
            max_retries=max_retries,
            concurrency=concurrency,
            chat_format=chat_format,
        )
    return LLMUserModel(base, backend, mode=mode, style=style, catalog=catalog, config=config, **overrides)


def llm_user_factory(**kwargs: Any) -> Any:
    """A ``user_model`` factory for :class:`recoworld.envs.core.Simulator` (``(world, config, streams) ->
    UserModel``): a :class:`~recoworld.users.synthetic.SyntheticUserModel` wrapped by
    :func:`make_llm_user_model` with ``kwargs``. The backend is built once per process and shared (or pass
    ``backend=``). Picklable: the factory holds only its keyword arguments."""
    unknown = set(kwargs) - FACTORY_KEYS - {f for f in LLMUserConfig.__dataclass_fields__}
    if unknown:
        raise ValueError(f"unknown keyword(s) {sorted(unknown)}; see make_llm_user_model and LLMUserConfig")
    return _Factory(kwargs)


FACTORY_KEYS = {
    "mode", "style", "backend", "model_path", "base_url", "gguf_file", "model", "api_key", "device",
    "threads",
    "item_cache", "timeout", "max_retries", "concurrency", "chat_format", "catalog", "config",
}  # fmt: skip


class _Factory:
    def __init__(self, kwargs: dict[str, Any]):
        self.kwargs = kwargs

    def __call__(self, world: Any, config: Any, streams: Any) -> LLMUserModel:
        from recoworld.users.synthetic import SyntheticUserModel

        return make_llm_user_model(SyntheticUserModel(world, config, streams), **self.kwargs)

    def __repr__(self) -> str:
        return f"llm_user_factory({', '.join(f'{k}={v!r}' for k, v in self.kwargs.items())})"
