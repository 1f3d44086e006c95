"""Readiness checks: database, Redis, model service. Each answers {"ok": bool, ...}."""
from __future__ import annotations

import time

from django.conf import settings
from django.db import connection


def check_database() -> dict:
    started = time.monotonic()
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:  # any driver error means not ready
        return {"ok": False, "error": f"{type(exc).__name__}: {str(exc)[:200]}"}
    return {"ok": True, "vendor": connection.vendor,
            "latency_ms": round(1000 * (time.monotonic() - started), 1)}


def check_redis() -> dict:
    import redis

    started = time.monotonic()
    try:
        client = redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=1, socket_timeout=1)
        client.ping()
    except Exception as exc:
        return {"ok": False, "error": f"{type(exc).__name__}: {str(exc)[:200]}"}
    return {"ok": True, "latency_ms": round(1000 * (time.monotonic() - started), 1)}


def check_model_service() -> dict:
    from core.model_client import model_service_health

    if not settings.LLM_ENABLED:
        return {"ok": True, "disabled": True}
    return model_service_health()


def readiness() -> dict:
    checks = {"database": check_database(), "redis": check_redis(), "model_service": check_model_service()}
    return {"ok": all(c["ok"] for c in checks.values()), "checks": checks}
