"""Incremental detokenisation and stop strings.

Decoding token by token breaks multi-byte characters and SentencePiece spaces, so (as vLLM does)
each step decodes a short window of recent tokens and emits only the new, complete text.
"""

from __future__ import annotations

from typing import Any


class IncrementalDetokenizer:
    """Turns a growing list of token ids into text deltas."""

    def __init__(self, tokenizer: Any, prompt_ids: list[int], skip_special_tokens: bool = True):
        self.tokenizer = tokenizer
        self.skip = skip_special_tokens
        context = prompt_ids[-5:]
        self.ids: list[int] = list(context)
        self.prefix_offset = 0
        self.read_offset = len(context)

    def _decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=self.skip, clean_up_tokenization_spaces=False)

    def add(self, token_id: int) -> str:
        """Append a token; return the text it completes (may be empty while a character is partial)."""
        self.ids.append(token_id)
        prefix = self._decode(self.ids[self.prefix_offset:self.read_offset])
        full = self._decode(self.ids[self.prefix_offset:])
        if len(full) > len(prefix) and not full.endswith("\ufffd"):
            self.prefix_offset = self.read_offset
            self.read_offset = len(self.ids)
            return full[len(prefix):]
        return ""


def find_stop(text: str, stops: list[str], search_from: int) -> int | None:
    """Index of the earliest stop string that ends at or after ``search_from`` (None if none)."""
    best: int | None = None
    for stop in stops:
        if not stop:
            continue
        idx = text.find(stop, max(0, search_from - len(stop) + 1))
        if idx != -1 and (best is None or idx < best):
            best = idx
    return best


def holdback(text: str, stops: list[str]) -> int:
    """How many trailing characters could still grow into a stop string (not safe to stream yet)."""
    keep = 0
    for stop in stops:
        for n in range(min(len(stop) - 1, len(text)), 0, -1):
            if text.endswith(stop[:n]):
                keep = max(keep, n)
                break
    return keep
