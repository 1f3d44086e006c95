"""Live: a study through the real worker and the real model service behind a recording proxy. What the
report stores, the API returns and the page shows is exactly what the model answered (the findings'
texts, impression and recommendation), around the parts code computes from the headers (technique,
comparison, evidence); an answer the gate rejected is shown nowhere."""
from __future__ import annotations

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from apps.medical.decisions import draft_gate
from apps.medical.grounding import draft_sections, technique_text
from apps.medical.models import Report, Study
from apps.medical.services.drafts import draft_validate
from apps.medical.tests.web_helpers import file_bytes
from conftest import _model_env, wait_for
from core.llm import json_salvage
from core.tests.recorder import ModelServiceRecorder, answer_content

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]

INDICATION = "Chest pain, rule out pulmonary embolism"


def _texts(value: dict) -> list[str]:
    return [f["text"] for f in value.get("findings") or []] + [value.get("impression") or ""] + list(
        value.get("recommendations") or [])


def test_the_stored_draft_is_what_the_model_answered(model_service, worker_factory, make_user, api_client_for,
                                                    client):
    user = make_user("rad", "medical")
    api = api_client_for(user)
    with ModelServiceRecorder(model_service.url) as proxy:
        worker_factory(env={**_model_env(model_service), "MODEL_SERVICE_URL": proxy.url},
                       name="drafts").start()
        response = api.post("/api/v1/medical/studies/", {
            "files": [SimpleUploadedFile("ct.dcm", file_bytes("CT_small.dcm"))], "indication": INDICATION},
            format="multipart")
        assert response.status_code == 202, response.content
        upload = response.json()

        def finished():
            body = api.get(upload["url"]).json()
            return body if body["status"] in ("done", "failed") and body["studies"] else None

        body = wait_for(finished, timeout=600, interval=2.0, message="the study to finish")
        study = Study.objects.get(pk=body["studies"][0]["id"])
    assert study.status in ("succeeded", "needs_review"), study.error_message
    chats = proxy.chats()
    quality = study.result["draft_quality"]
    # one answer per try, more when an answer was cut (asked again with twice the budget) or timed out
    assert 1 <= quality["tries"] <= len(chats)
    answers = []
    for _request, reply in chats:
        try:
            answers.append(draft_validate(json_salvage(answer_content(reply))))
        except ValueError:
            continue
    summary, indication = study.result["summary"], study.result["indication_sent"]
    report = Report.objects.get(study=study)
    detail = api.get(study.api_url()).json()
    client.force_login(user)
    page = client.get(study.get_absolute_url()).content.decode()
    passing = [a for a in answers if not draft_gate(a, summary=summary, indication=indication)]
    if quality["tries"] == 2:
        retry = chats[-1][0]
        assert retry["repetition_penalty"] > 1 and retry["seed"] != chats[0][0]["seed"]
    if quality["usable"]:
        def without_limits(sections):  # a cut answer gets a note in the limitations
            return {k: v for k, v in sections.items() if k != "limitations"}

        shown = [without_limits(draft_sections(a, summary=summary, lang="en")) for a in passing]
        assert report.ai_generated and report.sections == report.ai_sections
        assert without_limits(report.sections) in shown
        final = passing[shown.index(without_limits(report.sections))]
        findings = [f["description"] for f in detail["report"]["findings"]]
        assert findings == [f["text"] for f in final["findings"]]
        assert detail["report"]["impression"] == final["impression"]
        assert detail["report"]["recommendations"] == final["recommendations"]
        assert detail["draft"]["usable"] is True
    else:
        assert not report.ai_generated and report.ai_sections is None and report.sections["findings"] == []
        assert detail["draft"]["message"] == "no usable draft" and detail["draft"]["reasons"]
        assert 'id="no-draft"' in page
    # no word of an answer the gate rejects is shown
    kept = json.dumps(report.sections, ensure_ascii=False)
    for text in {t for a in answers if a not in passing for t in _texts(a) if len(t) > 12}:
        if quality["usable"] and text in _texts(final):
            continue
        assert text not in kept and text not in page
    assert report.sections["technique"] == technique_text(summary, "en")
    assert "slice thickness 5 mm" in report.sections["technique"]
