"""Endpoints answer in OpenAI's shapes; the reference guide's REST example works unchanged."""

from __future__ import annotations

import json

import httpx
import openai

from model_service.tests.helpers import API_KEY, chat_body


def test_health_is_open_and_reports_engine_and_cache(server):
    r = httpx.get(server.url + "/health")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok"
    assert body["model"] == "SmolLM2-135M-Instruct"
    assert body["runner"] == "fast-llama"
    assert body["cache"]["enabled"] is True and "available" in body["cache"]
    assert body["auth"] == "api-keys"
    assert "model service ready on http://127.0.0.1:" in server.log()


def test_models_lists_served_names(client):
    r = client.get("/v1/models")
    assert r.status_code == 200
    ids = [m["id"] for m in r.json()["data"]]
    assert ids == ["SmolLM2-135M-Instruct", "deepseek-r1"]
    assert r.json()["data"][0]["max_model_len"] == 8192


def test_reference_guide_rest_example_unchanged(server):
    # Exactly the guide's body and headers (no "model" field), only the host differs.
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {API_KEY}"}
    data = {"prompt": "解释量子计算的基本原理", "max_tokens": 12, "temperature": 0.7, "top_p": 0.9}
    r = httpx.post(server.url + "/v1/completions", headers=headers, content=json.dumps(data), timeout=120)
    assert r.status_code == 200, r.text
    body = r.json()
    assert isinstance(body["choices"][0]["text"], str) and body["choices"][0]["text"]
    assert body["object"] == "text_completion"
    assert body["model"] == "SmolLM2-135M-Instruct"
    assert body["usage"]["completion_tokens"] <= 12
    assert (body["usage"]["total_tokens"]
            == body["usage"]["prompt_tokens"] + body["usage"]["completion_tokens"])


def test_chat_completion_shape_and_alias_model(client):
    r = client.post("/v1/chat/completions", json=chat_body("Say hello.", model="deepseek-r1", max_tokens=6))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["object"] == "chat.completion"
    choice = body["choices"][0]
    assert choice["message"]["role"] == "assistant"
    assert isinstance(choice["message"]["content"], str)
    assert choice["finish_reason"] in {"stop", "length"}
    assert body["usage"]["completion_tokens"] <= 6


def test_official_openai_client(server):
    oa = openai.OpenAI(base_url=server.url + "/v1", api_key=API_KEY, max_retries=0)
    models = oa.models.list()
    assert "SmolLM2-135M-Instruct" in [m.id for m in models.data]
    chat = oa.chat.completions.create(model="SmolLM2-135M-Instruct",
                                      messages=[{"role": "user", "content": "Hi"}],
                                      max_tokens=5, temperature=0)
    assert chat.choices[0].message.content is not None
    assert chat.usage.completion_tokens <= 5
    comp = oa.completions.create(model="SmolLM2-135M-Instruct", prompt="The sky is", max_tokens=4,
                                 temperature=0)
    assert comp.choices[0].text
    pieces = [c.choices[0].delta.content or "" for c in oa.chat.completions.create(
        model="SmolLM2-135M-Instruct", messages=[{"role": "user", "content": "Hi"}], max_tokens=5,
        temperature=0, stream=True) if c.choices]
    assert "".join(pieces) == chat.choices[0].message.content
    try:
        oa.chat.completions.create(model="no-such-model", messages=[{"role": "user", "content": "x"}],
                                   max_tokens=2)
        raise AssertionError("unknown model accepted")
    except openai.BadRequestError as exc:
        assert "no-such-model" in str(exc)


def test_n_choices_and_token_prompt(client):
    r = client.post("/v1/completions", json={"prompt": [[504, 3434, 314]], "max_tokens": 3, "n": 2,
                                              "temperature": 1.0, "seed": 5})
    assert r.status_code == 200, r.text
    choices = r.json()["choices"]
    assert [c["index"] for c in choices] == [0, 1]
    r = client.post("/v1/completions", json={"prompt": ["One", "Two"], "max_tokens": 2, "temperature": 0,
                                              "echo": True})
    texts = [c["text"] for c in r.json()["choices"]]
    assert texts[0].startswith("One") and texts[1].startswith("Two")


def test_unknown_route_is_json_404(client):
    r = client.get("/v1/nothing")
    assert r.status_code == 404
    assert "error" in r.json()
