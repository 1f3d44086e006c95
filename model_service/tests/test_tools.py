"""Function calling with the reference guide's calculate_area tool and every tool_choice."""

from __future__ import annotations

import json

import jsonschema

from model_service.tests.helpers import chat_body, post_many

CALCULATE_AREA = {
    "name": "calculate_area",
    "description": "计算几何图形的面积",
    "parameters": {
        "type": "object",
        "properties": {
            "shape": {"type": "string", "enum": ["circle", "rectangle"]},
            "radius": {"type": "number"},
            "width": {"type": "number"},
            "height": {"type": "number"},
        },
        "required": ["shape"],
    },
}
GET_TIME = {"name": "get_time", "description": "Current time in a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string", "maxLength": 20}},
                           "required": ["city"]}}
TOOLS = [{"type": "function", "function": CALCULATE_AREA}, {"type": "function", "function": GET_TIME}]
QUESTION = "计算半径为5的圆的面积"


def _check_call(call: dict) -> dict:
    assert call["type"] == "function" and call["id"].startswith("call_")
    fn = call["function"]
    schema = {"calculate_area": CALCULATE_AREA, "get_time": GET_TIME}[fn["name"]]["parameters"]
    args = json.loads(fn["arguments"])
    jsonschema.validate(args, schema)
    return args


def test_tool_choices_end_to_end(server):
    named = {"type": "function", "function": {"name": "calculate_area"}}
    bodies = [
        chat_body(QUESTION, tools=TOOLS, tool_choice=named, max_tokens=40),
        chat_body(QUESTION, tools=TOOLS, tool_choice="required", max_tokens=60),
        chat_body(QUESTION, tools=TOOLS, tool_choice="auto", max_tokens=60),
        chat_body(QUESTION, tools=TOOLS, tool_choice="none", max_tokens=8),
    ]
    named_r, required_r, auto_r, none_r = post_many(server, "/v1/chat/completions", bodies)

    choice = named_r.json()["choices"][0]
    assert choice["finish_reason"] == "tool_calls", choice
    assert choice["message"]["content"] is None
    [call] = choice["message"]["tool_calls"]
    assert call["function"]["name"] == "calculate_area"
    assert _check_call(call)["shape"] in {"circle", "rectangle"}

    choice = required_r.json()["choices"][0]
    assert choice["finish_reason"] == "tool_calls", choice
    assert choice["message"]["tool_calls"]
    for call in choice["message"]["tool_calls"]:
        _check_call(call)

    choice = auto_r.json()["choices"][0]
    if choice["message"].get("tool_calls"):
        assert choice["finish_reason"] == "tool_calls"
        for call in choice["message"]["tool_calls"]:
            _check_call(call)
    else:
        assert isinstance(choice["message"]["content"], str)
        assert "<tool_call>" not in choice["message"]["content"] or choice["finish_reason"] == "length"

    choice = none_r.json()["choices"][0]
    assert "tool_calls" not in choice["message"]
    assert choice["finish_reason"] in {"stop", "length"}


def test_tool_call_streamed_and_tool_result_turn(client):
    named = {"type": "function", "function": {"name": "calculate_area"}}
    with client.stream("POST", "/v1/chat/completions", json=chat_body(
            QUESTION, tools=TOOLS, tool_choice=named, max_tokens=40, stream=True)) as r:
        chunks = [json.loads(line[6:]) for line in r.iter_lines() if line.startswith("data: {")]
    calls = [tc for c in chunks for tc in c["choices"][0]["delta"].get("tool_calls", [])]
    assert calls and calls[0]["function"]["name"] == "calculate_area" and calls[0]["index"] == 0
    _check_call(calls[0])
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"
    # Second turn: the tool's answer goes back to the model.
    history = [{"role": "user", "content": QUESTION},
               {"role": "assistant", "content": None, "tool_calls": [{k: calls[0][k] for k in ("id", "type",
                                                                                              "function")}]},
               {"role": "tool", "tool_call_id": calls[0]["id"], "content": "78.54"}]
    r = client.post("/v1/chat/completions", json={"messages": history, "tools": TOOLS, "tool_choice": "none",
                                                  "max_tokens": 8, "temperature": 0})
    assert r.status_code == 200, r.text
    assert isinstance(r.json()["choices"][0]["message"]["content"], str)
