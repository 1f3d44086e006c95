"""Service settings, filled from command-line flags and environment variables (see ``cli.py``)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field


def usable_cores() -> int:
    """CPU cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - non-Linux
        return max(1, os.cpu_count() or 1)


@dataclass
class ServiceConfig:
    """Everything the service needs to start."""

    model: str | None = None
    host: str = "127.0.0.1"
    port: int = 8080
    dtype: str = "auto"
    device_map: str = "auto"
    load_in_8bit: bool = False
    trust_remote_code: bool = False
    served_model_names: list[str] = field(default_factory=list)
    max_model_len: int | None = None
    max_batch_size: int = 32
    max_queue: int = 256
    prefill_chunk: int = 512
    request_timeout: float = 600.0
    api_keys_file: str | None = None
    cache_url: str | None = None
    cache_ttl: int = 3600
    cache_prefix: str = "model_service:resp:v1:"
    chat_template: str | None = None
    reasoning_parser: str = "auto"
    runner: str = "auto"
    matmul_dtype: str = "auto"  # the fused runner's matmul precision (``--matmul-dtype``)
    jump_forward: bool = True
    prefix_cache_mb: int = 256
    grammar_cache_mb: int = 128
    max_request_bytes: int = 4 * 1024 * 1024
    threads: int = field(default_factory=usable_cores)
    threads_auto: bool = False  # pick 1 or ``threads`` intra-op threads by measurement (``--threads auto``)
    weights_cache_dir: str | None = None
    log_level: str = "info"
