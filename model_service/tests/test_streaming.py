"""SSE streaming on both endpoints; a client that disconnects cancels its generation."""

from __future__ import annotations

import json
import time

import httpx

from model_service.tests.helpers import API_KEY, chat_body, metric_value


def _events(response: httpx.Response) -> list:
    out = []
    for line in response.iter_lines():
        if line.startswith("data: "):
            data = line[6:]
            out.append(data if data == "[DONE]" else json.loads(data))
    return out


def test_chat_stream_matches_non_stream(client):
    body = chat_body("Name a color.", max_tokens=6)
    whole = client.post("/v1/chat/completions", json=body).json()["choices"][0]
    with client.stream("POST", "/v1/chat/completions",
                       json={**body, "stream": True, "stream_options": {"include_usage": True}}) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        events = _events(r)
    assert events[-1] == "[DONE]"
    chunks = [e for e in events[:-1]]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
    assert text == whole["message"]["content"]
    finishes = [c["choices"][0]["finish_reason"] for c in chunks
                if c["choices"] and c["choices"][0]["finish_reason"]]
    assert finishes == [whole["finish_reason"]]
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] <= 6


def test_completion_stream(client):
    body = {"prompt": "Once upon a time", "max_tokens": 5, "temperature": 0}
    whole = client.post("/v1/completions", json=body).json()["choices"][0]["text"]
    with client.stream("POST", "/v1/completions", json={**body, "stream": True}) as r:
        events = _events(r)
    assert events[-1] == "[DONE]"
    assert "".join(e["choices"][0]["text"] for e in events[:-1]) == whole
    assert events[-2]["choices"][0]["finish_reason"] == "length"


def test_disconnect_cancels_generation(server, client):
    before = metric_value(client.get("/metrics").text, "model_service:requests_cancelled_total")
    body = {"prompt": "Write a very long essay about the sea.", "max_tokens": 4000, "temperature": 0,
            "ignore_eos": True, "stream": True}
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {API_KEY}"}, timeout=60) as c:
        with c.stream("POST", "/v1/completions", json=body) as r:
            got = 0
            for line in r.iter_lines():
                if line.startswith("data: "):
                    got += 1
                if got >= 3:
                    break
    # Non-streaming request whose client gives up too.
    try:
        httpx.post(server.url + "/v1/completions", json={**body, "stream": False},
                   headers={"Authorization": f"Bearer {API_KEY}"}, timeout=1.5)
    except httpx.TimeoutException:
        pass
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        text = client.get("/metrics").text
        cancelled = metric_value(text, "model_service:requests_cancelled_total") - before
        running = metric_value(text, "vllm:num_requests_running")
        if cancelled >= 2 and running == 0:
            break
        time.sleep(0.3)
    assert cancelled >= 2, text
    assert running == 0


def test_stream_with_two_choices(client):
    body = chat_body("Pick a number.", max_tokens=4, n=2, temperature=0.9, seed=3, stream=True)
    with client.stream("POST", "/v1/chat/completions", json=body) as r:
        events = _events(r)
    chunks = [e for e in events[:-1] if e["choices"]]
    finished = {c["choices"][0]["index"] for c in chunks if c["choices"][0]["finish_reason"]}
    assert finished == {0, 1}
