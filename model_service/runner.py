"""The interface between the scheduler and a model backend.

Rows live in slots. Active rows are compact in slots ``0..n_active-1`` (removing one moves the last
active row into its place: swap-remove, mirrored by the scheduler). Rows being prefilled sit in the
slots right after them (``n_active, n_active+1, ...``); :meth:`Runner.activate` turns the first
``count`` of them into active rows. At most the last prefilling row may be partial (a long prompt
prefilled in chunks over several steps).

One :meth:`Runner.step` is one forward pass over: one token per active row (decode), plus
*segments*: several tokens for one slot, either a prompt chunk of a prefilling row or tokens forced
by a grammar for an active row (jump-forward), in the same batch.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Protocol

import torch

log = logging.getLogger("model_service.runner")


@dataclass
class Segment:
    """Several tokens for one slot at positions ``start..start+len-1``."""

    slot: int
    tokens: list[int]
    start: int
    want_logits: bool = True


class Runner(Protocol):
    """What the scheduler needs from a model backend."""

    name: str
    n_active: int
    supports_forced_tokens: bool

    def step(self, tokens: list[int], positions: list[int], segments: list[Segment]
             ) -> tuple[list[int], torch.Tensor]:
        """Forward pass; returns (slots, float32 logits [len(slots), V]).

        ``tokens[i]``/``positions[i]`` is active row i's next input. Logits come for every active row
        without a segment, then for each segment with ``want_logits`` (its last token), in that order.
        """
        ...

    def activate(self, count: int) -> None:
        """The first ``count`` prefilling rows (fully prefilled) become active rows."""
        ...

    def swap_remove(self, index: int) -> None:
        """Drop active row ``index``; the last active row moves into its slot."""
        ...

    def drop_prefills(self) -> None:
        """Forget all rows being prefilled."""
        ...

    def reset(self) -> None:
        """No rows left: release what memory can be released."""
        ...


def fast_path_problem(model: Any, multi_device: bool) -> str | None:
    """Why the fused Llama-family runner cannot run this model (None if it can)."""
    cfg = model.config
    model_type = getattr(cfg, "model_type", "")
    if multi_device:
        return "model is spread over several devices"
    if model_type not in {"llama", "mistral", "qwen2"}:
        return f"model_type {model_type!r} is not llama/mistral/qwen2"
    if getattr(cfg, "hidden_act", "silu") != "silu":
        return "activation is not silu"
    if model_type == "mistral" and getattr(cfg, "sliding_window", None):
        return "sliding-window attention"
    if model_type == "qwen2" and getattr(cfg, "use_sliding_window", False):
        return "sliding-window attention"
    rope = getattr(cfg, "rope_parameters", None) or {}
    if rope.get("rope_type", "default") in {"dynamic", "longrope"}:
        return f"rope type {rope.get('rope_type')} changes with length"
    inner = getattr(model, "model", None)
    if inner is None or not hasattr(inner, "layers") or not hasattr(inner, "rotary_emb"):
        return "unexpected module layout"
    if any(p.dtype in {torch.int8, torch.uint8} for p in model.parameters()):
        return "quantised weights"
    return None


def make_runner(model: Any, *, multi_device: bool, max_batch: int, max_len: int, kind: str = "auto",
                prefix_cache_bytes: int = 0) -> Runner:
    """Pick the fused fast runner when the model allows it, else the generic transformers runner."""
    from model_service.fast_llama import FastLlamaRunner
    from model_service.hf_runner import HFRunner

    problem = fast_path_problem(model, multi_device)
    if kind == "fast" and problem:
        from model_service.errors import ConfigError

        raise ConfigError(f"--runner fast is not possible for this model: {problem}")
    if kind == "hf" or (kind == "auto" and problem):
        if problem:
            log.info("using the generic transformers runner: %s", problem)
        return HFRunner(model, max_batch=max_batch, max_len=max_len)
    return FastLlamaRunner(model, max_batch=max_batch, max_len=max_len, prefix_cache_bytes=prefix_cache_bytes)
