"""response_format json_schema / json_object: constrained decoding always gives valid JSON."""

from __future__ import annotations

import json

import jsonschema
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from model_service.tests.helpers import chat_body, post_many

RISK = {"type": "object", "properties": {
    "risk_level": {"type": "integer", "enum": [1, 2, 3]},
    "rationale": {"type": "string", "maxLength": 40}}, "required": ["risk_level", "rationale"],
    "additionalProperties": False}


def _schema_format(schema: dict) -> dict:
    return {"type": "json_schema", "json_schema": {"name": "answer", "schema": schema, "strict": True}}


def test_platform_style_schema_answer_parses_and_validates(client):
    r = client.post("/v1/chat/completions", json=chat_body(
        "Assess the credit risk of: 30 years old, stable job, no debts. Answer in JSON.", max_tokens=60,
        response_format=_schema_format(RISK), logprobs=True, top_logprobs=3))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["choices"][0]["finish_reason"] == "stop"
    data = json.loads(body["choices"][0]["message"]["content"])
    jsonschema.validate(data, RISK)
    assert body["model"] == "SmolLM2-135M-Instruct" and body["usage"]["completion_tokens"] > 0


def test_json_object_mode_gives_an_object(client):
    r = client.post("/v1/chat/completions", json=chat_body(
        "Give a JSON object describing a cat.", max_tokens=40, response_format={"type": "json_object"}))
    choice = r.json()["choices"][0]
    if choice["finish_reason"] == "stop":
        assert isinstance(json.loads(choice["message"]["content"]), dict)
    else:  # truncated by max_tokens: still the start of an object
        assert choice["message"]["content"].startswith("{")


def test_truncated_schema_answer_reports_length(client):
    r = client.post("/v1/chat/completions", json=chat_body("Assess risk.", max_tokens=3,
                                                            response_format=_schema_format(RISK)))
    choice = r.json()["choices"][0]
    assert choice["finish_reason"] == "length"
    assert choice["message"]["content"].startswith("{")


# --- property test over a supported subset of JSON Schema --------------------------------------------
names = st.text(alphabet="abcdefghij", min_size=1, max_size=5)
leaves = st.one_of(
    st.just({"type": "boolean"}),
    st.just({"type": "null"}),
    st.integers(-50, 50).flatmap(lambda lo: st.integers(lo, lo + 100).map(
        lambda hi: {"type": "integer", "minimum": lo, "maximum": hi})),
    st.integers(1, 6).map(lambda n: {"type": "string", "maxLength": n}),
    st.lists(st.text(alphabet="xyz", min_size=1, max_size=3), min_size=1, max_size=3, unique=True).map(
        lambda values: {"enum": values}),
)
arrays = leaves.flatmap(lambda item: st.integers(1, 3).map(
    lambda n: {"type": "array", "items": item, "maxItems": n}))


def objects(values: st.SearchStrategy) -> st.SearchStrategy:
    return st.dictionaries(names, values, min_size=1, max_size=3).flatmap(
        lambda props: st.lists(st.sampled_from(sorted(props)), unique=True).map(
            lambda req: {"type": "object", "properties": props, "required": sorted(req)}))


schemas = objects(st.one_of(leaves, arrays, objects(leaves)))


@settings(max_examples=3, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(batch=st.lists(st.tuples(schemas, st.sampled_from([0.0, 0.9]), st.integers(0, 1000)), min_size=4,
                      max_size=4))
def test_property_schema_answers_always_validate(server, batch):
    bodies = [chat_body(f"Fill in this JSON form: {json.dumps(schema)}", max_tokens=200, temperature=temp,
                        seed=seed, response_format=_schema_format(schema)) for schema, temp, seed in batch]
    responses = post_many(server, "/v1/chat/completions", bodies, headers={"Cache-Control": "no-cache"})
    for (schema, _, _), r in zip(batch, responses, strict=True):
        assert r.status_code == 200, r.text
        choice = r.json()["choices"][0]
        assert choice["finish_reason"] == "stop", (schema, choice)
        jsonschema.validate(json.loads(choice["message"]["content"]), schema)


def test_property_order_is_each_schemas_own(client):
    # Two schemas that differ only in property order: each answer has its own schema's key order
    # (neither the grammar cache nor the response cache may hand one schema's answer to the other).
    props = {"city": {"type": "string", "maxLength": 12}, "country": {"type": "string", "maxLength": 12},
             "population": {"type": "integer", "minimum": 0, "maximum": 99999999}}
    orders = [["city", "country", "population"], ["population", "country", "city"],
              ["country", "population", "city"]]
    for order in orders:
        schema = {"type": "object", "properties": {k: props[k] for k in order}, "required": sorted(props),
                  "additionalProperties": False}  # only the property order differs
        r = client.post("/v1/chat/completions", json=chat_body(
            "Describe Paris as JSON.", max_tokens=60, response_format=_schema_format(schema)))
        assert r.status_code == 200, r.text
        choice = r.json()["choices"][0]
        assert choice["finish_reason"] == "stop", choice
        assert list(json.loads(choice["message"]["content"])) == order, choice["message"]["content"]
