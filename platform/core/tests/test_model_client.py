"""Unit tests of the model client's retry, error typing and circuit breaker (fake HTTP transport)."""
import httpx
import pytest

from core.model_client import (
    CircuitBreaker,
    CircuitOpenError,
    ModelClient,
    PermanentModelError,
    TransientModelError,
    backoff_delay,
)

OK = {"choices": [{"message": {"content": "{\"a\": 1}"}, "finish_reason": "stop"}], "model": "m", "usage": {}}


def client_with(responses, **kwargs):
    calls = []

    def handler(request):
        calls.append(request)
        item = responses[min(len(calls) - 1, len(responses) - 1)]
        if isinstance(item, Exception):
            raise item
        status, body, headers = item
        return httpx.Response(status, json=body, headers=headers)

    client = ModelClient("http://model/v1", transport=httpx.MockTransport(handler), sleep=lambda s: None,
                         **kwargs)
    return client, calls


def test_retries_5xx_then_succeeds():
    client, calls = client_with([(503, {"error": {"message": "busy"}}, {"Retry-After": "1"}), (200, OK, {})],
                                retries=2)
    result = client.chat(messages=[{"role": "user", "content": "x"}], schema={"type": "object"})
    assert result.parsed == {"a": 1} and len(calls) == 2


def test_no_retry_on_4xx():
    client, calls = client_with([(400, {"error": {"message": "max_tokens must be positive"}}, {})], retries=3)
    with pytest.raises(PermanentModelError, match="max_tokens must be positive"):
        client.chat(messages=[], max_tokens=0)
    assert len(calls) == 1


def test_connection_errors_are_transient():
    client, calls = client_with([httpx.ConnectError("refused")], retries=2)
    with pytest.raises(TransientModelError, match="cannot reach"):
        client.chat(messages=[])
    assert len(calls) == 3


def test_truncated_json_is_transient():
    body = {"choices": [{"message": {"content": "{\"a\": "}, "finish_reason": "length"}], "model": "m"}
    client, _ = client_with([(200, body, {})])
    with pytest.raises(TransientModelError, match="cut at max_tokens"):
        client.chat(messages=[], schema={"type": "object"})


def test_breaker_opens_and_half_opens():
    now = [0.0]
    breaker = CircuitBreaker(threshold=2, cooldown=10, clock=lambda: now[0])
    client, calls = client_with([httpx.ConnectError("refused")], retries=0, breaker=breaker)
    for _ in range(2):
        with pytest.raises(TransientModelError):
            client.chat(messages=[])
    with pytest.raises(CircuitOpenError):
        client.chat(messages=[])
    assert len(calls) == 2  # the open breaker did not call the service
    now[0] = 11
    assert breaker.state == "half_open"


def test_backoff_has_jitter_and_cap():
    values = {round(backoff_delay(5, base=1, cap=4), 3) for _ in range(20)}
    assert len(values) > 1 and max(values) <= 4


def test_routes_pick_longest_prefix(settings):
    from core.model_client import endpoint_for

    settings.MODEL_SERVICE_URL = "http://centre/v1"
    settings.MODEL_SERVICE_ROUTES = '{"finance.": "http://edge/v1", "finance.risk_judgment": "http://big/v1"}'
    assert endpoint_for("finance.field_extraction") == "http://edge/v1"
    assert endpoint_for("finance.risk_judgment") == "http://big/v1"
    assert endpoint_for("medical.radiology_draft_ct") == "http://centre/v1"
