"""stop, max_tokens, seed reproducibility, logprobs shapes."""

from __future__ import annotations

import math

from model_service.tests.helpers import chat_body

NO_CACHE = {"Cache-Control": "no-cache"}


def test_max_tokens_is_honoured_with_length_finish(client):
    r = client.post("/v1/completions", json={"prompt": "Count: 1, 2, 3,", "max_tokens": 5, "temperature": 0,
                                              "ignore_eos": True}, headers=NO_CACHE)
    body = r.json()
    assert body["usage"]["completion_tokens"] == 5
    assert body["choices"][0]["finish_reason"] == "length"


def test_stop_string_cuts_the_text(client):
    base = {"prompt": "Count: 1, 2, 3, 4, 5, 6, 7, 8, 9,", "max_tokens": 12, "temperature": 0}
    full = client.post("/v1/completions", json=base, headers=NO_CACHE).json()["choices"][0]["text"]
    assert len(full) > 4
    stop = full[2:4]  # a string that the greedy continuation certainly contains
    cut = client.post("/v1/completions", json={**base, "stop": [stop]}, headers=NO_CACHE).json()["choices"][0]
    assert cut["finish_reason"] == "stop"
    assert cut["text"] == full[: full.index(stop)]
    assert stop not in cut["text"]


def test_seed_makes_sampling_reproducible(client):
    body = chat_body("Tell me a story about a cat.", max_tokens=12, temperature=1.0, seed=1234)
    a = client.post("/v1/chat/completions", json=body,
                    headers=NO_CACHE).json()["choices"][0]["message"]["content"]
    b = client.post("/v1/chat/completions", json=body,
                    headers=NO_CACHE).json()["choices"][0]["message"]["content"]
    assert a == b
    others = {client.post("/v1/chat/completions", json={**body, "seed": s}, headers=NO_CACHE)
              .json()["choices"][0]["message"]["content"] for s in (1, 2, 3)}
    assert len(others | {a}) > 1  # different seeds give different samples


def test_chat_logprobs_openai_shape(client):
    r = client.post("/v1/chat/completions", json=chat_body("Hi", max_tokens=4, logprobs=True, top_logprobs=3))
    choice = r.json()["choices"][0]
    content = choice["logprobs"]["content"]
    assert len(content) == r.json()["usage"]["completion_tokens"]
    for item in content:
        assert set(item) == {"token", "logprob", "bytes", "top_logprobs"}
        assert item["logprob"] <= 0 and isinstance(item["bytes"], list)
        assert len(item["top_logprobs"]) == 3
        assert all(set(t) == {"token", "logprob", "bytes"} for t in item["top_logprobs"])
        # greedy: the chosen token is the most likely one
        assert math.isclose(item["logprob"], item["top_logprobs"][0]["logprob"], abs_tol=1e-5)
        assert bytes(item["bytes"]).decode("utf-8", "replace") == item["token"]
    text = "".join(i["token"] for i in content)
    assert choice["message"]["content"].startswith(text.strip()[:3])


def test_completion_logprobs_legacy_shape(client):
    r = client.post("/v1/completions", json={"prompt": "The capital of France is", "max_tokens": 3,
                                              "temperature": 0, "logprobs": 2, "echo": False})
    lp = r.json()["choices"][0]["logprobs"]
    assert set(lp) == {"tokens", "token_logprobs", "top_logprobs", "text_offset"}
    n = r.json()["usage"]["completion_tokens"]
    assert (len(lp["tokens"]) == len(lp["token_logprobs"]) == len(lp["top_logprobs"])
            == len(lp["text_offset"]) == n)
    assert lp["text_offset"][0] == 0
    assert all(2 <= len(d) <= 3 and max(d.values()) <= 0 for d in lp["top_logprobs"])


def test_constrained_logprobs_are_over_allowed_tokens(client):
    schema = {"type": "object", "properties": {"risk_level": {"type": "integer", "enum": [1, 2, 3]}},
              "required": ["risk_level"]}
    r = client.post("/v1/chat/completions", json=chat_body(
        "Risk level of a stable borrower?", max_tokens=12, logprobs=True, top_logprobs=5,
        response_format={"type": "json_schema",
                         "json_schema": {"name": "r", "schema": schema, "strict": True}}))
    content = r.json()["choices"][0]["logprobs"]["content"]
    digit = [c for c in content if c["token"].strip() in {"1", "2", "3"}]
    assert digit, content
    alternatives = {t["token"].strip() for t in digit[0]["top_logprobs"]}
    assert alternatives <= {"1", "2", "3"}
    assert math.isclose(sum(math.exp(t["logprob"]) for t in digit[0]["top_logprobs"]), 1.0, abs_tol=1e-3)


def _completion(client, **body) -> dict:
    r = client.post("/v1/completions", json=body, headers=NO_CACHE)
    assert r.status_code == 200, r.text
    return r.json()["choices"][0]


def test_repetition_penalty_takes_a_greedy_answer_out_of_its_loop(client):
    body = {"prompt": "The sky is", "max_tokens": 16, "temperature": 0, "logprobs": 0}
    plain = _completion(client, **body)["logprobs"]["tokens"]
    penalised = _completion(client, **body, repetition_penalty=1.3)["logprobs"]["tokens"]
    assert len(plain) - len(set(plain)) >= 4, plain  # the small model loops ('a canvas of ...' x3)
    assert len(penalised) - len(set(penalised)) < len(plain) - len(set(plain)), penalised


def test_min_tokens_holds_back_the_end_of_the_answer(client):
    body = chat_body("Reply with one word: yes or no?", max_tokens=40)
    short = client.post("/v1/chat/completions", json=body, headers=NO_CACHE).json()
    assert short["usage"]["completion_tokens"] < 10 and short["choices"][0]["finish_reason"] == "stop"
    long = client.post("/v1/chat/completions", json={**body, "min_tokens": 20}, headers=NO_CACHE).json()
    assert long["usage"]["completion_tokens"] >= 20, long
    ignored_stop = client.post("/v1/chat/completions", json={**body, "min_tokens": 6, "stop": ["."]},
                               headers=NO_CACHE).json()
    assert ignored_stop["usage"]["completion_tokens"] >= 6  # no stop string before min_tokens either


def test_min_p_one_keeps_only_the_most_likely_token(client):
    greedy = _completion(client, prompt="The sky is", max_tokens=8, temperature=0)["text"]
    sampled = _completion(client, prompt="The sky is", max_tokens=8, temperature=1.5, seed=7)["text"]
    assert sampled != greedy  # at this temperature the seed wanders off
    assert _completion(client, prompt="The sky is", max_tokens=8, temperature=1.5, seed=7,
                       min_p=1.0)["text"] == greedy


def test_guided_choice_answers_exactly_one_choice(client):
    choices = ["yes", "no", "maybe not", 'a "quoted" one']
    r = client.post("/v1/chat/completions", json=chat_body("Is the sky blue?", max_tokens=10,
                                                           guided_choice=choices), headers=NO_CACHE)
    assert r.status_code == 200, r.text
    choice = r.json()["choices"][0]
    assert choice["message"]["content"] in choices and choice["finish_reason"] == "stop"
    comp = _completion(client, prompt="The answer (yes or no) is", max_tokens=10, temperature=0.9, seed=3,
                       guided_choice=["sure", "never"])
    assert comp["text"] in {"sure", "never"}


def test_guided_regex_answer_matches_in_full(client):
    import re

    pattern = r"[0-9]{3}-[a-z]{2}"
    r = client.post("/v1/chat/completions", json=chat_body("Give me a code.", max_tokens=12,
                                                           guided_regex=pattern), headers=NO_CACHE)
    assert r.status_code == 200, r.text
    content = r.json()["choices"][0]["message"]["content"]
    assert re.fullmatch(pattern, content), content
