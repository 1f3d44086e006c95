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
        """No rows left: forget their state (buffers may be kept for the next rows)."""
        ...

    # Optional: ``release()`` gives back memory kept by ``reset`` (the engine calls it when idle).


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
    for layer in inner.layers:
        attn, mlp = getattr(layer, "self_attn", None), getattr(layer, "mlp", None)
        groups = (("q_proj", "k_proj", "v_proj"), ("o_proj",), ("gate_proj", "up_proj"), ("down_proj",))
        owners = (attn, attn, mlp, mlp)
        for owner, names in zip(owners, groups, strict=True):
            parts = [getattr(owner, name, None) for name in names]
            if not all(isinstance(p, torch.nn.Linear) for p in parts):
                return "unexpected module layout"
            if len({p.bias is None for p in parts}) > 1:
                return f"bias on only some of {'/'.join(names)}"
    if any(p.dtype in {torch.int8, torch.uint8} for p in model.parameters()):
        return "quantised weights"
    return None


def parity_problem(model: Any, runner: Any) -> str | None:
    """Compare a runner's logits (prefill, then one decode step) with the model's own forward.

    A short fixed token sequence; the error is ``|fused - model| / |model|`` over the logits (L2 norms),
    allowed up to 1e-3 in float32 and 0.1 in lower precision (a bfloat16 model measured 0.02 on SmolLM2,
    bfloat16 matmuls over float32 activations 0.004, where float32 gives 1e-6). Returns why they
    differ, or None when they agree.
    """
    vocab = int(model.get_output_embeddings().weight.shape[0])
    ids = [(37 * i + 11) % vocab for i in range(12)]
    device = model.get_input_embeddings().weight.device
    dtype = model.get_input_embeddings().weight.dtype
    try:
        with torch.inference_mode():
            ref = model(torch.tensor([ids], device=device)).logits[0, -2:].float()
            first = runner.prefill(ids[:-1], 0, want_logits=True)
            runner.activate(1)
            second = runner.decode(torch.tensor(ids[-1:]), torch.tensor([len(ids) - 1]))[0]
            got = torch.stack([first.float(), second.float()]).to(ref.device)
    finally:
        runner.drop_prefills()
        runner.reset()
    low = dtype != torch.float32 or getattr(runner, "matmul_dtype", "float32") != "float32"
    tol = 0.1 if low else 1e-3
    finite = bool(torch.isfinite(got).all())
    err = float((got - ref).norm() / ref.norm().clamp_min(1e-6)) if finite else float("inf")
    if err > tol:
        return (f"the fused runner's logits differ from the model's own forward "
                f"(relative error {err:.3g} > {tol:.3g})")
    log.debug("fused runner matches the model's forward (relative error %.3g, tolerance %.3g)", err, tol)
    return None


def make_runner(model: Any, *, multi_device: bool, max_batch: int, max_len: int, kind: str = "auto",
                prefix_cache_bytes: int = 0, matmul_dtype: str = "float32") -> Runner:
    """Pick the fused fast runner when the model allows it, else the generic transformers runner.

    The fused runner must also reproduce the model's own logits on a short probe (``parity_problem``):
    a model with something it does not implement falls back to the generic runner (``auto``) or is
    refused (``fast``) instead of giving wrong answers in silence.
    """
    from model_service.errors import ConfigError
    from model_service.fast_llama import FastLlamaRunner
    from model_service.hf_runner import HFRunner

    problem = fast_path_problem(model, multi_device)
    if kind != "hf" and problem is None:
        fast = FastLlamaRunner(model, max_batch=max_batch, max_len=max_len,
                               prefix_cache_bytes=prefix_cache_bytes, matmul_dtype=matmul_dtype)
        problem = parity_problem(model, fast)
        if problem is None:
            return fast
        del fast
    if kind == "fast":
        raise ConfigError(f"--runner fast is not possible for this model: {problem}")
    if problem:
        log.warning("using the generic transformers runner: %s", problem)
    return HFRunner(model, max_batch=max_batch, max_len=max_len)
