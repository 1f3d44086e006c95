"""Response cache (Redis), Prometheus metrics, bounded admission queue."""

from __future__ import annotations

import uuid

from model_service.tests.helpers import MAX_BATCH, MAX_QUEUE, chat_body, metric_value, post_many


def test_cache_miss_then_hit_and_opt_out(client):
    if not client.get("/health").json()["cache"]["available"]:
        import pytest

        pytest.skip("no Redis reachable")
    body = chat_body(f"Cache probe {uuid.uuid4().hex}", max_tokens=4)
    m0 = client.get("/metrics").text
    first = client.post("/v1/chat/completions", json=body)
    second = client.post("/v1/chat/completions", json=body)
    assert first.headers["x-cache"] == "miss"
    assert second.headers["x-cache"] == "hit"
    assert second.json()["choices"] == first.json()["choices"]
    assert second.json()["id"] != first.json()["id"]
    bypass = client.post("/v1/chat/completions", json=body, headers={"Cache-Control": "no-cache"})
    assert bypass.headers["x-cache"] == "bypass"
    # any parameter changes the key
    other = client.post("/v1/chat/completions", json={**body, "max_tokens": 5})
    assert other.headers["x-cache"] == "miss"
    sampled = client.post("/v1/chat/completions", json={**body, "temperature": 0.8})  # not deterministic
    assert sampled.headers["x-cache"] == "bypass"
    m1 = client.get("/metrics").text
    assert metric_value(m1, "model_service:cache_hits_total") - metric_value(
        m0, "model_service:cache_hits_total") == 1
    assert metric_value(m1, "model_service:cache_misses_total") - metric_value(
        m0, "model_service:cache_misses_total") == 2


def test_metric_names(client):
    client.post("/v1/completions", json={"prompt": "Hi", "max_tokens": 2, "temperature": 0})
    text = client.get("/metrics").text
    for name in ("vllm:time_to_first_token_seconds_bucket", "vllm:e2e_request_latency_seconds_bucket",
                 "vllm:inter_token_latency_seconds_bucket", "vllm:num_requests_running",
                 "vllm:num_requests_waiting", "vllm:prompt_tokens_total", "vllm:generation_tokens_total",
                 "vllm:request_success_total", "model_service:batch_size_bucket",
                 "model_service:cache_hits_total", "model_service:cache_misses_total",
                 "model_service:requests_rejected_total",
                 "model_service:kv_cache_bytes"):
        assert name in text, name
    assert metric_value(text, "vllm:generation_tokens_total") > 0


def test_full_queue_answers_503_with_retry_after_then_recovers(server, client):
    count = MAX_BATCH + MAX_QUEUE + 10
    bodies = [{"prompt": f"Queue test {i}", "max_tokens": 24, "temperature": 0, "ignore_eos": True}
              for i in range(count)]
    responses = post_many(server, "/v1/completions", bodies, headers={"Cache-Control": "no-cache"})
    codes = [r.status_code for r in responses]
    assert set(codes) <= {200, 503}, codes
    assert codes.count(503) >= 1 and codes.count(200) >= MAX_QUEUE
    rejected = [r for r in responses if r.status_code == 503]
    assert all(int(r.headers["retry-after"]) >= 1 for r in rejected)
    assert rejected[0].json()["error"]["code"] == "queue_full"
    assert client.post("/v1/completions", json={"prompt": "after", "max_tokens": 2}).status_code == 200
    assert metric_value(client.get("/metrics").text, "model_service:requests_rejected_total") >= len(rejected)


def test_unreachable_redis_means_no_cache_and_says_why():
    import asyncio

    from model_service.cache import ResponseCache, redact_url
    from model_service.tests.helpers import free_port

    cache = ResponseCache(f"redis://:secret@127.0.0.1:{free_port()}/0")

    async def go():
        await cache.connect()
        return await cache.get("k")

    assert asyncio.run(go()) is None
    status = cache.status()
    assert status["enabled"] is True and status["available"] is False
    assert "unreachable" in status["status"] and "secret" not in status["url"]
    assert redact_url("redis://u:pw@h:1/0") == "redis://u:***@h:1/0"
