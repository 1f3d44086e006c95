"""Command line: ``python -m model_service [--model PATH] [--host] [--port] ...``."""

from __future__ import annotations

import argparse
import logging
import os
import sys

from model_service.cache import DEFAULT_URL
from model_service.config import ServiceConfig, usable_cores
from model_service.errors import ConfigError

log = logging.getLogger("model_service")


def build_parser() -> argparse.ArgumentParser:
    """All flags, with environment-variable defaults where the platform sets them."""
    p = argparse.ArgumentParser(prog="python -m model_service",
                                description="OpenAI-compatible LLM server "
                                            "(embedded SmolLM2-135M-Instruct by default).")
    p.add_argument("--model", default=os.environ.get("MODEL_SERVICE_MODEL") or None,
                   help="HF model folder, .gguf file or cached hub id (default: the embedded SmolLM2 GGUF)")
    p.add_argument("--served-model-name", action="append", default=[],
                   help="name(s) clients use in 'model' (repeatable; default: the model's name)")
    p.add_argument("--host", default=os.environ.get("MODEL_SERVICE_HOST", "127.0.0.1"))
    p.add_argument("--port", type=int, default=int(os.environ.get("MODEL_SERVICE_PORT", "8080")))
    p.add_argument("--dtype", default="auto",
                   help="auto (bf16 on GPU, fp32 on CPU), float32, bfloat16, float16")
    p.add_argument("--device-map", default="auto",
                   help="auto (accelerate: all GPUs, else CPU), cpu, cuda, cuda:N")
    p.add_argument("--load-in-8bit", action="store_true", help="bitsandbytes int8 weights (CUDA only)")
    p.add_argument("--trust-remote-code", action="store_true")
    p.add_argument("--max-model-len", type=int, default=None, help="context limit (default: the model's)")
    p.add_argument("--max-batch-size", type=int, default=32, help="rows decoded together")
    p.add_argument("--max-queue", type=int, default=256, help="requests waiting for a row; more get 503")
    p.add_argument("--prefill-chunk", type=int, default=512,
                   help="prompt tokens prefilled per scheduler step")
    p.add_argument("--request-timeout", type=float, default=600.0,
                   help="seconds before a request is abandoned")
    p.add_argument("--api-keys-file", default=os.environ.get("MODEL_SERVICE_API_KEYS_FILE") or None,
                   help="file with one API key per line (also MODEL_SERVICE_API_KEYS, comma-separated)")
    p.add_argument("--cache-url", default=None,
                   help=f"Redis URL of the response cache (default: $REDIS_URL or {DEFAULT_URL})")
    p.add_argument("--no-cache", action="store_true", help="disable the response cache")
    p.add_argument("--cache-ttl", type=int, default=3600, help="seconds a cached answer lives")
    p.add_argument("--cache-prefix", default="model_service:resp:v1:", help="Redis key prefix")
    p.add_argument("--chat-template", default=None, help="Jinja chat template file replacing the tokenizer's")
    p.add_argument("--reasoning-parser", choices=["auto", "none"], default="auto",
                   help="auto: <think> blocks go to reasoning_content; none: leave them in content")
    p.add_argument("--runner", choices=["auto", "fast", "hf"], default="auto",
                   help="auto: fused Llama-family runner when possible, else the generic transformers one")
    p.add_argument("--matmul-dtype", choices=["auto", "float32", "bfloat16"],
                   default=os.environ.get("MODEL_SERVICE_MATMUL_DTYPE", "auto"),
                   help="the fused runner's matrix products on the CPU: bfloat16 weights with float32 "
                        "norms, residuals, attention and KV cache (1.4-1.8x faster where the CPU has "
                        "AVX512-BF16/AMX; greedy answers can differ from float32 at near-ties), or "
                        "float32; auto: bfloat16 where the CPU multiplies it in hardware")
    p.add_argument("--no-jump-forward", action="store_true",
                   help="sample every token even where the grammar forces the text "
                        "(default: forced text is fed at once)")
    p.add_argument("--prefix-cache-mb", type=int, default=256,
                   help="memory for reusing the keys/values of shared prompt prefixes (0: off)")
    p.add_argument("--grammar-cache-mb", type=int, default=128,
                   help="memory for compiled grammars (xgrammar's compiler cache and ours, LRU; 0: off)")
    p.add_argument("--max-request-bytes", type=int, default=4 * 1024 * 1024,
                   help="largest request body accepted; larger ones get 413 (default 4 MiB)")
    p.add_argument("--threads", default="auto",
                   help="torch intra-op threads: a number, or auto (default: the faster of 1 and the "
                        "usable cores, measured while serving)")
    p.add_argument("--weights-cache-dir", default=None,
                   help="where de-quantised GGUF weights are kept (default ~/.cache/model_service)")
    p.add_argument("--log-level", default=os.environ.get("MODEL_SERVICE_LOG_LEVEL", "info"))
    return p


def config_from_args(argv: list[str] | None = None) -> ServiceConfig:
    """Parse flags into a :class:`ServiceConfig` (exits with status 2 on bad flags)."""
    args = build_parser().parse_args(argv)
    threads_auto = args.threads == "auto"
    try:
        args.threads = usable_cores() if threads_auto else int(args.threads)
    except ValueError:
        raise SystemExit(f"error: --threads must be a number or auto, not {args.threads!r}")
    for flag, value, low in (("--max-batch-size", args.max_batch_size, 1), ("--max-queue", args.max_queue, 1),
                             ("--prefill-chunk", args.prefill_chunk, 16), ("--threads", args.threads, 1),
                             ("--grammar-cache-mb", args.grammar_cache_mb, 0),
                             ("--max-request-bytes", args.max_request_bytes, 1024)):
        if value < low:
            raise SystemExit(f"error: {flag} must be at least {low}")
    if args.matmul_dtype not in {"auto", "float32", "bfloat16"}:  # the environment's default is unchecked
        raise SystemExit(f"error: --matmul-dtype must be auto, float32 or bfloat16, "
                         f"not {args.matmul_dtype!r}")
    chat_template = None
    if args.chat_template:
        try:
            with open(args.chat_template, encoding="utf-8") as fh:
                chat_template = fh.read()
        except OSError as exc:
            raise SystemExit(f"error: --chat-template {args.chat_template}: {exc.strerror}")
    cache_url = None if args.no_cache else (args.cache_url or os.environ.get("REDIS_URL") or DEFAULT_URL)
    return ServiceConfig(
        model=args.model, host=args.host, port=args.port, dtype=args.dtype, device_map=args.device_map,
        load_in_8bit=args.load_in_8bit, trust_remote_code=args.trust_remote_code,
        served_model_names=args.served_model_name, max_model_len=args.max_model_len,
        max_batch_size=args.max_batch_size, max_queue=args.max_queue, prefill_chunk=args.prefill_chunk,
        request_timeout=args.request_timeout, api_keys_file=args.api_keys_file, cache_url=cache_url,
        cache_ttl=args.cache_ttl, cache_prefix=args.cache_prefix, chat_template=chat_template,
        reasoning_parser=args.reasoning_parser, runner=args.runner, matmul_dtype=args.matmul_dtype,
        jump_forward=not args.no_jump_forward,
        prefix_cache_mb=args.prefix_cache_mb, grammar_cache_mb=args.grammar_cache_mb,
        max_request_bytes=args.max_request_bytes, threads=args.threads, threads_auto=threads_auto,
        weights_cache_dir=args.weights_cache_dir, log_level=args.log_level)


def main(argv: list[str] | None = None) -> int:
    """Load the model, start the engine and serve HTTP until interrupted."""
    # Sleeping (not spinning) OpenMP workers: on a small CPU shared with the web app, workers and Redis,
    # spinning threads that lose their core make every parallel region wait a scheduler tick (5-10x
    # slower steps measured). Must be set before torch loads libgomp; an explicit setting wins.
    if "GOMP_SPINCOUNT" not in os.environ:
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    cfg = config_from_args(argv)
    logging.basicConfig(level=cfg.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    import uvicorn

    from model_service.app import create_app
    from model_service.serving import build_service

    try:
        service = build_service(cfg)
    except ConfigError as exc:
        log.error("cannot start: %s", exc)
        return 2
    app = create_app(service)
    uvicorn.run(app, host=cfg.host, port=cfg.port, log_level=cfg.log_level.lower(), access_log=False,
                timeout_graceful_shutdown=5)
    return 0
