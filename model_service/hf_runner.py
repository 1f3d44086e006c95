"""The generic runner: any transformers causal LM through its own forward and a ``DynamicCache``.

Active rows share one left-padded cache; a newly prefilled row is padded to the common length and
concatenated (its own cache is built alone, chunk by chunk); finished rows are dropped by index and
all-padding columns on the left are trimmed. Positions are passed explicitly, so padding never shifts
RoPE. Used for models the fused runner does not cover, and for models spread over several GPUs.

Sliding-window layers (Mistral-style) keep every position in a plain layer instead of transformers'
cropping ``DynamicSlidingWindowLayer``: rows of different lengths can then be padded and concatenated
like any other, and the window is applied by the attention mask (which counts distances in the padded
cache, the same as in each row's own sequence because padding is only ever on the left).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from transformers import DynamicCache
from transformers.cache_utils import DynamicLayer, DynamicSlidingWindowLayer

from model_service.runner import Segment


def _layers(cache: Any) -> list[Any]:
    return list(cache.layers)


def _returned_cache(out: Any) -> Any:
    cache = getattr(out, "cache", None)
    return cache if cache is not None else out.past_key_values


class HFRunner:
    """Continuous batching on top of ``model(...)`` calls (see module doc)."""

    name = "transformers"
    supports_forced_tokens = False

    def __init__(self, model: Any, *, max_batch: int, max_len: int):
        self.model = model
        self.device = model.get_input_embeddings().weight.device
        self.max_batch = max_batch
        self.max_len = max_len
        self.cache: Any = None
        self.mask: torch.Tensor | None = None
        self.n_active = 0
        self.pending: dict[int, tuple[Any, int]] = {}  # prefilling slot -> (its own cache, length)

    def _new_cache(self) -> Any:
        try:
            cache = DynamicCache(config=self.model.config)
        except TypeError:  # pragma: no cover - older signatures
            return DynamicCache()
        # Cropping sliding-window layers cannot be padded and batched: keep all positions instead.
        cache.layers = [DynamicLayer() if type(layer) is DynamicSlidingWindowLayer else layer
                        for layer in cache.layers]
        return cache

    def step(self, tokens: list[int], positions: list[int], segments: list[Segment]
             ) -> tuple[list[int], torch.Tensor]:
        """Decode the active rows, then prefill each segment on its own (forced tokens are not supported)."""
        order: list[int] = []
        outs: list[torch.Tensor] = []
        if tokens:
            outs.append(self._decode(tokens, positions))
            order += range(self.n_active)
        for seg in segments:
            if seg.slot < self.n_active:
                raise ValueError("the transformers runner cannot take forced tokens for active rows")
            cache = self.pending[seg.slot][0] if seg.start > 0 else self._new_cache()
            ids = torch.tensor([seg.tokens], dtype=torch.long, device=self.device)
            end = seg.start + len(seg.tokens)
            pos = torch.arange(seg.start, end, device=self.device)[None, :]
            mask = torch.ones(1, end, dtype=torch.long, device=self.device)
            out = self.model(input_ids=ids, attention_mask=mask, position_ids=pos, cache=cache,
                             use_cache=True, logits_to_keep=1)
            self.pending[seg.slot] = (_returned_cache(out), end)
            if seg.want_logits:
                order.append(seg.slot)
                outs.append(out.logits[0, -1:].float())
        logits = torch.cat([o.to(outs[0].device) for o in outs]) if outs else torch.empty(0)
        return order, logits

    def activate(self, count: int = 1) -> None:
        """Left-pad each new row's cache and the batch cache to one length and concatenate them."""
        for _ in range(count):
            pcache, plen = self.pending.pop(self.n_active)
            new_mask = torch.ones(1, plen, dtype=torch.long, device=self.device)
            if self.cache is None or self.n_active == 0:
                self.cache, self.mask = pcache, new_mask
            else:
                assert self.mask is not None
                cur = self.mask.shape[1]
                length = max(cur, plen)
                for layer, player in zip(_layers(self.cache), _layers(pcache), strict=True):
                    layer.keys = torch.cat([F.pad(layer.keys, (0, 0, length - cur, 0)),
                                            F.pad(player.keys, (0, 0, length - plen, 0))])
                    layer.values = torch.cat([F.pad(layer.values, (0, 0, length - cur, 0)),
                                              F.pad(player.values, (0, 0, length - plen, 0))])
                self.mask = torch.cat([F.pad(self.mask, (length - cur, 0)),
                                       F.pad(new_mask, (length - plen, 0))])
            self.n_active += 1

    def drop_prefills(self) -> None:
        """Forget rows being prefilled."""
        self.pending = {}

    def _decode(self, tokens: list[int], positions: list[int]) -> torch.Tensor:
        assert self.mask is not None
        n = self.n_active
        mask = torch.cat([self.mask, torch.ones(n, 1, dtype=torch.long, device=self.device)], dim=1)
        ids = torch.tensor(tokens, dtype=torch.long, device=self.device)[:, None]
        pos = torch.tensor(positions, dtype=torch.long, device=self.device)[:, None]
        out = self.model(input_ids=ids, attention_mask=mask, position_ids=pos, cache=self.cache,
                         use_cache=True, logits_to_keep=1)
        self.cache = _returned_cache(out)
        self.mask = mask
        return out.logits[:, -1].float()

    def swap_remove(self, index: int) -> None:
        """Drop row ``index`` (the last row takes its place) and trim all-padding columns."""
        n = self.n_active
        if not 0 <= index < n:
            raise IndexError(index)
        self.n_active -= 1
        for slot in sorted(self.pending):
            self.pending[slot - 1] = self.pending.pop(slot)
        if self.n_active == 0:
            self.cache, self.mask = None, None
            return
        order = list(range(n))
        order[index] = n - 1
        order.pop()
        idx = torch.tensor(order, dtype=torch.long, device=self.device)
        assert self.mask is not None
        mask = self.mask[idx]
        used = mask.any(dim=0).nonzero()
        trim = int(used[0]) if used.numel() else 0
        self.mask = mask[:, trim:]
        for layer in _layers(self.cache):
            layer.keys = layer.keys[idx.to(layer.keys.device), :, trim:]
            layer.values = layer.values[idx.to(layer.values.device), :, trim:]

    def reset(self) -> None:
        """Drop all cached state."""
        self.cache = self.mask = None
        self.pending = {}
        self.n_active = 0

    # ----- conveniences (tests) ---------------------------------------------------------------
    def prefill(self, token_ids: list[int], start: int, want_logits: bool) -> torch.Tensor | None:
        """Prefill a chunk for the next prefilling slot."""
        _, logits = self.step([], [], [Segment(self.n_active, token_ids, start, want_logits)])
        return logits[0] if want_logits else None

    def decode(self, tokens: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """One token per active row."""
        return self.step(tokens.tolist(), positions.tolist(), [])[1]
