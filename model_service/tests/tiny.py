"""Tiny randomly initialised models built from configs, and an in-process service around one.

Everything here runs on the CPU in a second or two: hidden sizes of 32-64, two layers. The in-process
service uses the embedded SmolLM2's tokenizer (from the de-quantised weights folder the loader keeps)
with a tiny random Llama of the same vocabulary, so grammars, chat templates and the HTTP layer are
the real ones while a forward pass costs next to nothing.
"""

from __future__ import annotations

import asyncio
import copy
import functools
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

VOCAB = 128


def tiny_model(kind: str, vocab_size: int = VOCAB, seed: int = 0, **overrides: Any) -> torch.nn.Module:
    """A random tiny causal LM: ``llama``, ``llama-bias``, ``qwen2``, ``mistral-sliding`` or ``gpt2``."""
    import transformers as tf

    common = dict(vocab_size=vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                  num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                  tie_word_embeddings=False, bos_token_id=1, eos_token_id=2, pad_token_id=0)
    if kind == "llama":
        cfg, cls = tf.LlamaConfig(**{**common, **overrides}), tf.LlamaForCausalLM
    elif kind == "llama-bias":
        cfg = tf.LlamaConfig(**{**common, "attention_bias": True, "mlp_bias": True, **overrides})
        cls = tf.LlamaForCausalLM
    elif kind == "qwen2":
        cfg, cls = tf.Qwen2Config(**{**common, "hidden_size": 64, **overrides}), tf.Qwen2ForCausalLM
    elif kind == "mistral-sliding":
        cfg, cls = tf.MistralConfig(**{**common, "sliding_window": 8, **overrides}), tf.MistralForCausalLM
    elif kind == "gpt2":
        cfg = tf.GPT2Config(vocab_size=vocab_size, n_embd=32, n_layer=2, n_head=4, n_positions=512,
                            bos_token_id=1, eos_token_id=2, **overrides)
        cls = tf.GPT2LMHeadModel
    else:
        raise ValueError(kind)
    torch.manual_seed(seed)
    model = cls(cfg).eval()
    with torch.no_grad():  # transformers initialises biases to zero: make them matter
        for name, param in model.named_parameters():
            if name.endswith(".bias"):
                param.normal_(0.0, 0.5)
    model.requires_grad_(False)
    return model


def reference_logits(model: torch.nn.Module, ids: list[int]) -> torch.Tensor:
    """The last position's logits from the model's own forward over the whole sequence."""
    with torch.inference_mode():
        return model(torch.tensor([ids])).logits[0, -1].float()


@functools.lru_cache(maxsize=1)
def smollm2_tokenizer() -> Any:
    """The embedded SmolLM2's tokenizer (from the loader's de-quantised folder; made once if missing)."""
    from transformers import AutoTokenizer

    from model_service.loader import _gguf_cache_folder, embedded_model_file, load_model

    root = Path(os.environ.get("MODEL_SERVICE_WEIGHTS_CACHE") or Path.home() / ".cache" / "model_service")
    folder = _gguf_cache_folder(embedded_model_file(), root.expanduser())
    if not (folder / "config.json").exists():
        return load_model(None).tokenizer
    return AutoTokenizer.from_pretrained(folder)


def tiny_service(runner_wrapper: Callable[[Any], Any] | None = None, model: Any = None,
                 **cfg: Any) -> Any:
    """A :class:`Service` around a tiny random Llama with SmolLM2's tokenizer (not started)."""
    from model_service.config import ServiceConfig
    from model_service.loader import LoadedModel
    from model_service.serving import Service

    tok = smollm2_tokenizer()
    if cfg.get("chat_template"):  # as build_service does, on a copy (the tokenizer is shared)
        tok = copy.copy(tok)
        tok.chat_template = cfg["chat_template"]
    if model is None:
        model = tiny_model("llama", vocab_size=len(tok))
    loaded = LoadedModel(model=model, tokenizer=tok, model_id="tiny-llama", source="tiny:random-llama",
                         device=torch.device("cpu"), dtype=torch.float32, max_model_len=256,
                         eos_token_ids=[tok.eos_token_id], load_seconds=0.0)
    settings = {"cache_url": None, "max_batch_size": 4, "max_queue": 8, "threads": 1, "port": 0,
                "prefix_cache_mb": 0, "matmul_dtype": "float32", **cfg}
    service = Service(ServiceConfig(**settings), loaded)
    if runner_wrapper is not None:
        service.engine.runner = runner_wrapper(service.engine.runner)
    return service


class FaultyRunner:
    """Delegates to a real runner; ``step`` raises while ``fail`` is set (or blocks while ``hang`` is)."""

    def __init__(self, inner: Any):
        self.inner = inner
        self.fail = False
        self.hang: Any = None  # a threading.Event to wait on inside step
        self.steps = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def step(self, *args: Any, **kwargs: Any) -> Any:
        self.steps += 1
        if self.hang is not None:
            self.hang.wait(30)
        if self.fail:
            raise RuntimeError("injected runner fault")
        return self.inner.step(*args, **kwargs)


def asgi_call(service: Any, fn: Callable[[Any], Any], timeout: float = 30.0) -> Any:
    """Run ``await fn(client)`` against ``create_app(service)`` in-process, bounded by ``timeout``.

    The engine is started and stopped around the call (httpx's ASGI transport runs no lifespan).
    """
    import httpx

    from model_service.app import create_app

    app = create_app(service)
    service.engine.start()

    async def go() -> Any:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://tiny") as client:
            return await asyncio.wait_for(fn(client), timeout)

    try:
        return asyncio.run(go())
    finally:
        service.engine.stop()
