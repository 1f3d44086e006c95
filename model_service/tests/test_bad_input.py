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
    ("unknown-field", "/v1/chat/completions", chat_body("x", foo=1), ["foo"]),
    ("unknown-vllm-field", "/v1/completions",
     {"prompt": "x", "max_tokens": 2, "guided_json": {"type": "object"}}, ["guided_json"]),
    ("unknown-message-field", "/v1/chat/completions",
     {"messages": [{"role": "user", "content": "x", "audio": {"id": "a1"}}], "max_tokens": 2},
     ["messages[0].audio"]),
    ("guided-choice-empty", "/v1/chat/completions", chat_body("x", guided_choice=[]), ["guided_choice"]),
    ("guided-choice-and-schema", "/v1/chat/completions",
     chat_body("x", guided_choice=["a"], response_format={"type": "json_object"}), ["guided_choice"]),
    ("guided-choice-and-regex", "/v1/chat/completions", chat_body("x", guided_choice=["a"], guided_regex="b"),
     ["guided_choice", "guided_regex"]),
    ("guided-regex-invalid", "/v1/completions", {"prompt": "x", "max_tokens": 2, "guided_regex": "[a-"},
     ["guided_regex"]),
    ("repetition-penalty-zero", "/v1/chat/completions", chat_body("x", repetition_penalty=0),
     ["repetition_penalty"]),
    ("min-p-out-of-range", "/v1/completions", {"prompt": "x", "max_tokens": 2, "min_p": 1.5}, ["min_p"]),
    ("min-tokens-over-max-tokens", "/v1/completions", {"prompt": "x", "max_tokens": 2, "min_tokens": 5},
     ["min_tokens"]),
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


@pytest.mark.parametrize("path,body,param", [
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": "hello " * 9000}], "max_tokens": 2},
     "messages"),
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": "hello " * 9000}]}, "messages"),
    ("/v1/completions", {"prompt": "hello " * 9000, "max_tokens": 2}, "prompt"),
], ids=["chat-max-tokens", "chat", "completion"])
def test_context_overflow_names_the_prompt_field(client, path, body, param):
    r = client.post(path, json=body)
    assert r.status_code == 400
    assert r.json()["error"]["param"] == param and r.json()["error"]["code"] == "context_length_exceeded"


def test_null_unknown_fields_and_documented_ignored_fields_are_accepted(client):
    # What a client sends back from an earlier answer: null extras, refusal, annotations; and "user".
    history = {"role": "assistant", "content": "Hello!", "refusal": None, "annotations": [],
               "audio": None, "function_call": None, "tool_calls": None}
    body = chat_body("Hi again", max_tokens=2, user="end-user-7", store=None,
                     messages=[{"role": "user", "content": "Hi"}, history,
                               {"role": "user", "content": "Hi again"}])
    r = client.post("/v1/chat/completions", json=body)
    assert r.status_code == 200, r.text
