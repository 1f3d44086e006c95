"""Constrained decoding with xgrammar: compile (and cache) grammars, make per-row matchers.

JSON is generated without free whitespace (``any_whitespace=False``: one line, ``", "`` and ``": "``
separators), which keeps answers short and stops a small model from looping on blank lines.

Caches are keyed on the schema text as sent (property order is part of the grammar: it fixes the
order of the answer's keys) and bounded: xgrammar's compiler cache by ``cache_limit_bytes`` and our
LRU of compiled grammars by the same byte budget and ``cache_size`` entries.
"""

from __future__ import annotations

import json
import re
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import torch
import xgrammar as xgr
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from model_service.errors import BadRequest

DEFAULT_CACHE_BYTES = 128 << 20
_CPP_PREFIX = re.compile(r"^\[[0-9:]+\] \S+:[0-9]+: ")


class GrammarService:
    """Compiles JSON schemas and tool-call formats for one tokenizer; thread-safe, LRU-cached."""

    def __init__(self, tokenizer: Any, vocab_size: int, stop_token_ids: list[int], cache_size: int = 256,
                 cache_limit_bytes: int = DEFAULT_CACHE_BYTES):
        self.info = xgr.TokenizerInfo.from_huggingface(tokenizer, vocab_size=vocab_size,
                                                       stop_token_ids=stop_token_ids)
        enabled = cache_limit_bytes > 0
        self.compiler = xgr.GrammarCompiler(self.info, max_threads=1, cache_enabled=enabled,
                                            cache_limit_bytes=cache_limit_bytes if enabled else -1)
        self.vocab_size = vocab_size
        self.stop_token_ids = list(stop_token_ids)
        self.decoded_vocab: list[bytes] = list(self.info.decoded_vocab)
        self._lock = threading.Lock()
        self._cache: OrderedDict[str, tuple[xgr.CompiledGrammar, int]] = OrderedDict()
        self._cache_size = cache_size if enabled else 0
        self.cache_limit_bytes = max(0, cache_limit_bytes)
        self.cache_bytes = 0
        self.compiled_count = 0

    def _cached(self, key: str, build: Any) -> xgr.CompiledGrammar:
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None:
                self._cache.move_to_end(key)
                return hit[0]
        compiled = build()
        size = int(getattr(compiled, "memory_size_bytes", 0))
        with self._lock:
            self.compiled_count += 1
            if key in self._cache or size > self.cache_limit_bytes or self._cache_size <= 0:
                return compiled
            self._cache[key] = (compiled, size)
            self.cache_bytes += size
            while len(self._cache) > self._cache_size or self.cache_bytes > self.cache_limit_bytes:
                _, (_, old) = self._cache.popitem(last=False)
                self.cache_bytes -= old
        return compiled

    def cache_stats(self) -> dict[str, int]:
        """Entries and bytes of our LRU and of xgrammar's compiler cache (for /health)."""
        with self._lock:
            entries, used = len(self._cache), self.cache_bytes
        return {"entries": entries, "bytes": used, "limit_bytes": self.cache_limit_bytes,
                "compiler_bytes": int(self.compiler.get_cache_size_bytes())}

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
        key = "schema:" + json.dumps(schema)  # not sorted: property order is the answer's key order

        def build() -> xgr.CompiledGrammar:
            try:
                return self.compiler.compile_json_schema(json.dumps(schema), any_whitespace=False,
                                                         strict_mode=True)
            except (RuntimeError, ValueError, TypeError) as exc:
                raise BadRequest(f"{param} cannot be compiled into a grammar: {_last_line(exc)}", param=param)

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
        key = "tools:" + json.dumps([tools, choice, parallel])

        def build() -> xgr.CompiledGrammar:
            try:
                tag = xgr.get_model_structural_tag("qwen_3", tools=tools, tool_choice=choice,
                                                   reasoning="disabled", parallel_tool_calls=parallel)
                return self.compiler.compile_structural_tag(tag)
            except (RuntimeError, ValueError, TypeError) as exc:
                raise BadRequest("tools: a parameter schema cannot be compiled into a grammar: "
                                 f"{_last_line(exc)}", param="tools")

        return self._cached(key, build)

    def choice(self, choices: Any, param: str = "guided_choice") -> xgr.CompiledGrammar:
        """The output is exactly one of ``choices`` (a non-empty list of non-empty strings)."""
        if (not isinstance(choices, list) or not choices
                or not all(isinstance(c, str) and c for c in choices)):
            raise BadRequest(f"{param} must be a non-empty list of non-empty strings", param=param)
        # EBNF string literals take JSON-style escapes (quotes, backslashes, \n, \uXXXX).
        ebnf = "root ::= " + " | ".join(json.dumps(c) for c in dict.fromkeys(choices))
        key = "choice:" + json.dumps(choices)

        def build() -> xgr.CompiledGrammar:
            try:
                return self.compiler.compile_grammar(ebnf)
            except (RuntimeError, ValueError, TypeError) as exc:
                raise BadRequest(f"{param} cannot be compiled into a grammar: {_last_line(exc)}", param=param)

        return self._cached(key, build)

    def regex(self, pattern: Any, param: str = "guided_regex") -> xgr.CompiledGrammar:
        """The output matches ``pattern`` in full (xgrammar's regex dialect: no lookaround or backrefs)."""
        if not isinstance(pattern, str) or not pattern:
            raise BadRequest(f"{param} must be a non-empty regular expression", param=param)

        def build() -> xgr.CompiledGrammar:
            try:
                return self.compiler.compile_regex(pattern)
            except (RuntimeError, ValueError, TypeError) as exc:
                raise BadRequest(f"{param} cannot be compiled into a grammar: {_last_line(exc)}", param=param)

        return self._cached("regex:" + pattern, build)

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


def _last_line(exc: Exception) -> str:
    """xgrammar's message without its ``[time] file.cc:line:`` prefix."""
    text = str(exc).strip()
    return _CPP_PREFIX.sub("", text.splitlines()[-1]) if text else type(exc).__name__


def accept_sampled(matcher: xgr.GrammarMatcher, logits: torch.Tensor, row: int, token: int,
                   pick: Callable[[int], int], tries: int = 16) -> tuple[int, bool]:
    """Accept a sampled ``token`` into the row's ``matcher``: ``(token, refused)``.

    The token mask should only let through what the matcher accepts, but xgrammar 0.2.9's mask does not
    always: for a string pattern with a CJK range and a bounded repetition (the manufacturing
    explanation's ``^[A-Za-z0-9一-鿿…]{4,160}$``) it allows `` [``, `` $`` and ``.",``, which the
    matcher then refuses (``tests/test_engine.py``). A refused token is masked out of ``logits[row]`` and
    ``pick(row)`` samples again, up to ``tries`` times; ``refused`` is True when none was accepted (the
    row then ends, as before)."""
    for _ in range(tries):
        if matcher.accept_token(token):
            return token, False
        logits[row, token] = float("-inf")
        if not bool(torch.isfinite(logits[row]).any()):
            break
        token = pick(row)
    return token, True


def apply_bitmask(logits: torch.Tensor, bitmask: torch.Tensor, rows: list[int]) -> None:
    """Set the logits of tokens the grammar forbids to -inf, for the listed rows (in place)."""
    if rows:
        xgr.apply_token_bitmask_inplace(logits, bitmask.to(logits.device), indices=rows)
