"""<think> text goes to reasoning_content (and reasoning), never into content."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from model_service.reasoning import ReasoningSplitter, prompt_opens_think, split_reasoning
from model_service.tests.helpers import chat_body

THINK = {"chat_template_kwargs": {"enable_thinking": True}}


def test_split_whole_outputs():
    assert split_reasoning("<think>plan</think>\n\nanswer", False) == ("plan", "answer")
    assert split_reasoning("plan more</think>answer", True) == ("plan more", "answer")
    assert split_reasoning("just an answer", False) == (None, "just an answer")
    assert split_reasoning("still thinking", True) == ("still thinking", "")
    assert prompt_opens_think("<|im_start|>assistant\n<think>\n")
    assert not prompt_opens_think("<|im_start|>assistant\n")


@settings(max_examples=60, deadline=None)
@given(reasoning=st.text(alphabet="ab <>/thinkx\n", max_size=20).filter(lambda s: "</think>" not in s),
       content=st.text(alphabet="ab <>/x\n", max_size=20), cuts=st.lists(st.integers(0, 60), max_size=6),
       opened=st.booleans())
def test_streamed_split_equals_whole_split(reasoning, content, cuts, opened):
    text = ("" if opened else "<think>") + reasoning + "</think>" + content
    splitter = ReasoningSplitter(in_reasoning=opened)
    r_parts, c_parts = [], []
    points = sorted({min(c, len(text)) for c in cuts} | {0, len(text)})
    for a, b in zip(points, points[1:], strict=False):
        r, c = splitter.feed(text[a:b])
        r_parts.append(r)
        c_parts.append(c)
    r, c = splitter.finish()
    whole_r, whole_c = split_reasoning(text, opened)
    assert "".join(c_parts) + c == whole_c
    assert ("".join(r_parts) + r).strip() == whole_r
    assert "</think>" not in whole_c


def test_template_that_opens_think_routes_output_to_reasoning(client):
    r = client.post("/v1/chat/completions", json=chat_body("What is 2+2?", max_tokens=12, **THINK))
    msg = r.json()["choices"][0]["message"]
    assert msg["reasoning_content"] and msg["reasoning"] == msg["reasoning_content"]
    assert "<think>" not in (msg["content"] or "") and "</think>" not in (msg["content"] or "")
    plain = client.post("/v1/chat/completions", json=chat_body("What is 2+2?", max_tokens=12)).json()
    assert "reasoning_content" not in plain["choices"][0]["message"]


def test_reasoning_streamed_separately(client):
    with client.stream("POST", "/v1/chat/completions",
                       json=chat_body("What is 2+2?", max_tokens=12, stream=True, **THINK)) as r:
        chunks = [json.loads(line[6:]) for line in r.iter_lines() if line.startswith("data: {")]
    deltas = [c["choices"][0]["delta"] for c in chunks if c["choices"]]
    reasoning = "".join(d.get("reasoning_content", "") for d in deltas)
    content = "".join(d.get("content", "") for d in deltas)
    assert reasoning
    assert "<think>" not in content and "</think>" not in content


def test_schema_after_reasoning_still_validates(client):
    schema = {"type": "object", "properties": {"answer": {"type": "integer"}}, "required": ["answer"]}
    r = client.post("/v1/chat/completions", json=chat_body(
        "What is 2+2?", max_tokens=12, response_format={"type": "json_schema", "json_schema": {
            "name": "a", "schema": schema}}, **THINK))
    msg = r.json()["choices"][0]["message"]
    # The grammar only starts after </think>; a small model may think past max_tokens.
    assert msg["reasoning_content"] is not None
    if "{" in (msg["content"] or ""):
        assert json.loads(msg["content"])["answer"] is not None
