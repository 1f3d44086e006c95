"""End to end with real processes, checked against what the model service actually answered: a recording
proxy between the worker and the real model service keeps every request and response, and what is stored
must be exactly what the model answered (judgment field by field, label probabilities recomputed from the
recorded logprobs, extraction value by value, with its quote); extraction is compared field by field with
the ground truth of the report. And with the model service answering 4xx, a batch still gets scorecard
results."""
from __future__ import annotations

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from apps.finance import evaluation, evidence, prompting
from apps.finance.fields import FIELD_NAMES, FIELDS_BY_NAME, MODEL_INPUTS
from apps.finance.ingest import clean_value
from apps.finance.tests.conftest import applicant_of, csv_bytes
from conftest import TEST_MODEL_KEY, wait_for
from core.services import prompt_templates_seed
from core.tests.recorder import ModelServiceRecorder

pytestmark = [pytest.mark.live, pytest.mark.slow, pytest.mark.django_db(transaction=True)]
TERMINAL = {"succeeded", "failed", "needs_review"}


def _poll(api, url: str, *, timeout: float, what: str) -> dict:
    def done():
        body = api.get(url).json()
        progress = body.get("progress")
        if isinstance(progress, dict):
            return body if progress.get("status") in ("done", "failed") else None
        return body if body.get("status") in TERMINAL else None

    return wait_for(done, timeout=timeout, interval=1.0, message=what)


def _assert_judgment_is_the_recorded_answer(stored: dict, recorded: dict) -> None:
    choice = recorded["choices"][0]
    answer = json.loads(choice["message"]["content"])
    assert stored["model"] == recorded["model"]
    if stored["status"] == "ok":
        assert stored["risk_level"] == int(answer["risk_level"])
        assert stored["rationale"] == answer["rationale"]
        assert stored["key_factors"] == answer["key_factors"]
        probs = prompting.label_probs_from_logprobs((choice.get("logprobs") or {}).get("content"))
        assert stored["label_probs"] == {str(k): round(v, 4) for k, v in sorted(probs.items())}
    else:  # withheld by core's quality gate: nothing of it is shown, the reasons are
        assert stored["status"] == "rejected" and stored["problems"] and stored["rationale"] == ""


def test_what_is_stored_is_what_the_model_answered(model_service, model_settings, worker_factory, make_user,
                                                   api_client_for, credit_model, german_rows):
    prompt_templates_seed()
    api = api_client_for(make_user("ana", "finance"))
    item = evaluation.labelled_set("extraction", "en")[0]  # a report that states 11 fields, omits 7
    assert len(item["stated"]) == 11 and len(item["omitted"]) == 7
    with ModelServiceRecorder(model_service.url) as proxy:
        worker_factory(env={"MODEL_SERVICE_URL": proxy.url, "MODEL_SERVICE_TIMEOUT": "600",
                            "MODEL_SERVICE_API_KEY": model_settings.MODEL_SERVICE_API_KEY},
                       name="rec").start()
        posted = {}
        given = {n: german_rows[0][n] for n in item["omitted"][:3]}  # 4 omitted fields stay unknown
        for key, body in (("report", {"application_id": "REC-1", "report": item["report"], "language": "en",
                                      "applicant": given}),
                          ("fields", {"application_id": "REC-2", "applicant": applicant_of(german_rows[5]),
                                      "language": "en"}),
                          ("test", {"application_id": "REC-3", "report": "test report", "language": "en"})):
            response = api.post("/api/v1/finance/assessments/", body, format="json")
            assert response.status_code == 202, response.content
            posted[key] = response.json()["url"]
        done = {k: _poll(api, url, timeout=900, what=f"assessment {k}") for k, url in posted.items()}

    # 1. The report: every extracted value is the model's, with its quote; nothing else was kept.
    body = done["report"]
    assert body["status"] in ("succeeded", "needs_review"), body.get("error")
    result = body["result"]
    recorded = json.loads(proxy.answer_for(schema="field_extraction", text=item["report"][:60])
                          ["choices"][0]["message"]["content"])
    extraction = result["extraction"]
    assert extraction["prompt"] == "finance.field_extraction v2 (en)"
    report_norm = evidence.normalise(item["report"])
    for name in MODEL_INPUTS:
        answered = recorded.get(name)
        if name in given:  # the applicant's own value is never replaced
            assert name not in extraction["fields"] and name not in extraction["rejected"]
            continue
        if name in extraction["fields"]:
            clean, problem = clean_value(FIELDS_BY_NAME[name], answered["value"])
            assert problem is None and clean == extraction["fields"][name] == result["applicant"][name]
            cited = extraction["evidence"][name]
            if evidence.evidence_problem(name, clean, answered["quote"], report_norm) is None:
                assert cited == answered["quote"].strip()  # the model's own quote
            else:  # its quote is not the report's words: the report's sentence that states the value
                assert cited == evidence.supporting_span(name, clean, item["report"]).strip()[:200]
                assert evidence.evidence_problem(name, clean, cited, report_norm) is None
            # compared with the ground truth of the report: a kept value is the value the report states
            assert name in item["stated"] and clean == item["stated"][name], name
        else:
            assert result["applicant"].get(name) is None and name in result["missing_fields"]
            if answered is not None and answered.get("value") is not None:
                assert extraction["rejected"][name]["value"] == answered["value"]
                assert extraction["rejected"][name]["reason"]
    for name in item["omitted"][3:]:  # nothing the report leaves out (and nobody gave) is invented
        assert name in result["missing_fields"], name
    codes = [r["code"] for r in result["review_reasons"]]
    assert "mostly_unverified" in codes and body["status"] == "needs_review"  # no field given by a person
    assert 0 < result["probability_of_default"] < 1 and isinstance(result["score"], int)
    _assert_judgment_is_the_recorded_answer(result["llm"], proxy.answer_for(schema="risk_judgment",
                                                                            text=item["report"][:60]))

    # 2. Fields only: the judgment stored is the recorded one; unmeasured, it sends nobody to review.
    body = done["fields"]
    assert body["status"] == "succeeded", body.get("error")
    result = body["result"]
    summary = prompting.applicant_summary(result["applicant"], "en")
    _assert_judgment_is_the_recorded_answer(result["llm"], proxy.answer_for(schema="risk_judgment",
                                                                            text=summary[:80]))
    assert result["needs_review"] is False and result["combination"]["judgment"]["informative"] is False
    assert "judgment_uninformative" in [n["code"] for n in result["notes"]] or result["llm"]["status"] != "ok"

    # 3. "test report": whatever the model answered, no field is invented, so there is nothing to score.
    body = done["test"]
    recorded = json.loads(proxy.answer_for(schema="field_extraction", text="test report")
                          ["choices"][0]["message"]["content"])
    _, kept, _, _ = prompting.extraction_with_evidence(recorded, "test report")
    assert kept == {}
    assert body["status"] == "failed" and "states none of the applicant's fields" in body["error"]["message"]


def test_a_model_service_answering_4xx_still_gives_scorecard_results(worker_factory, make_user,
                                                                      api_client_for, credit_model,
                                                                      german_rows):
    prompt_templates_seed()
    api = api_client_for(make_user("ana", "finance"))
    rows = [{**applicant_of(german_rows[i]), "application_id": f"DEG-{i}"} for i in range(6)]
    rows[5] = {**rows[5], "report": "The applicant owns the home.", "telephone": ""}  # one field to extract
    with ModelServiceRecorder(status=404) as broken:
        worker_factory(env={"MODEL_SERVICE_URL": broken.url, "MODEL_SERVICE_API_KEY": TEST_MODEL_KEY},
                       name="deg").start()
        data = csv_bytes(rows, ["application_id", *FIELD_NAMES, "report"])
        response = api.post("/api/v1/finance/batches/",
                            {"file": SimpleUploadedFile("deg.csv", data, "text/csv")}, format="multipart")
        assert response.status_code == 202, response.content
        batch = _poll(api, response.json()["url"], timeout=300, what="the batch")
    assert batch["progress"]["total"] == 6 and batch["progress"]["failed"] == 0, batch["progress"]
    assert len(broken.chats()) == 0 and len(broken.exchanges) >= 7  # every call was refused, none answered
    listed = api.get(f"/api/v1/finance/assessments/?batch={batch['id']}").json()
    ids = [a["id"] for a in listed["results"]]
    assert len(ids) == 6
    for job_id in ids:
        body = api.get(f"/api/v1/finance/assessments/{job_id}/").json()
        result = body["result"]
        assert body["status"] in ("succeeded", "needs_review"), body.get("error")
        assert 0 < result["probability_of_default"] < 1 and isinstance(result["score"], int)
        assert result["risk_level"] in (1, 2, 3) and result["reason_codes"]
        assert result["llm"]["status"] == "unavailable" and "refused" in result["llm"]["problems"][0]
        assert "llm_unavailable" in [n["code"] for n in result["notes"]]
        if result["application_id"] == "DEG-5":
            assert result["extraction"]["status"] == "unavailable"
            assert "telephone" in result["missing_fields"]
        else:  # complete fields: nobody has to act
            assert body["status"] == "succeeded" and result["needs_review"] is False


@pytest.mark.timeout(1200)
def test_prompt_evaluation_runs_the_labelled_sets_through_the_model_service(model_service, model_settings,
                                                                            transactional_db):
    # Evaluation is an offline admin command: a long answer on two busy cores may take minutes
    # (a Chinese report is about twice the tokens of an English one), and a timed-out call would be
    # measured as "unavailable", not as what the template does.
    model_settings.MODEL_SERVICE_TIMEOUT = 600
    prompt_templates_seed()
    out = evaluation.prompt_evaluate(template="field_extraction", version=2, language="en", limit=1)
    assert out["n"] == 1 and out["primary"] == "f1" and out["model"]
    m = out["metrics"]
    assert 0 <= m["precision"] <= 1 and 0 <= m["recall"] <= 1 and m["fields_stated"] > 0
    assert m["fields_invented"] == 0 and m["omitted_left_missing"] == 1.0  # evidence keeps inventions out
    out = evaluation.prompt_evaluate(template="risk_judgment", version=1, language="zh-hans", limit=2)
    assert out["n"] == 2 and out["primary"] == "auc" and 0 <= out["metrics"]["auc"] <= 1 and out["model"]
    with pytest.raises(LookupError):
        evaluation.prompt_evaluate(template="nope", version=1, language="en")
