"""Service behaviour checked in-process on a tiny random Llama: body limit, cache keys, grammar caches."""

from __future__ import annotations

import json

import pytest
import torch

from model_service.cache import cache_key
from model_service.cli import config_from_args
from model_service.fast_llama import resolve_matmul_dtype
from model_service.grammar import GrammarService
from model_service.tests.tiny import asgi_call, smollm2_tokenizer, tiny_model, tiny_service

AB = {"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
      "required": ["a", "b"], "additionalProperties": False}
BA = {"type": "object", "properties": {"b": {"type": "integer"}, "a": {"type": "integer"}},
      "required": ["a", "b"], "additionalProperties": False}  # only the property order differs


@pytest.fixture(scope="module")
def tok():
    torch.set_num_threads(1)
    return smollm2_tokenizer()


@pytest.fixture(scope="module")
def model(tok):
    return tiny_model("llama", vocab_size=len(tok))


def _chat(content: str = "Hi", **kw) -> dict:
    return {"messages": [{"role": "user", "content": content}], "max_tokens": 2, "temperature": 0, **kw}


def test_request_body_over_the_limit_is_413_in_openai_shape(model):
    service = tiny_service(model=model, max_request_bytes=2048)
    big = json.dumps(_chat("x" * 3000)).encode()

    async def chunks():
        for i in range(0, len(big), 500):
            yield big[i:i + 500]

    async def go(client):
        declared = await client.post("/v1/chat/completions", content=big,
                                     headers={"Content-Type": "application/json"})
        streamed = await client.post("/v1/completions", content=chunks(),  # no Content-Length
                                     headers={"Content-Type": "application/json"})
        small = await client.post("/v1/chat/completions", json=_chat("x" * 100))
        return declared, streamed, small

    declared, streamed, small = asgi_call(service, go)
    for r in (declared, streamed):
        assert r.status_code == 413, r.text
        error = r.json()["error"]
        assert set(error) == {"message", "type", "param", "code"}
        assert error["code"] == "request_too_large" and "2048 bytes" in error["message"]
    assert small.status_code == 200, small.text
    assert config_from_args([]).max_request_bytes == 4 * 1024 * 1024
    assert config_from_args(["--max-request-bytes", "65536"]).max_request_bytes == 65536


def test_cache_key_covers_template_reasoning_jump_forward_matmul_dtype_and_code_version(model, monkeypatch):
    import model_service

    body = _chat("Cache me")
    base = tiny_service(model=model)
    key = base.cache_key_for("chat", body)
    assert tiny_service(model=model).cache_key_for("chat", body) == key  # same setup, same key
    template = (smollm2_tokenizer().chat_template or "") + "{# changed #}"
    variants = {
        "chat template": tiny_service(model=model, chat_template=template),
        "reasoning parser": tiny_service(model=model, reasoning_parser="none"),
        "jump-forward": tiny_service(model=model, jump_forward=False),
    }
    if resolve_matmul_dtype("bfloat16", torch.device("cpu"), torch.float32) == "bfloat16":
        variants["matmul dtype"] = tiny_service(model=model, matmul_dtype="bfloat16")
    monkeypatch.setattr(model_service, "__version__", "999.0")
    variants["code version"] = tiny_service(model=model)
    monkeypatch.undo()
    for what, service in variants.items():
        assert service.cache_key_for("chat", body) != key, what


def test_response_cache_key_keeps_schema_property_order():
    def body(schema: dict) -> dict:
        return {"messages": [{"role": "user", "content": "x"}], "temperature": 0,
                "response_format": {"type": "json_schema", "json_schema": {"name": "s", "schema": schema}}}

    assert cache_key("p:", "chat", "m", body(AB)) != cache_key("p:", "chat", "m", body(BA))
    shuffled = dict(reversed(list(body(AB).items())))  # top-level field order does not matter
    assert cache_key("p:", "chat", "m", shuffled) == cache_key("p:", "chat", "m", body(AB))


def test_grammar_cache_keeps_schema_property_order(tok):
    grammars = GrammarService(tok, len(tok), [tok.eos_token_id])
    ab, ba = grammars.json_schema(AB), grammars.json_schema(BA)
    assert ab is not ba
    matcher = grammars.matcher(ba)
    assert matcher.accept_string('{"b": 1, "a": 2}') and matcher.is_completed()
    assert not grammars.matcher(ba).accept_string('{"a": 1')


def test_grammar_caches_are_bounded(tok, model):
    limit = 64 * 1024
    grammars = GrammarService(tok, len(tok), [tok.eos_token_id], cache_limit_bytes=limit)
    assert grammars.compiler.cache_limit_bytes == limit
    for i in range(12):
        grammars.json_schema({"type": "object", "properties": {f"k{i}": {"type": "string", "maxLength": 5}},
                              "required": [f"k{i}"]})
    stats = grammars.cache_stats()
    assert 0 < stats["entries"] < 12 and stats["bytes"] <= limit
    assert stats["compiler_bytes"] <= limit
    first = grammars.json_schema({"type": "object", "properties": {"k0": {"type": "string", "maxLength": 5}},
                                  "required": ["k0"]})
    assert grammars.compiled_count == 13  # the oldest was evicted and compiled again
    assert first is not None
    # the service's default and the flag
    assert tiny_service(model=model).grammars.compiler.cache_limit_bytes == 128 * 1024 * 1024
    assert config_from_args(["--grammar-cache-mb", "32"]).grammar_cache_mb == 32
