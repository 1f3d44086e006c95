"""Exact-match response cache in Redis for deterministic requests (temperature 0, or a seed).

The key is a SHA-256 over the endpoint, the service's identity (model id and source, dtype, context,
runner, chat template, reasoning parser, jump-forward, code version and a digest of the code) and
every request parameter that can change the answer. Redis trouble never fails a request: the cache is skipped,
counted, and retried after a pause; ``/health`` says whether the cache is in use.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

log = logging.getLogger("model_service.cache")

DEFAULT_URL = "redis://127.0.0.1:6379/0"
_IGNORED = {"stream", "stream_options", "user"}


def redact_url(url: str) -> str:
    """The URL without its password (safe to log or show in /health)."""
    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return urlunsplit(parts._replace(netloc=netloc))
    return url


def cache_key(prefix: str, endpoint: str, model_key: str, body: dict[str, Any]) -> str:
    """Key for a request: everything that determines the answer.

    The request's top-level fields are sorted by name; values inside them keep their order, because
    order can matter (a JSON schema's property order is the order of the answer's keys).
    """
    params = [[k, body[k]] for k in sorted(body) if k not in _IGNORED]
    blob = json.dumps({"endpoint": endpoint, "model": model_key, "params": params},
                      separators=(",", ":"), ensure_ascii=False, default=str)
    return f"{prefix}{hashlib.sha256(blob.encode()).hexdigest()}"


@functools.lru_cache(maxsize=1)
def code_fingerprint() -> str:
    """A digest of this package's source files: a new version of the code never reuses old answers."""
    digest = hashlib.sha256()
    package = Path(__file__).resolve().parent
    for path in sorted(package.glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def is_deterministic(body: dict[str, Any]) -> bool:
    """Greedy (temperature 0) or seeded requests give the same answer again."""
    temperature = body.get("temperature")
    return (temperature is not None and temperature <= 1e-5) or body.get("seed") is not None


class ResponseCache:
    """Async Redis get/set with a circuit breaker; ``enabled`` False when configured off."""

    def __init__(self, url: str | None, *, ttl: int = 3600, prefix: str = "model_service:resp:v1:",
                 retry_after: float = 30.0):
        self.url = url
        self.ttl = ttl
        self.prefix = prefix
        self.retry_after = retry_after
        self.enabled = bool(url)
        self.available = False
        self.reason = "disabled (--no-cache)" if not url else "not connected yet"
        self._client: Any = None
        self._down_until = 0.0

    async def connect(self) -> None:
        """Connect and ping; on failure serve without a cache (and say why)."""
        if not self.enabled:
            return
        try:
            import redis.asyncio as aioredis

            self._client = aioredis.Redis.from_url(self.url, socket_timeout=0.5, socket_connect_timeout=0.5)
            await self._client.ping()
            self.available = True
            self.reason = "ok"
        except Exception as exc:  # any connection problem: run without a cache
            self._mark_down(exc)
            log.warning("response cache unavailable at %s (%s); serving without a cache",
                        redact_url(self.url or ""), type(exc).__name__)

    def _mark_down(self, exc: Exception) -> None:
        self.available = False
        self.reason = f"redis unreachable ({type(exc).__name__})"
        self._down_until = time.monotonic() + self.retry_after

    async def _usable(self) -> bool:
        if not self.enabled or self._client is None:
            return False
        if self.available:
            return True
        if time.monotonic() < self._down_until:
            return False
        try:
            await self._client.ping()
            self.available, self.reason = True, "ok"
        except Exception as exc:
            self._mark_down(exc)
        return self.available

    async def get(self, key: str) -> bytes | None:
        """The cached body, or None (miss or cache trouble)."""
        if not await self._usable():
            return None
        try:
            return await self._client.get(key)
        except Exception as exc:
            self._mark_down(exc)
            raise CacheError(str(exc))

    async def set(self, key: str, value: bytes) -> None:
        """Store a body with the TTL (errors are reported, never raised to the request)."""
        if not await self._usable():
            return
        try:
            await self._client.set(key, value, ex=self.ttl)
        except Exception as exc:
            self._mark_down(exc)
            raise CacheError(str(exc))

    def status(self) -> dict[str, Any]:
        """What /health shows."""
        return {"enabled": self.enabled, "available": self.available, "url": redact_url(self.url or ""),
                "status": self.reason, "ttl_s": self.ttl}

    async def close(self) -> None:
        """Close the connection pool."""
        if self._client is not None:
            try:
                await self._client.aclose()
            except Exception:  # pragma: no cover - shutdown
                pass


class CacheError(RuntimeError):
    """A Redis call failed (the request goes on without the cache)."""
