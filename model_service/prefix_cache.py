"""Prompt-prefix KV reuse (like vLLM's automatic prefix caching), bounded by a byte budget.

Requests from the platform's apps share long prefixes (system prompt, prompt template). After a
prompt is prefilled, the keys/values of all its tokens are kept; a later prompt that starts with the
same tokens copies them into its slot instead of recomputing them. Lookups go through a chain hash
per 16-token block to the stored prompt sharing the most whole blocks, are confirmed token by token
and then extended token by token along that prompt (a shared system prompt rarely ends on a block
boundary: SmolLM2's chat template with a short system prompt shares 18-36 tokens). Least recently
used entries are dropped when the budget is exceeded.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from itertools import count

import torch


def common_prefix(a: list[int], b: list[int]) -> int:
    """Number of leading tokens ``a`` and ``b`` share."""
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


def block_hashes(ids: list[int], block: int) -> list[int]:
    """Hash of each block-aligned prefix ``ids[:block*(k+1)]`` (chained)."""
    out: list[int] = []
    h = 0
    for k in range(len(ids) // block):
        h = hash((h, tuple(ids[k * block:(k + 1) * block])))
        out.append(h)
    return out


@dataclass
class _Entry:
    tokens: list[int]
    kv: torch.Tensor  # [layers, 2, kv_heads, len(tokens), head_dim]
    hashes: list[int]

    @property
    def nbytes(self) -> int:
        return self.kv.numel() * self.kv.element_size()


class PrefixStore:
    """Stored prefixes, looked up by the longest block-aligned match."""

    def __init__(self, budget_bytes: int, block: int = 16):
        self.budget = budget_bytes
        self.block = block
        self._entries: OrderedDict[int, _Entry] = OrderedDict()
        self._index: dict[int, tuple[int, int]] = {}  # prefix hash -> (entry id, length)
        self._ids = count()
        self.bytes = 0

    def lookup(self, ids: list[int], limit: int) -> tuple[torch.Tensor, int] | None:
        """(stored kv, usable length) for the longest stored prefix of ``ids[:limit]``: whole blocks
        through the hash index, then token by token along the entry found."""
        if self.budget <= 0:
            return None
        ids = ids[:limit]
        hashes = block_hashes(ids, self.block)
        for k in range(len(hashes) - 1, -1, -1):
            hit = self._index.get(hashes[k])
            if hit is None:
                continue
            entry = self._entries[hit[0]]
            length = hit[1]
            if entry.tokens[:length] != ids[:length]:
                continue  # hash collision
            self._entries.move_to_end(hit[0])
            tokens = entry.tokens
            end = min(len(ids), len(tokens))
            while length < end and tokens[length] == ids[length]:
                length += 1
            return entry.kv, length
        return None

    def covered(self, ids: list[int]) -> int:
        """Length of the longest stored prefix of ``ids`` (0 if none)."""
        hit = self.lookup(ids, len(ids))
        return hit[1] if hit else 0

    def add(self, ids: list[int], kv: torch.Tensor) -> None:
        """Keep ``kv`` (keys/values of every token of ``ids``), evicting least recently used entries."""
        if self.budget <= 0:
            return
        entry_id = next(self._ids)
        entry = _Entry(tokens=list(ids), kv=kv, hashes=block_hashes(ids, self.block))
        if entry.nbytes > self.budget:
            return
        for k in range(len(entry.hashes) - 1, -1, -1):  # an entry the new one extends is redundant now
            hit = self._index.get(entry.hashes[k])
            if hit is not None and hit[0] in self._entries:
                old = self._entries[hit[0]]
                if len(old.tokens) <= len(entry.tokens) and entry.tokens[:len(old.tokens)] == old.tokens:
                    self._drop(hit[0])
        self._entries[entry_id] = entry
        self.bytes += entry.nbytes
        for k, h in enumerate(entry.hashes):
            self._index[h] = (entry_id, (k + 1) * self.block)
        while self.bytes > self.budget and self._entries:
            self._drop(next(iter(self._entries)))

    def _drop(self, entry_id: int) -> None:
        old = self._entries.pop(entry_id)
        self.bytes -= old.nbytes
        for h in old.hashes:
            if self._index.get(h, (None,))[0] == entry_id:
                del self._index[h]

    def clear(self) -> None:
        """Drop everything."""
        self._entries.clear()
        self._index.clear()
        self.bytes = 0
