"""Constrained decoding with xgrammar: compile (and cache) grammars, make per-row matchers.

JSON is generated without free whitespace (``any_whitespace=False``: one line, ``", "`` and ``": "``
separators), which keeps answers short and stops a small model from looping on blank lines.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from typing import Any

import torch
import xgrammar as xgr
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from model_service.errors import BadRequest


class GrammarService:
    """Compiles JSON schemas and tool-call formats for one tokenizer; thread-safe, LRU-cached."""

    def __init__(self, tokenizer: Any, vocab_size: int, stop_token_ids: list[int], cache_size: int = 256):
        self.info = xgr.TokenizerInfo.from_huggingface(tokenizer, vocab_size=vocab_size,
                                                       stop_token_ids=stop_token_ids)
        self.compiler = xgr.GrammarCompiler(self.info, max_threads=1, cache_enabled=True)
        self.vocab_size = vocab_size
        self.stop_token_ids = list(stop_token_ids)
        self.decoded_vocab: list[bytes] = list(self.info.decoded_vocab)
        self._lock = threading.Lock()
        self._cache: OrderedDict[str, xgr.CompiledGrammar] = OrderedDict()
        self._cache_size = cache_size
        self.compiled_count = 0

    def _cached(self, key: str, build: Any) -> xgr.CompiledGrammar:
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None:
                self._cache.move_to_end(key)
                return hit
        compiled = build()
        with self._lock:
            self.compiled_count += 1
            self._cache[key] = compiled
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return compiled

    def json_schema(self, schema: Any,
                    param: str = "response_format.json_schema.schema") -> xgr.CompiledGrammar:
        """Compile a JSON schema; a schema that is invalid or unsupported is a 400 naming the problem."""
        if not isinstance(schema, dict):
            raise BadRequest(f"{param} must be a JSON object (a JSON Schema)", param=param)
        try:
            Draft202012Validator.check_schema(schema)
        except SchemaError as exc:
            where = "/".join(str(p) for p in exc.absolute_path) or "(root)"
            raise BadRequest(f"{param} is not a valid JSON Schema at {where}: {exc.message}", param=param)
        key = "schema:" + json.dumps(schema, sort_keys=True)

        def build() -> xgr.CompiledGrammar:
            try:
                return self.compiler.compile_json_schema(json.dumps(schema), any_whitespace=False,
                                                         strict_mode=True)
            except (RuntimeError, ValueError, TypeError) as exc:
                message = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
                raise BadRequest(f"{param} cannot be compiled into a grammar: {message}", param=param)

        return self._cached(key, build)

    def json_object(self) -> xgr.CompiledGrammar:
        """Any JSON object (``response_format: {"type": "json_object"}``)."""
        return self._cached("json_object", lambda: self.compiler.compile_json_schema(
            json.dumps({"type": "object"}), any_whitespace=False, strict_mode=False))

    def tool_calls(self, tools: list[dict], choice: str, parallel: bool = True) -> xgr.CompiledGrammar:
        """Hermes/Qwen-style ``<tool_call>{"name": ..., "arguments": ...}</tool_call>`` blocks.

        ``choice`` is ``auto`` (free text, a call's JSON constrained once ``<tool_call>`` starts) or
        ``required`` (at least one call). Without ``parallel`` the output ends after the first call.
        """
        key = "tools:" + json.dumps([tools, choice, parallel], sort_keys=True)

        def build() -> xgr.CompiledGrammar:
            try:
                tag = xgr.get_model_structural_tag("qwen_3", tools=tools, tool_choice=choice,
                                                   reasoning="disabled", parallel_tool_calls=parallel)
                return self.compiler.compile_structural_tag(tag)
            except (RuntimeError, ValueError, TypeError) as exc:
                message = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
                raise BadRequest(f"tools: a parameter schema cannot be compiled into a grammar: {message}",
                                 param="tools")

        return self._cached(key, build)

    def matcher(self, compiled: xgr.CompiledGrammar) -> xgr.GrammarMatcher:
        """A fresh matcher (one per batch row)."""
        return xgr.GrammarMatcher(compiled)

    def allocate_bitmask(self, rows: int) -> torch.Tensor:
        """A token bitmask buffer for ``rows`` rows."""
        return xgr.allocate_token_bitmask(rows, self.vocab_size)

    def only_stop_allowed(self, matcher: xgr.GrammarMatcher, scratch: torch.Tensor) -> bool:
        """True when the grammar is complete and nothing but a stop token may follow."""
        if not matcher.is_completed():
            return False
        matcher.fill_next_token_bitmask(scratch, 0)
        row = scratch[0].clone()
        for tok in self.stop_token_ids:
            if tok < self.vocab_size:
                clear = ~(1 << (tok % 32)) & 0xFFFFFFFF
                row[tok // 32] &= clear - (1 << 32) if clear >= 1 << 31 else clear
        return not bool(row.any())


def apply_bitmask(logits: torch.Tensor, bitmask: torch.Tensor, rows: list[int]) -> None:
    """Set the logits of tokens the grammar forbids to -inf, for the listed rows (in place)."""
    if rows:
        xgr.apply_token_bitmask_inplace(logits, bitmask.to(logits.device), indices=rows)
