"""Every bad input is a 400 that names the problem, never a 500, and the server goes on serving."""

from __future__ import annotations

import pytest

from model_service.tests.helpers import chat_body

SCHEMA_OK = {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}

CASES = [
    # (id, path, raw body or dict, words the message must contain)
    ("malformed-json", "/v1/completions", b'{"prompt": "x", "max_tokens": ', ["not valid JSON"]),
    ("empty-body", "/v1/chat/completions", b"", ["empty"]),
    ("not-an-object", "/v1/completions", b"[1, 2]", ["JSON object"]),
    ("max-tokens-wrong-type", "/v1/completions", {"prompt": "x", "max_tokens": "ten"}, ["max_tokens"]),
    ("temperature-wrong-type", "/v1/chat/completions", chat_body("x", temperature="hot"), ["temperature"]),
    ("messages-wrong-type", "/v1/chat/completions", {"messages": "hello", "max_tokens": 2}, ["messages"]),
    ("prompt-missing", "/v1/completions", {"max_tokens": 2}, ["prompt"]),
    ("unknown-model", "/v1/chat/completions", chat_body("x", model="gpt-9"), ["gpt-9", "does not exist"]),
    ("prompt-too-long", "/v1/completions", {"prompt": "hello " * 9000, "max_tokens": 2}, ["context", "8192"]),
    ("prompt-plus-max-tokens-too-long", "/v1/completions", {"prompt": "hello " * 8000, "max_tokens": 500},
     ["max_tokens", "context"]),
    ("max-tokens-zero", "/v1/completions", {"prompt": "x", "max_tokens": 0}, ["max_tokens", "at least 1"]),
    ("max-tokens-negative", "/v1/chat/completions", chat_body("x", max_tokens=-3), ["max_tokens"]),
    ("temperature-out-of-range", "/v1/chat/completions", chat_body("x", temperature=7), ["temperature"]),
    ("empty-messages", "/v1/chat/completions", {"messages": [], "max_tokens": 2}, ["messages"]),
    ("unknown-role", "/v1/chat/completions", {"messages": [{"role": "wizard", "content": "x"}]},
     ["role", "wizard"]),
    ("schema-invalid", "/v1/chat/completions",
     chat_body("x", response_format={"type": "json_schema",
                                     "json_schema": {"name": "s", "schema": {"type": "strin"}}}),
     ["schema"]),
    ("schema-cannot-compile", "/v1/chat/completions",
     chat_body("x", response_format={"type": "json_schema", "json_schema": {
         "name": "s", "schema": {"type": "object", "properties": {"a": {"$ref": "#/$defs/missing"}}}}}),
     ["grammar", "missing"]),
    ("schema-bad-regex", "/v1/chat/completions",
     chat_body("x", response_format={"type": "json_schema", "json_schema": {
         "name": "s", "schema": {"type": "string", "pattern": "[a-"}}}), ["schema"]),
    ("schema-missing", "/v1/chat/completions",
     chat_body("x", response_format={"type": "json_schema", "json_schema": {"name": "s"}}), ["schema"]),
    ("unknown-response-format", "/v1/chat/completions", chat_body("x", response_format={"type": "yaml"}),
     ["response_format"]),
    ("top-logprobs-without-logprobs", "/v1/chat/completions", chat_body("x", top_logprobs=2), ["logprobs"]),
    ("top-logprobs-too-many", "/v1/chat/completions", chat_body("x", logprobs=True, top_logprobs=50),
     ["top_logprobs"]),
    ("tool-choice-unknown-function", "/v1/chat/completions",
     chat_body("x", tools=[{"type": "function", "function": {"name": "f", "parameters": SCHEMA_OK}}],
               tool_choice={"type": "function", "function": {"name": "g"}}), ["tool_choice", "g"]),
    ("n-zero", "/v1/completions", {"prompt": "x", "max_tokens": 2, "n": 0}, ["n"]),
    ("invalid-token-ids", "/v1/completions", {"prompt": [1, 99999999], "max_tokens": 2}, ["token"]),
    ("image-part", "/v1/chat/completions",
     {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]},
     ["text"]),
]


@pytest.mark.parametrize("name,path,body,words", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_400_naming_the_problem(client, name, path, body, words):
    if isinstance(body, bytes):
        r = client.post(path, content=body, headers={"Content-Type": "application/json"})
    else:
        r = client.post(path, json=body)
    assert r.status_code == 400, (name, r.status_code, r.text)
    message = r.json()["error"]["message"]
    for word in words:
        assert word.lower() in message.lower(), (name, message)


def test_server_still_serves_after_bad_inputs(client):
    for _, path, body, _ in CASES[:6]:
        client.post(path, content=body if isinstance(body, bytes) else None,
                    json=None if isinstance(body, bytes) else body)
    r = client.post("/v1/chat/completions", json=chat_body("Hello", max_tokens=3))
    assert r.status_code == 200
    assert r.json()["choices"][0]["message"]["content"] is not None
    assert client.get("/health").json()["status"] == "ok"
