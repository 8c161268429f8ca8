"""A small KV-cached inference engine over a Hugging Face Llama-family model (torch, CPU or GPU).

Why not ``model.generate``: a simulated user's prompt is mostly text the model has already read — the shared
instructions, the user's persona and memory (growing by one line per turn) and catalogue items it has seen in
other
users' slates. The engine keeps

* a **prefix cache**: the keys/values of whole prompt contexts, keyed by a hash chain of their text pieces, so
the
  next turn only computes the new memory line and the slate (exact: the same numbers as recomputing);
* a **block cache**: the keys/values of item lines encoded once, in a fixed short context, stored before the
rotary
  position embedding and rotated to wherever the line appears in a prompt (the "block attention"
  approximation:
  an item line does not attend to the persona, while the answer cue after it attends to everything);

and reads next-token log-probabilities at many positions of one forward pass (one per item), so that a whole
slate is
scored at once. Everything runs batched across users with ragged lengths (per-row positions and masks, no
padding
inside the sequences).

Supported architectures: those with the Llama decoder layout (``llama``, ``mistral``, ``qwen2``, ``qwen3``,
...);
:func:`supports` says whether a loaded model qualifies. Others go through the plain path of the backend.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

SUPPORTED_TYPES = ("llama", "mistral", "qwen2", "qwen3")


def supports(model: Any) -> bool:
    """True when ``model`` (a ``*ForCausalLM``) has the decoder layout this engine runs."""
    cfg = getattr(model, "config", None)
    inner = getattr(model, "model", None)
    if cfg is None or inner is None or getattr(cfg, "model_type", None) not in SUPPORTED_TYPES:
        return False
    if cfg.model_type == "mistral" and getattr(cfg, "sliding_window", None):
        return False  # sliding-window attention is not modelled by the engine
    layers = getattr(inner, "layers", None)
    return (
        bool(layers)
        and all(hasattr(inner, name) for name in ("embed_tokens", "norm", "rotary_emb"))
        and all(hasattr(layers[0].self_attn, n) for n in ("q_proj", "k_proj", "v_proj", "o_proj"))
    )


def chain_key(parent: str, text: str) -> str:
    """Hash-chain key of a context: ``parent`` key extended by one text piece."""
    return hashlib.blake2b((parent + "\x1f" + text).encode(), digest_size=16).hexdigest()


class LRUTensors:
    """An LRU map from keys to tensors, bounded by a total element budget."""

    def __init__(self, budget_elements: int):
        self.budget = int(budget_elements)
        self.used = 0
        self._d: OrderedDict[str, tuple[torch.Tensor, Any]] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def get(self, key: str) -> tuple[torch.Tensor, Any] | None:
        item = self._d.get(key)
        if item is None:
            self.misses += 1
            return None
        self._d.move_to_end(key)
        self.hits += 1
        return item

    def peek(self, key: str) -> bool:
        return key in self._d

    def put(self, key: str, tensor: torch.Tensor, meta: Any = None) -> None:
        n = tensor.numel()
        if n > self.budget:
            return
        old = self._d.pop(key, None)
        if old is not None:
            self.used -= old[0].numel()
        self._d[key] = (tensor, meta)
        self.used += n
        while self.used > self.budget and self._d:
            _, (t, _) = self._d.popitem(last=False)
            self.used -= t.numel()

    def clear(self) -> None:
        self._d.clear()
        self.used = 0

    def __len__(self) -> int:
        return len(self._d)


@dataclass
class Part:
    """One part of a prompt body after the cached context.

    ``kind`` is ``"fresh"`` (tokens computed in the pass) or ``"block"`` (tokens whose keys/values come from
    the
    block cache under ``key``). A fresh part with ``answers`` (first-token ids) is scored at its last token.
    """

    kind: str
    ids: list[int]
    key: str = ""
    answers: list[int] | None = None


@dataclass
class TokRequest:
    """A prompt in token form: a context (a chain of pieces, cacheable at its end) and a body of parts."""

    context_keys: list[str]  # chain keys, one per context piece
    context_ids: list[list[int]]
    body: list[Part] = field(default_factory=list)
    block_context_key: str = ""  # context under which this request's blocks are encoded
    block_context_ids: list[list[int]] = field(default_factory=list)


@dataclass
class _Row:
    past_len: int
    past: torch.Tensor | None  # (layers, 2, H, past_len, D)
    fresh_ids: list[int]
    fresh_slots: list[int]
    blocks: list[tuple[int, int, torch.Tensor]]  # (slot start, length, cached keys/values)
    score_points: list[tuple[int, list[int]]]  # (fresh index, answer ids)
    length: int
    ctx_len: int
    ctx_key: str
    store_ctx: bool


class KVEngine:
    """Batched scoring and greedy generation with prefix and block KV caches (see the module docstring)."""

    def __init__(
        self,
        model: Any,
        *,
        cache_tokens: int = 200_000,
        block_tokens: int = 200_000,
        max_batch_tokens: int = 24_000,
        cache_dtype: torch.dtype = torch.float16,
    ):
        self.model = model
        inner = model.model
        self.inner = inner
        self.layers = list(inner.layers)
        cfg = model.config
        self.n_layers = len(self.layers)
        attn0 = self.layers[0].self_attn
        self.head_dim = int(getattr(attn0, "head_dim", cfg.hidden_size // cfg.num_attention_heads))
        self.n_heads = int(cfg.num_attention_heads)
        self.n_kv = int(cfg.num_key_value_heads)
        self.scaling = float(getattr(attn0, "scaling", self.head_dim**-0.5))
        emb = inner.embed_tokens.weight
        self.device = emb.device
        self.dtype = emb.dtype
        self.cache_dtype = cache_dtype
        per_token = self.n_layers * 2 * self.n_kv * self.head_dim
        self.per_token = per_token
        self.prefix = LRUTensors(cache_tokens * per_token)
        self.blocks = LRUTensors(block_tokens * per_token)
        self.max_batch_tokens = int(max_batch_tokens)
        self.computed_tokens = 0  # tokens run through the network
        self.reused_tokens = 0  # tokens whose keys/values came from a cache
        self.lm_head = model.get_output_embeddings()

    # ------------------------------------------------------------------ core forward
    def _rope(self, x: torch.Tensor, pos: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        cos, sin = self.inner.rotary_emb(x, pos)
        return cos, sin

    @staticmethod
    def _rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        half = x.shape[-1] // 2
        rot = torch.cat((-x[..., half:], x[..., :half]), dim=-1)
        return x * cos + rot * sin

    def _forward(
        self,
        ids: torch.Tensor,  # (N,) packed fresh token ids of all rows
        pos: torch.Tensor,  # (N,) their positions (= slots)
        row: torch.Tensor,  # (N,) their row in the batch
        col: torch.Tensor,  # (N,) their index among the row's fresh tokens
        T: int,  # longest row (fresh tokens)
        kv: torch.Tensor,  # (layers, 2, B, H, S + 1, D) filled with past and blocks; updated in place
        mask: torch.Tensor,  # (B, 1, T, S + 1) bool
        keep_prerope: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Run packed fresh tokens through the network; linear layers see only real tokens, attention is
        computed per row over the row's slots. Returns the final hidden states (N, d) (and pre-rope keys)."""
        N = ids.shape[0]
        B = kv.shape[2]
        h = self.inner.embed_tokens(ids)[None]  # (1, N, d)
        cos, sin = self._rope(h, pos[None])
        cos, sin = cos[0][:, None], sin[0][:, None]  # (N, 1, D)
        pre = (
            torch.empty(self.n_layers, N, self.n_kv, self.head_dim, dtype=h.dtype, device=h.device)
            if keep_prerope
            else None
        )
        qpad = torch.zeros(B, T, self.n_heads, self.head_dim, dtype=h.dtype, device=h.device)
        for li, layer in enumerate(self.layers):
            attn = layer.self_attn
            x = layer.input_layernorm(h)
            q = attn.q_proj(x).view(N, -1, self.head_dim)
            k = attn.k_proj(x).view(N, -1, self.head_dim)
            v = attn.v_proj(x).view(N, -1, self.head_dim)
            if hasattr(attn, "q_norm"):
                q = attn.q_norm(q)
                k = attn.k_norm(k)
            if pre is not None:
                pre[li] = k
            q = self._rotate(q, cos, sin)
            k = self._rotate(k, cos, sin)
            kvl = kv[li].permute(1, 3, 0, 2, 4)  # (B, S, 2, H, D) view
            kvl[row, pos] = torch.stack((k, v), dim=1)
            qpad[row, col] = q
            a = F.scaled_dot_product_attention(
                qpad.transpose(1, 2),
                kv[li, 0],
                kv[li, 1],
                attn_mask=mask,
                scale=self.scaling,
                enable_gqa=self.n_kv != self.n_heads,
            )  # (B, Hq, T, D)
            a = a.transpose(1, 2)[row, col].reshape(1, N, -1)
            h = h + attn.o_proj(a)
            h = h + layer.mlp(layer.post_attention_layernorm(h))
        return self.inner.norm(h)[0], pre

    def _log_softmax_at(self, hidden: torch.Tensor) -> torch.Tensor:
        logits = self.lm_head(hidden).float()
        return torch.log_softmax(logits, dim=-1)

    # ------------------------------------------------------------------ caches
    def _lookup_context(self, req: TokRequest) -> tuple[int, torch.Tensor | None, int]:
        """Longest cached prefix of the context: (pieces covered, kv, tokens)."""
        for j in range(len(req.context_keys), 0, -1):
            if self.prefix.peek(req.context_keys[j - 1]):
                item = self.prefix.get(req.context_keys[j - 1])
                assert item is not None
                return j, item[0], int(item[0].shape[3])
        return 0, None, 0

    def ensure_contexts(self, keys_ids: list[tuple[list[str], list[list[int]]]]) -> None:
        """Compute and cache the given contexts (deduplicated), e.g. shared instruction prefixes."""
        todo: dict[str, TokRequest] = {}
        for keys, ids in keys_ids:
            if keys and not self.prefix.peek(keys[-1]) and keys[-1] not in todo:
                todo[keys[-1]] = TokRequest(context_keys=list(keys), context_ids=[list(x) for x in ids])
        if todo:
            self._run(list(todo.values()), mode="context")

    def ensure_blocks(self, reqs: list[TokRequest]) -> None:
        """Encode the blocks of ``reqs`` missing from the block cache, each after its block context."""
        missing: dict[str, tuple[TokRequest, list[int]]] = {}
        for r in reqs:
            for p in r.body:
                # get() refreshes blocks already cached, so encoding the missing ones cannot evict them
                if p.kind == "block" and p.key not in missing and self.blocks.get(p.key) is None:
                    missing[p.key] = (r, p.ids)
        if not missing:
            return
        ctx_needed = {}
        for r, _ in missing.values():
            ctx_needed.setdefault(r.block_context_key, (r.block_context_ids,))
        self.ensure_contexts([(_keys_of(ids), ids) for (ids,) in ctx_needed.values()])
        jobs = []
        for key, (r, ids) in missing.items():
            keys = _keys_of(r.block_context_ids)
            jobs.append(
                (
                    key,
                    TokRequest(
                        context_keys=keys, context_ids=r.block_context_ids, body=[Part("fresh", list(ids))]
                    ),
                )
            )
        self._run([j for _, j in jobs], mode="blocks", block_keys=[k for k, _ in jobs])

    # ------------------------------------------------------------------ batching
    def _prepare(self, req: TokRequest, reserve: int = 0, count: bool = True) -> _Row:
        covered, past, past_len = self._lookup_context(req)
        fresh_ids: list[int] = []
        fresh_slots: list[int] = []
        slot = past_len
        for piece in req.context_ids[covered:]:
            fresh_ids.extend(piece)
            fresh_slots.extend(range(slot, slot + len(piece)))
            slot += len(piece)
        ctx_len = slot
        blocks: list[tuple[int, int, str]] = []
        score_points: list[tuple[int, list[int]]] = []
        for p in req.body:
            if p.kind == "block":
                item = self.blocks.get(p.key)
                if item is None:  # only when one batch needs more than the whole block budget
                    raise RuntimeError("the block cache is too small for one batch; raise block_cache_mb")
                blocks.append((slot, len(p.ids), item[0]))
                slot += len(p.ids)
            else:
                fresh_ids.extend(p.ids)
                fresh_slots.extend(range(slot, slot + len(p.ids)))
                slot += len(p.ids)
                if p.answers is not None:
                    score_points.append((len(fresh_ids) - 1, list(p.answers)))
        if count:
            self.reused_tokens += past_len + sum(b[1] for b in blocks)
        return _Row(
            past_len=past_len,
            past=past,
            fresh_ids=fresh_ids,
            fresh_slots=fresh_slots,
            blocks=blocks,
            score_points=score_points,
            length=slot + reserve,
            ctx_len=ctx_len,
            ctx_key=req.context_keys[-1] if req.context_keys else "",
            store_ctx=covered < len(req.context_keys),
        )

    def _chunks(self, rows: list[_Row]) -> list[list[int]]:
        order = sorted(range(len(rows)), key=lambda i: rows[i].length)
        chunks: list[list[int]] = []
        cur: list[int] = []
        for i in order:
            longest = max([rows[j].length for j in cur] + [rows[i].length])
            if cur and longest * (len(cur) + 1) > self.max_batch_tokens:
                chunks.append(cur)
                cur = []
            cur.append(i)
        if cur:
            chunks.append(cur)
        return chunks

    def _buffer(self, shape: tuple[int, ...]) -> torch.Tensor:
        """A zeroed KV buffer of ``shape``, reusing memory across passes (fresh allocations page-fault)."""
        n = int(np.prod(shape))
        buf = getattr(self, "_buf", None)
        if buf is None or buf.numel() < n:
            buf = torch.empty(n, dtype=self.dtype, device=self.device)
            self._buf = buf
        out = buf[:n].view(shape)
        out.zero_()
        return out

    def _assemble(self, rows: list[_Row], extra: int = 0) -> tuple[Any, ...]:
        B = len(rows)
        S = max(r.length for r in rows) + extra
        T = max(1, max(len(r.fresh_ids) for r in rows))
        dev = self.device
        kv = self._buffer((self.n_layers, 2, B, self.n_kv, S + 1, self.head_dim))
        ids, pos, row, col = [], [], [], []
        for b, r in enumerate(rows):
            if r.past is not None and r.past_len:
                kv[:, :, b, :, : r.past_len] = r.past
            n = len(r.fresh_ids)
            ids.extend(r.fresh_ids)
            pos.extend(r.fresh_slots)
            row.extend([b] * n)
            col.extend(range(n))
        # blocks: pre-rope keys rotated to their slots, values copied, all at once
        tensors, brow, bslot = [], [], []
        for b, r in enumerate(rows):
            for start, n, kv_block in r.blocks:
                tensors.append(kv_block)
                brow.extend([b] * n)
                bslot.extend(range(start, start + n))
        if tensors:
            t = torch.cat(tensors, dim=3).to(self.dtype)  # (layers, 2, H, n, D), keys pre-rope
            slot_t = torch.tensor(bslot, device=dev)
            cos, sin = self._rope(t, slot_t[None])
            k = self._rotate(t[:, 0], cos[0][None, None], sin[0][None, None])
            view = kv.permute(2, 4, 0, 1, 3, 5)  # (B, S, layers, 2, H, D)
            view[torch.tensor(brow, device=dev), slot_t] = torch.stack((k, t[:, 1]), dim=1).permute(
                3, 0, 1, 2, 4
            )
        pos_t = torch.tensor(pos, dtype=torch.long)
        row_t = torch.tensor(row, dtype=torch.long)
        col_t = torch.tensor(col, dtype=torch.long)
        qpos = torch.full((B, T), -1, dtype=torch.long)
        qpos[row_t, col_t] = pos_t
        s_idx = torch.arange(S + 1)
        lengths = torch.tensor([r.length for r in rows])
        valid = (s_idx[None, None, :] <= qpos[:, :, None]) & (s_idx[None, None, :] < lengths[:, None, None])
        valid[:, :, 0] |= qpos < 0  # padded queries look at slot 0 only (no NaN); their outputs are ignored
        return (
            torch.tensor(ids, dtype=torch.long, device=dev),
            pos_t.to(dev),
            row_t.to(dev),
            col_t.to(dev),
            T,
            kv,
            valid[:, None].to(dev),
        )

    def _store_context(self, rows: list[_Row], kv: torch.Tensor) -> None:
        for b, r in enumerate(rows):
            if r.store_ctx and r.ctx_key and r.ctx_len:
                self.prefix.put(r.ctx_key, kv[:, :, b, :, : r.ctx_len].to(self.cache_dtype, copy=True))

    @torch.inference_mode()
    def _run(self, reqs: list[TokRequest], mode: str, block_keys: list[str] | None = None) -> list[Any]:
        rows = [self._prepare(r, count=mode == "score") for r in reqs]
        out: list[Any] = [None] * len(rows)
        for chunk in self._chunks(rows):
            crow = [rows[i] for i in chunk]
            ids, pos, row, col, T, kv, mask = self._assemble(crow)
            self.computed_tokens += int(ids.shape[0])
            hidden, pre = self._forward(ids, pos, row, col, T, kv, mask, keep_prerope=mode == "blocks")
            self._store_context(crow, kv)
            offsets = np.concatenate(([0], np.cumsum([len(r.fresh_ids) for r in crow])))
            if mode == "blocks":
                assert pre is not None and block_keys is not None
                for b, i in enumerate(chunk):
                    r = crow[b]
                    n_body = len(reqs[i].body[0].ids)
                    hi = int(offsets[b + 1])
                    k = pre[:, hi - n_body : hi].permute(0, 2, 1, 3)  # (layers, H, n, D)
                    start = r.fresh_slots[len(r.fresh_ids) - n_body]
                    v = kv[:, 1, b, :, start : start + n_body]
                    self.blocks.put(block_keys[i], torch.stack((k, v), dim=1).to(self.cache_dtype, copy=True))
            elif mode == "score":
                sel = [int(offsets[b]) + t for b, r in enumerate(crow) for t, _ in r.score_points]
                lp = self._log_softmax_at(hidden[torch.tensor(sel, dtype=torch.long)]) if sel else None
                j = 0
                for b, i in enumerate(chunk):
                    res = []
                    for _, answers in crow[b].score_points:
                        assert lp is not None
                        res.append(lp[j, torch.tensor(answers)].cpu().numpy().astype(np.float64))
                        j += 1
                    out[i] = res
        return out

    # ------------------------------------------------------------------ public
    def score(self, reqs: list[TokRequest]) -> list[list[np.ndarray]]:
        """Per request, per scored part: log-probabilities (full vocabulary) of the answers' first tokens."""
        self._warm_shared(reqs)
        self.ensure_blocks(reqs)
        return self._run(reqs, mode="score")

    def _warm_shared(self, reqs: list[TokRequest]) -> None:
        # the first context piece is shared by many requests (instructions): compute it once
        firsts: dict[str, tuple[list[str], list[list[int]]]] = {}
        for r in reqs:
            if len(r.context_keys) > 1:
                firsts.setdefault(r.context_keys[0], ([r.context_keys[0]], [r.context_ids[0]]))
        if len(firsts) < len(reqs):
            self.ensure_contexts(list(firsts.values()))

    @torch.inference_mode()
    def generate(
        self,
        reqs: list[TokRequest],
        max_tokens: int,
        eos_ids: set[int],
        stop_fn: Any = None,
    ) -> list[list[int]]:
        """Greedy decoding after each request's prompt; ``stop_fn(index, ids) -> bool`` ends a row early."""
        self._warm_shared(reqs)
        self.ensure_blocks(reqs)
        rows = [self._prepare(r, reserve=max_tokens) for r in reqs]
        results: list[list[int]] = [[] for _ in reqs]
        for chunk in self._chunks(rows):
            crow = [rows[i] for i in chunk]
            ids, pos, row, col, T, kv, mask = self._assemble(crow)
            self.computed_tokens += int(ids.shape[0])
            hidden, _ = self._forward(ids, pos, row, col, T, kv, mask)
            self._store_context(crow, kv)
            B = len(crow)
            offsets = np.cumsum([len(r.fresh_ids) for r in crow]) - 1
            h_last = hidden[torch.tensor(offsets, dtype=torch.long)]
            start = torch.tensor([r.length - max_tokens for r in crow])
            lengths = torch.tensor([r.length for r in crow])
            s_idx = torch.arange(kv.shape[4])
            active = list(range(B))
            for step in range(max_tokens):
                tok = torch.argmax(self.lm_head(h_last).float(), dim=-1).tolist()
                still = []
                for j, b in enumerate(active):
                    t = int(tok[j])
                    if t in eos_ids:
                        continue
                    results[chunk[b]].append(t)
                    if stop_fn is not None and stop_fn(chunk[b], results[chunk[b]]):
                        continue
                    still.append((b, t))
                if not still or step == max_tokens - 1:
                    break
                active = [b for b, _ in still]
                a_t = torch.tensor(active, dtype=torch.long)
                p = start[a_t] + step
                m = torch.zeros(B, 1, 1, kv.shape[4], dtype=torch.bool)
                m[:, 0, 0, 0] = True
                m[a_t, 0, 0] = (s_idx[None, :] <= p[:, None]) & (s_idx[None, :] < lengths[a_t, None])
                self.computed_tokens += len(active)
                h_last, _ = self._forward(
                    torch.tensor([t for _, t in still], dtype=torch.long, device=self.device),
                    p.to(self.device),
                    a_t.to(self.device),
                    torch.zeros_like(a_t).to(self.device),
                    1,
                    kv,
                    m.to(self.device),
                )
        return results


def _keys_of(pieces: list[list[int]]) -> list[str]:
    """Chain keys for token pieces (used for block contexts, whose pieces are given as ids)."""
    keys, k = [], ""
    for p in pieces:
        k = chain_key(k, "ids:" + ",".join(map(str, p)))
        keys.append(k)
    return keys
