"""A fused forward pass for Llama-family models (llama, mistral, qwen2) over a slot KV cache.

Why not the transformers forward: at batch 16 on a 2-core CPU its per-layer Python and cache
bookkeeping cost as much as the matrix products. Here each layer is four matmuls (fused qkv, o,
fused gate+up, down; the residual adds fused into o and down) plus attention over a preallocated
slot cache (keys stored transposed, ``[layers, slots, kv_heads, head_dim, length]``, so scores need
no copy; values ``[..., length, head_dim]``) that grows on demand (rows and length double up to the
configured limits) and shrinks when idle. Decode rows are compact in slots ``0..n-1``.
The weights are the model's own tensors (q/k/v and gate/up are concatenated once and the modules
are re-pointed at views of the fused tensors, so memory is not doubled). Biases (Qwen2's q/k/v,
Llama's ``attention_bias`` on q/k/v/o and ``mlp_bias`` on gate/up/down) are applied as the model
does; ``make_runner`` also compares this runner's logits with the model's own forward at start-up.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from model_service.prefix_cache import PrefixStore
from model_service.runner import Segment

SHORT_SEGMENT = 32  # segments up to this long (forced tokens, a prompt's tail after a prefix hit) skip SDPA
PACK_MIN_ROWS = 4  # below this MKL on the plain weights is faster than oneDNN on packed ones
PACK_MAX_BYTES = 2 << 30


class _Linear:
    """A weight used as ``x @ w.T``: MKL on the plain tensor for a few rows; for batched steps a oneDNN
    copy pre-packed for ~16 rows (1.6-1.7x faster at 16-28 rows on AVX-512 CPUs, measured).

    ``low`` (bfloat16 matmuls, ``--matmul-dtype``): one oneDNN copy of the weight in bfloat16 serves
    every batch size; the float32 input is rounded to bfloat16 on the way in and the product (summed
    in float32 by oneDNN) comes back as float32, so norms, residuals, attention and the KV cache stay
    float32. On CPUs with AVX512-BF16 this is 1.5-2x faster than float32 at 1-64 rows (measured)."""

    __slots__ = ("w", "b", "packed", "low")

    def __init__(self, w: torch.Tensor, b: torch.Tensor | None = None, pack: bool = False,
                 low: bool = False):
        self.w = w
        self.b = b
        self.low = low
        if low:
            self.packed = torch.ops.mkldnn._reorder_linear_weight(w.to(torch.bfloat16), 16)
        else:
            self.packed = torch.ops.mkldnn._reorder_linear_weight(w, 16) if pack else None

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if self.low:
            out = torch.ops.mkldnn._linear_pointwise(x.to(torch.bfloat16), self.packed, None, "none", [],
                                                     "").float()
            return out if self.b is None else out.add_(self.b)
        if self.packed is not None and x.shape[0] >= PACK_MIN_ROWS:
            return torch.ops.mkldnn._linear_pointwise(x, self.packed, self.b, "none", [], "")
        return F.linear(x, self.w, self.b)

    def add(self, x: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        """``residual + x @ w.T (+ b)`` with the add fused into the GEMM."""
        if self.low:
            return self(x).add_(residual)
        if self.packed is not None and x.shape[0] >= PACK_MIN_ROWS:
            return torch.ops.mkldnn._linear_pointwise.binary(x, residual, self.packed, self.b, "add")
        return torch.addmm(residual if self.b is None else residual + self.b, x, self.w.t())


def bf16_matmul_supported() -> bool:
    """Whether this CPU multiplies bfloat16 in hardware (AVX512-BF16 or AMX): oneDNN's bfloat16 GEMM is
    then faster than float32; without it oneDNN emulates bfloat16 and is slower."""
    if not torch.backends.mkldnn.is_available() or not hasattr(torch.ops.mkldnn, "_reorder_linear_weight"):
        return False
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return bool(flags & {"avx512_bf16", "amx_bf16"})
    except OSError:
        return False
    return False


def resolve_matmul_dtype(choice: str, device: torch.device, dtype: torch.dtype) -> str:
    """``--matmul-dtype`` to what the fused runner uses: ``float32`` or ``bfloat16``. ``auto`` is
    bfloat16 for a float32 model on a CPU with hardware bfloat16 (see :func:`bf16_matmul_supported`)."""
    if choice not in {"auto", "float32", "bfloat16"}:
        raise ValueError(f"matmul dtype must be auto, float32 or bfloat16, not {choice!r}")
    usable = (device.type == "cpu" and dtype == torch.float32 and torch.backends.mkldnn.is_available()
              and hasattr(torch.ops.mkldnn, "_reorder_linear_weight")
              and bool(torch.ops.mkldnn._is_mkldnn_bf16_supported()))
    if choice == "auto":
        return "bfloat16" if usable and bf16_matmul_supported() else "float32"
    if choice == "bfloat16" and not usable:
        # a GPU or a half-precision model multiplies in its own dtype; a CPU without oneDNN bfloat16
        # cannot
        return "float32"
    return choice


def _can_pack(model: Any, device: torch.device, dtype: torch.dtype) -> bool:
    """oneDNN packing: CPU, float32, the op present, and weights small enough to keep twice."""
    if device.type != "cpu" or dtype != torch.float32 or not torch.backends.mkldnn.is_available():
        return False
    if not hasattr(torch.ops.mkldnn, "_reorder_linear_weight"):
        return False
    return sum(p.numel() * p.element_size() for p in model.parameters()) <= PACK_MAX_BYTES


@dataclass
class _Layer:
    qkv: _Linear
    o: _Linear
    gate_up: _Linear
    down: _Linear
    n1: torch.Tensor
    n2: torch.Tensor


def _bias(linear: torch.nn.Linear) -> torch.Tensor | None:
    return None if linear.bias is None else linear.bias.detach()


def _fuse(parts: list[torch.nn.Linear]) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Concatenate linear weights (and biases) and point the modules at views of the result."""
    weight = torch.cat([p.weight.detach() for p in parts]).contiguous()
    has_bias = all(p.bias is not None for p in parts)
    if not has_bias and any(p.bias is not None for p in parts):
        raise ValueError("some of the fused projections have a bias and some do not")
    bias = torch.cat([p.bias.detach() for p in parts]).contiguous() if has_bias else None
    offset = 0
    for p in parts:
        rows = p.weight.shape[0]
        p.weight = torch.nn.Parameter(weight[offset:offset + rows], requires_grad=False)
        if bias is not None:
            p.bias = torch.nn.Parameter(bias[offset:offset + rows], requires_grad=False)
        offset += rows
    return weight, bias


class FastLlamaRunner:
    """Batched decode and chunked prefill for Llama-like decoder-only models (see module doc)."""

    name = "fast-llama"
    supports_forced_tokens = True

    def __init__(self, model: Any, *, max_batch: int, max_len: int, init_rows: int = 8, init_len: int = 256,
                 prefix_cache_bytes: int = 0, pack: bool | None = None, matmul_dtype: str = "float32"):
        cfg = model.config
        inner = model.model
        self.hidden = cfg.hidden_size
        self.hq = cfg.num_attention_heads
        self.hkv = getattr(cfg, "num_key_value_heads", None) or self.hq
        self.hd = getattr(cfg, "head_dim", None) or self.hidden // self.hq
        self.group = self.hq // self.hkv
        self.inter = cfg.intermediate_size
        attn0 = inner.layers[0].self_attn
        self.scale = float(getattr(attn0, "scaling", self.hd ** -0.5))
        self.eps = float(getattr(inner.norm, "variance_epsilon", getattr(cfg, "rms_norm_eps", 1e-6)))
        self.embed = model.get_input_embeddings().weight.detach()
        self.lm_head = model.get_output_embeddings().weight.detach()
        self.final_norm = inner.norm.weight.detach()
        self.device = self.embed.device
        self.dtype = self.embed.dtype
        self.packed = _can_pack(model, self.device, self.dtype) if pack is None else pack
        self.matmul_dtype = resolve_matmul_dtype(matmul_dtype, self.device, self.dtype)
        if self.matmul_dtype == "bfloat16" and not _can_pack(model, self.device, self.dtype):
            self.matmul_dtype = "float32"  # weights too large for a second (bfloat16) copy
        low = self.matmul_dtype == "bfloat16"
        self.layers: list[_Layer] = []
        for layer in inner.layers:
            a, m = layer.self_attn, layer.mlp
            wqkv, bqkv = _fuse([a.q_proj, a.k_proj, a.v_proj])
            wgu, bgu = _fuse([m.gate_proj, m.up_proj])
            wo, wdown = a.o_proj.weight.detach(), m.down_proj.weight.detach()
            self.layers.append(_Layer(qkv=_Linear(wqkv, bqkv, self.packed, low),
                                      o=_Linear(wo, _bias(a.o_proj), self.packed, low),
                                      gate_up=_Linear(wgu, bgu, self.packed, low),
                                      down=_Linear(wdown, _bias(m.down_proj), self.packed, low),
                                      n1=layer.input_layernorm.weight.detach(),
                                      n2=layer.post_attention_layernorm.weight.detach()))
        head = model.get_output_embeddings()
        self.head = _Linear(self.lm_head, _bias(head) if isinstance(head, torch.nn.Linear) else None,
                            self.packed, low)
        rotary = inner.rotary_emb
        inv_freq = rotary.inv_freq.detach().float().to(self.device)
        scaling = float(getattr(rotary, "attention_scaling", 1.0))
        pos = torch.arange(max_len, dtype=torch.float32, device=self.device)
        freqs = torch.outer(pos, inv_freq)
        emb = torch.cat([freqs, freqs], dim=-1)
        self.cos = (emb.cos() * scaling).to(self.dtype)
        self.sin = (emb.sin() * scaling).to(self.dtype)
        # active rows plus prefilling ones (the scheduler keeps the total in check)
        self.max_rows = max_batch + 1
        self.max_len = max_len
        self.init_rows = min(init_rows, self.max_rows)
        self.init_len = min(init_len, max_len)
        self.kv = self._alloc(self.init_rows, self.init_len)
        self.n_active = 0
        self.lengths: list[int] = []  # cached tokens per active row
        self.pending: dict[int, int] = {}  # prefilling slot -> cached tokens
        self.prefixes = PrefixStore(prefix_cache_bytes)

    # ----- cache management -------------------------------------------------------------------
    def _alloc(self, rows: int, length: int) -> torch.Tensor:
        return torch.zeros(len(self.layers), 2, rows, self.hkv, length * self.hd, dtype=self.dtype,
                           device=self.device)

    @property
    def _cap(self) -> int:
        return self.kv.shape[4] // self.hd

    def _keys(self, kv: torch.Tensor | None = None) -> torch.Tensor:
        """Keys, stored transposed: [layers, slots, kv_heads, head_dim, length] (scores need no copy)."""
        kv = self.kv if kv is None else kv
        return kv[:, 0].view(kv.shape[0], kv.shape[2], self.hkv, self.hd, kv.shape[4] // self.hd)

    def _values(self, kv: torch.Tensor | None = None) -> torch.Tensor:
        """Values: [layers, slots, kv_heads, length, head_dim]."""
        kv = self.kv if kv is None else kv
        return kv[:, 1].view(kv.shape[0], kv.shape[2], self.hkv, kv.shape[4] // self.hd, self.hd)

    def _ensure(self, rows: int, length: int) -> None:
        cur_rows, cur_len = self.kv.shape[2], self._cap
        if rows <= cur_rows and length <= cur_len:
            return
        new_rows = cur_rows if rows <= cur_rows else min(self.max_rows, max(rows, 2 * cur_rows))
        if self.max_rows - new_rows <= new_rows // 8:  # 32 of 33 rows: take the last one now, not in
            new_rows = self.max_rows                   # a second copy of the whole cache a step later
        new_len = cur_len if length <= cur_len else min(self.max_len, max(length, 2 * cur_len))
        if rows > new_rows or length > new_len:
            raise ValueError(f"KV cache limit exceeded ({rows} rows, {length} positions)")
        # Unused positions are masked in attention but must hold finite values (0 * NaN is NaN): zeros.
        kv = self._alloc(new_rows, new_len)
        self._keys(kv)[:, :cur_rows, :, :, :cur_len] = self._keys()
        self._values(kv)[:, :cur_rows, :, :cur_len] = self._values()
        self.kv = kv

    def _token_bytes(self) -> int:
        """Bytes of keys and values per cached token (all layers)."""
        return 2 * len(self.layers) * self.hkv * self.hd * self.kv.element_size()

    def cache_bytes(self) -> int:
        """Bytes held by the KV cache now."""
        return self.kv.numel() * self.kv.element_size()

    def reset(self) -> None:
        """No row is left: forget them. The cache keeps its size, so the next request (or the next
        batch) does not pay for allocating, zeroing and copying it again (a grown cache is hundreds of
        MB: 243 ms to regrow 8 rows x 512 positions, 1.2 s to go from 32 to 33 rows on a 2-core
        machine); :meth:`release` gives the memory back once the engine has been idle a while."""
        self.n_active = 0
        self.lengths = []
        self.pending = {}

    def release(self) -> None:
        """Shrink the cache back to its initial size (no row may be active)."""
        self.reset()
        if self.kv.shape[2] > self.init_rows or self._cap > self.init_len:
            self.kv = self._alloc(self.init_rows, self.init_len)

    def _move(self, src: int, dst: int, length: int) -> None:
        if src != dst and length > 0:
            keys, values = self._keys(), self._values()
            keys[:, dst, :, :, :length] = keys[:, src, :, :, :length]
            values[:, dst, :, :length] = values[:, src, :, :length]

    def swap_remove(self, index: int) -> None:
        """Drop active row ``index``: the last active row moves into its slot, a partial prefill follows."""
        last = self.n_active - 1
        if not 0 <= index <= last:
            raise IndexError(index)
        self._move(last, index, self.lengths[last])
        self.lengths[index] = self.lengths[last]
        self.lengths.pop()
        self.n_active -= 1
        for slot in sorted(self.pending):  # prefilling rows shift down by one slot
            self._move(slot, slot - 1, self.pending[slot])
            self.pending[slot - 1] = self.pending.pop(slot)

    def activate(self, count: int = 1) -> None:
        """The first ``count`` prefilling rows become active."""
        for _ in range(count):
            self.lengths.append(self.pending.pop(self.n_active))
            self.n_active += 1

    def drop_prefills(self) -> None:
        """Forget rows being prefilled."""
        self.pending = {}

    def load_prefix(self, slot: int, ids: list[int]) -> int:
        """Copy the longest stored prefix of ``ids`` into a prefilling slot; returns its length."""
        hit = self.prefixes.lookup(ids, len(ids) - 1)  # the last token is always computed (its logits)
        if hit is None:
            return 0
        kv, length = hit  # stored as [layers, 2, kv_heads, length, head_dim]
        self._ensure(slot + 1, length)
        self._keys()[:, slot, :, :, :length] = kv[:, 0, :, :length].transpose(-1, -2)
        self._values()[:, slot, :, :length] = kv[:, 1, :, :length]
        self.pending[slot] = length
        return length

    def prefix_hit(self, ids: list[int]) -> int | None:
        """How many leading tokens of ``ids`` :meth:`load_prefix` would reuse now (nothing is copied);
        None when the prefix cache is off or too small to keep this prompt."""
        if self.prefixes.budget < len(ids) * self._token_bytes():
            return None
        hit = self.prefixes.lookup(ids, len(ids) - 1)
        return hit[1] if hit else 0

    def save_prefix(self, slot: int, ids: list[int]) -> None:
        """Keep the keys/values of the first ``len(ids)`` positions of a slot (a just-prefilled prompt, or a
        finishing row's prompt and answer) for later prompts that start alike."""
        length = len(ids)
        if (self.prefixes.budget < length * self._token_bytes() or length < self.prefixes.block
                or self.prefixes.covered(ids) >= length):
            return
        keys = self._keys()[:, slot, :, :, :length].transpose(-1, -2)
        self.prefixes.add(ids, torch.stack([keys, self._values()[:, slot, :, :length]], dim=1))

    # ----- forward passes ---------------------------------------------------------------------
    def _rope(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        half = self.hd // 2
        rotated = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
        return x * cos + rotated * sin

    def _mlp(self, h: torch.Tensor, layer: _Layer) -> torch.Tensor:
        x = F.rms_norm(h, (self.hidden,), layer.n2, self.eps)
        gate_up = layer.gate_up(x)
        act = F.silu(gate_up[..., : self.inter]) * gate_up[..., self.inter:]
        return layer.down.add(act, h)  # residual add fused into the GEMM

    def step(self, tokens: list[int], positions: list[int], segments: list[Segment]
             ) -> tuple[list[int], torch.Tensor]:
        """One forward pass: a token per active row plus multi-token segments (see ``runner.py``)."""
        n = self.n_active
        assert len(tokens) == n == len(positions)
        seg_slots = {seg.slot for seg in segments}
        top_slot = max([n - 1] + [seg.slot for seg in segments])
        need_len = max([p + 1 for p in positions] + [seg.start + len(seg.tokens) for seg in segments])
        self._ensure(top_slot + 1, need_len)
        ids = list(tokens)
        pos = list(positions)
        offsets = []
        for seg in segments:
            offsets.append(len(ids))
            ids += seg.tokens
            pos += range(seg.start, seg.start + len(seg.tokens))
        total = len(ids)
        ids_t = torch.tensor(ids, dtype=torch.long, device=self.device)
        pos_t = torch.tensor(pos, dtype=torch.long, device=self.device)
        h = F.embedding(ids_t, self.embed)
        cos = self.cos[pos_t].unsqueeze(1)
        sin = self.sin[pos_t].unsqueeze(1)
        if n:
            span = max(positions) + 1
            dpos = pos_t[:n]
            keys = torch.arange(span, device=self.device)
            bias = torch.zeros(n, span, dtype=self.dtype, device=self.device)
            bias.masked_fill_(keys[None, :] > dpos[:, None], float("-inf"))
            bias = bias[:, None, None, :].expand(n, self.hkv, 1, span).reshape(n * self.hkv, 1, span)
            # flat row index of (row, kv head, position) in a layer's
            # [slots * kv_heads * length, head_dim] view
            heads = torch.arange(self.hkv, device=self.device)
            rows = torch.arange(n, device=self.device)
            flat = ((rows[:, None] * self.hkv + heads[None, :]) * self._cap + dpos[:, None]).reshape(-1)
            row_heads = (rows[:, None] * self.hkv + heads[None, :]).reshape(-1)
            head_pos = dpos[:, None].expand(n, self.hkv).reshape(-1)
        masks = []  # per segment: SDPA's mask (None: causal from 0), or for a short one an additive bias
        for seg in segments:
            length = len(seg.tokens)
            if length > SHORT_SEGMENT and seg.start == 0:
                masks.append(None)
                continue
            qpos = torch.arange(seg.start, seg.start + length, device=self.device)
            allowed = torch.arange(seg.start + length, device=self.device)[None, :] <= qpos[:, None]
            if length <= SHORT_SEGMENT:
                # SDPA costs a call and a key copy per layer whatever the length: 7.4 ms per 5-token segment
                # over 30 layers against 3.9 ms for these products on the keys in place (2-core CPU)
                additive = torch.zeros(allowed.shape, dtype=self.dtype, device=self.device)
                additive.masked_fill_(~allowed, float("-inf"))
                masks.append(additive[None, None].expand(self.hkv, self.group, *allowed.shape)
                             .reshape(self.hkv, self.group * length, -1))
            else:
                masks.append(allowed)
        nq = self.hq + self.hkv
        keys, values = self._keys(), self._values()
        for i, layer in enumerate(self.layers):
            x = F.rms_norm(h, (self.hidden,), layer.n1, self.eps)
            qkv = layer.qkv(x).view(total, nq + self.hkv, self.hd)
            qk = self._rope(qkv[:, :nq], cos, sin)
            kc, vc = keys[i], values[i]
            if not segments:
                attn = self._decode_attention(qk, qkv, kc, vc, n, span, flat, row_heads, head_pos, bias)
            else:
                attn = torch.empty(total, self.hq * self.hd, dtype=h.dtype, device=self.device)
                if n:
                    attn[:n] = self._decode_attention(qk[:n], qkv[:n], kc, vc, n, span, flat, row_heads,
                                                      head_pos, bias)
                for seg, off, mask in zip(segments, offsets, masks, strict=True):
                    length = len(seg.tokens)
                    end = seg.start + length
                    kc[seg.slot, :, :, seg.start:end] = qk[off:off + length, self.hq:].permute(1, 2, 0)
                    vc[seg.slot, :, seg.start:end] = qkv[off:off + length, nq:].transpose(0, 1)
                    if length <= SHORT_SEGMENT:
                        attn[off:off + length] = self._short_attention(qk[off:off + length, : self.hq],
                                                                       kc[seg.slot], vc[seg.slot], mask, end)
                        continue
                    q = qk[off:off + length, : self.hq].transpose(0, 1).unsqueeze(0)
                    # Keys are stored transposed (for decode); SDPA's fused CPU kernel wants the head
                    # dimension contiguous, else it takes the slow matrix path (2-4x the time): a copy
                    # of this slot's keys is far cheaper.
                    out = F.scaled_dot_product_attention(
                        q, kc[seg.slot, :, :, :end].transpose(-1, -2).contiguous().unsqueeze(0),
                        vc[seg.slot, :, :end].unsqueeze(0), attn_mask=mask,
                        is_causal=mask is None, scale=self.scale, enable_gqa=self.group > 1)
                    attn[off:off + length] = out[0].transpose(0, 1).reshape(length, self.hq * self.hd)
            h = layer.o.add(attn, h)
            h = self._mlp(h, layer)
        order = [r for r in range(n) if r not in seg_slots]
        picks = list(order)
        for seg, off in zip(segments, offsets, strict=True):
            if seg.want_logits:
                order.append(seg.slot)
                picks.append(off + len(seg.tokens) - 1)
        for r in range(n):
            self.lengths[r] = positions[r] + 1
        for seg in segments:
            if seg.slot < n:
                self.lengths[seg.slot] = seg.start + len(seg.tokens)
            else:
                self.pending[seg.slot] = seg.start + len(seg.tokens)
        if not picks:
            return [], torch.empty(0, self.lm_head.shape[0])
        sel = h if len(picks) == total else h[torch.tensor(picks, device=self.device)]
        sel = F.rms_norm(sel, (self.hidden,), self.final_norm, self.eps)
        return order, self.head(sel).float()

    def _short_attention(self, q: torch.Tensor, kc: torch.Tensor, vc: torch.Tensor, bias: torch.Tensor,
                         end: int) -> torch.Tensor:
        """A short segment's queries ``[length, hq, hd]`` against its slot's first ``end`` keys."""
        length = q.shape[0]
        q = q.view(length, self.hkv, self.group, self.hd).permute(1, 2, 0, 3).reshape(self.hkv, -1, self.hd)
        scores = torch.baddbmm(bias, q, kc[:, :, :end], alpha=self.scale)
        out = torch.bmm(torch.softmax(scores, dim=-1), vc[:, :end])
        return out.view(self.hkv, self.group, length, self.hd).permute(2, 0, 1, 3).reshape(length, -1)

    def _decode_attention(self, qk: torch.Tensor, qkv: torch.Tensor, kc: torch.Tensor, vc: torch.Tensor,
                          n: int, span: int, flat: torch.Tensor, row_heads: torch.Tensor,
                          head_pos: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        """One query per active row against its cached keys (GQA via grouped batched matmuls)."""
        kc.view(-1, self.hd, self._cap)[row_heads, :, head_pos] = (
            qk[:, self.hq:].reshape(n * self.hkv, self.hd))
        vc.view(-1, self.hd).index_copy_(0, flat, qkv[:, self.hq + self.hkv:].reshape(n * self.hkv, self.hd))
        q = qk[:, : self.hq].reshape(n * self.hkv, self.group, self.hd)
        k = kc[:n, :, :, :span].reshape(n * self.hkv, self.hd, span)
        v = vc[:n, :, :span].reshape(n * self.hkv, span, self.hd)
        scores = torch.baddbmm(bias, q, k, alpha=self.scale)
        return torch.bmm(torch.softmax(scores, dim=-1), v).view(n, self.hq * self.hd)

    # ----- conveniences (tests, benchmarks) ---------------------------------------------------
    def prefill(self, token_ids: list[int], start: int, want_logits: bool) -> torch.Tensor | None:
        """Prefill a prompt chunk for the next prefilling slot with no decode rows in the same pass."""
        _, logits = self._prefill_only(self.n_active, token_ids, start, want_logits)
        return logits[0] if want_logits else None

    def _prefill_only(self, slot: int, token_ids: list[int], start: int, want_logits: bool
                      ) -> tuple[list[int], torch.Tensor]:
        n, lengths = self.n_active, self.lengths
        self.n_active, self.lengths = 0, []
        try:
            return self.step([], [], [Segment(slot, token_ids, start, want_logits)])
        finally:
            self.n_active, self.lengths = n, lengths

    def decode(self, tokens: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """One token per active row; logits [n, V] in row order."""
        order, logits = self.step(tokens.tolist(), positions.tolist(), [])
        return logits
