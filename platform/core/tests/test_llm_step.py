"""Unit tests of the one language-model step (``core.llm``): its truncation policy, validation, gate,
privacy hook and failure handling, against a fake HTTP transport. The end-to-end tests of each app run
the same step against the real model service."""
import json

import httpx
import pytest

from core import llm
from core.jobs import PermanentJobError
from core.model_client import CircuitBreaker, ModelClient, TransientModelError

pytestmark = pytest.mark.django_db

SCHEMA = {"type": "object", "properties": {"level": {"type": "integer"}, "text": {"type": "string"}}}


def answer(content: str, finish: str = "stop") -> tuple[int, dict]:
    return 200, {"choices": [{"message": {"content": content}, "finish_reason": finish}], "model": "m",
                 "usage": {"completion_tokens": 3}}


@pytest.fixture
def service(monkeypatch):
    """Replies queued by the test; every request body is kept."""
    from core.models import PromptTemplate

    PromptTemplate.objects.create(name="core.step_test", version=3, language="en", output_schema=SCHEMA,
                                  body="[system]\nAnswer in JSON.\n[user]\nAbout $topic")
    replies: list = []
    seen: list[dict] = []

    def handler(request):
        seen.append(json.loads(request.content))
        item = replies.pop(0)
        if isinstance(item, Exception):
            raise item
        status, body = item
        return httpx.Response(status, json=body)

    client = ModelClient("http://model/v1", transport=httpx.MockTransport(handler), sleep=lambda s: None,
                         retries=0, breaker=CircuitBreaker(threshold=100))
    monkeypatch.setattr(llm, "get_model_client", lambda name: client)
    return replies, seen


def run(**kwargs):
    return llm.llm_step(template="core.step_test", language="en", variables={"topic": "risk"}, max_tokens=50,
                        **kwargs)


def test_a_valid_answer_is_validated_and_kept(service):
    replies, seen = service
    replies.append(answer('{"level": 2, "text": "moderate"}'))
    step = run(validate=lambda parsed: {**parsed, "level": int(parsed["level"])})
    assert step.ok and step.value == {"level": 2, "text": "moderate"} and not step.truncated
    assert step.prompt_label == "core.step_test v3 (en)" and step.meta()["status"] == "ok"
    assert seen[0]["response_format"]["json_schema"]["schema"] == SCHEMA
    assert seen[0]["messages"][1]["content"] == "About risk" and seen[0]["max_tokens"] == 50


def test_a_cut_answer_is_asked_again_with_twice_the_budget(service):
    replies, seen = service
    replies += [answer('{"level": 2, "te', "length"), answer('{"level": 2, "text": "ok"}')]
    step = run()
    assert step.ok and step.value == {"level": 2, "text": "ok"} and not step.truncated
    assert [s["max_tokens"] for s in seen] == [50, 100] and step.attempts == 2


def test_an_answer_cut_twice_is_closed_at_its_last_complete_value(service):
    replies, _ = service
    replies += [answer('{"level": 2, "te', "length"), answer('{"level": 2, "text": "mod', "length")]
    step = run()
    assert step.ok and step.truncated and step.value == {"level": 2, "text": "mod"}
    assert any("cut at 100 tokens" in p for p in step.problems)


def test_an_answer_that_is_not_json_is_rejected_after_one_retry(service):
    replies, seen = service
    replies += [answer("I think the risk is moderate."), answer("Moderate, I think.")]
    step = run()
    assert step.status == "rejected" and step.value is None
    assert step.problems == ["1: the answer is not JSON", "2: the answer is not JSON"] and len(seen) == 2


def test_a_failed_validation_rejects_with_the_reason(service):
    replies, _ = service
    replies.append(answer('{"level": 7}'))

    def validate(parsed):
        if parsed["level"] not in (1, 2, 3):
            raise llm.LLMOutputInvalid(f"level must be 1, 2 or 3, got {parsed['level']}")
        return parsed

    step = run(validate=validate, retry=False)
    assert step.status == "rejected" and step.value is None and step.parsed == {"level": 7}
    assert step.problems == ["the answer is not usable: level must be 1, 2 or 3, got 7"]


def test_the_gate_withholds_an_output_that_fails_twice_and_records_both_tries(service):
    replies, seen = service
    replies += [answer('{"level": 1, "text": "fine fine fine"}'),
                answer('{"level": 1, "text": "ok ok fine fine"}')]
    step = run(gate=lambda value: ["the text repeats itself"] if "fine fine" in value["text"] else [])
    assert step.status == "rejected" and step.value is None
    assert step.problems == ["1: the text repeats itself", "2: the text repeats itself"]
    assert [t["problems"] for t in step.meta()["tries"]] == [["the text repeats itself"]] * 2
    assert step.answer.content == '{"level": 1, "text": "ok ok fine fine"}' and step.attempts == 2


def test_a_rejected_answer_is_asked_again_once_with_other_settings(service):
    replies, seen = service
    replies += [answer('{"level": 1, "text": "fine fine fine"}'), answer('{"level": 1, "text": "fine"}')]
    step = run(gate=lambda value: ["the text repeats itself"] if "fine fine" in value["text"] else [])
    assert step.ok and step.value == {"level": 1, "text": "fine"} and step.problems == []
    first, second = seen
    assert "repetition_penalty" not in first and first["temperature"] == 0.0 and first["seed"] == 0
    assert second["repetition_penalty"] == llm.RETRY_SETTINGS["repetition_penalty"] > 1
    assert second["frequency_penalty"] > 0 and second["seed"] == 1 and second["temperature"] > 0
    assert second["messages"] == first["messages"] and second["response_format"] == first["response_format"]
    assert step.meta()["tries"][0]["problems"] == ["the text repeats itself"]
    assert step.meta()["tries"][1]["problems"] == []


def test_a_versions_sampling_is_its_first_try_and_the_retry_is_never_weaker(service):
    from core.models import PromptTemplate

    PromptTemplate.objects.filter(name="core.step_test").update(
        sampling={"repetition_penalty": 1.5, "frequency_penalty": 0.1, "min_p": 0.05})
    replies, seen = service
    replies += [answer('{"level": 1, "text": "fine fine fine"}'), answer('{"level": 1, "text": "fine"}')]
    step = run(gate=lambda value: ["the text repeats itself"] if "fine fine" in value["text"] else [],
               frequency_penalty=0.2)
    assert step.ok
    first, second = seen
    assert (first["repetition_penalty"], first["frequency_penalty"], first["min_p"]) == (1.5, 0.2, 0.05)
    assert first["temperature"] == 0.0 and first["seed"] == 0
    # The retry keeps the version's stronger penalty and min_p, and its own frequency penalty (0.3 > 0.2).
    assert (second["repetition_penalty"], second["frequency_penalty"], second["min_p"]) == (1.5, 0.3, 0.05)
    assert second["temperature"] == llm.RETRY_SETTINGS["temperature"] and second["seed"] == 1
    assert step.meta()["tries"][0]["settings"]["repetition_penalty"] == 1.5


def test_without_sampling_the_first_try_is_plain_greedy(service):
    replies, seen = service
    replies.append(answer('{"level": 1, "text": "fine"}'))
    assert run().ok
    assert not {"repetition_penalty", "frequency_penalty", "min_p"} & set(seen[0])


def test_the_core_quality_gate_rejects_a_looping_answer(service):
    from core.quality import json_problems

    replies, _ = service
    loop = "no prior study; no prior study; no prior study; a report of a report of a report"
    replies += [answer(json.dumps({"level": 1, "text": loop})), answer('{"level": 1, "text": "{{{{{"}')]
    step = run(gate=lambda value: json_problems(value, fields=["text"]))
    assert step.status == "rejected" and step.value is None
    assert any(p.startswith("1: text: the sentence") for p in step.problems)
    assert any(p.startswith("2: text: the text contains") for p in step.problems)


def test_a_retry_the_service_refuses_keeps_the_first_reasons(service):
    replies, _ = service
    replies += [answer("not json"), (400, {"error": {"message": "bad penalty"}})]
    step = run()
    assert step.status == "rejected" and step.value is None
    assert step.problems[0] == "the answer is not JSON" and "could not be made" in step.problems[1]


def test_the_privacy_hook_stops_the_call_before_anything_is_sent(service):
    _, seen = service
    with pytest.raises(PermanentJobError, match="1 identifier") as info:
        run(privacy=lambda messages: ["risk"] if "risk" in messages[-1]["content"] else [])
    assert info.value.code == "privacy_check_failed" and "risk" not in str(info.value) and seen == []


def test_a_rejected_request_makes_the_step_unavailable(service):
    replies, _ = service
    replies.append((400, {"error": {"message": "unknown model"}}))
    step = run()
    assert step.status == "unavailable" and step.error_code == "model_request_rejected"
    assert "unknown model" in step.problems[0]


def test_a_transient_failure_retries_the_job_until_its_last_attempt(service):
    replies, _ = service
    replies += [(503, {"error": {"message": "queue full"}}), (503, {"error": {"message": "queue full"}})]
    with pytest.raises(TransientModelError):
        run()
    step = run(final_attempt=True)
    assert step.status == "unavailable" and "stayed unavailable" in step.problems[0]


@pytest.mark.parametrize("text, impression", [
    ('{"technique": "CT", "comparison": "", "findings": [], "impression": "Normal.", "recommendations": [], '
     '"limitations": ""}', "Normal."),
    ('{"technique": "CT chest", "comparison": "None available.", "findings": [{"location": "lungs", '
     '"description": "clear", "evidence": "HU"}], "impression": "No acute find', "No acute find"),
    ('{"technique": "CT", "comparison": "x", "findings": [{"location": "lu', None),
    ("not json", None),
])
def test_json_salvage_closes_a_cut_document_at_its_last_complete_value(text, impression):
    parsed = llm.json_salvage(text)
    if impression is None:
        assert parsed is None or not parsed.get("impression")
    else:
        assert parsed["impression"] == impression


def test_narrow_schema_tightens_this_call_only(service):
    from core.models import PromptTemplate

    replies, seen = service
    replies.append(answer('{"level": 2, "text": "ok"}'))

    def narrow(schema):
        schema["properties"]["level"]["enum"] = [1, 2]
        return schema

    assert run(narrow_schema=narrow).ok
    assert seen[0]["response_format"]["json_schema"]["schema"]["properties"]["level"] == {
        "type": "integer", "enum": [1, 2]}
    assert PromptTemplate.objects.get(name="core.step_test").output_schema == SCHEMA
