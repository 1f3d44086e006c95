"""What the page and the API show of a draft: a gated-out answer is not shown (they say "no usable draft"
with the reasons and still show the facts from the headers); an accepted one is shown with its technique,
comparison and evidence computed from the headers. The study job runs in this process with the language
model on and a fake model service that answers what the test queues (``test_live.py`` runs the real
one)."""
from __future__ import annotations

import json

import httpx
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from apps.medical.grounding import technique_text
from apps.medical.models import Report
from apps.medical.tests.test_draft_quality import GOOD_V2
from apps.medical.tests.web_helpers import file_bytes, process_upload
from core import llm
from core.model_client import CircuitBreaker, ModelClient

pytestmark = pytest.mark.django_db

GARBAGE_V2 = {"findings": [{"feature": "lung_fraction",
                            "text": "Chest pain, rule out pulmonary embolism"}] * 2,
              "impression": "no prior study; no prior study; no prior study; "
                            "a report of a report of a report",
              "recommendations": ["None available,"]}


@pytest.fixture
def model_replies(settings, tmp_path, monkeypatch):
    """The model service's answers, queued by the test; every request body is kept."""
    settings.LLM_ENABLED = True
    settings.MEDIA_ROOT = str(tmp_path / "media")
    replies: list[dict] = []
    seen: list[dict] = []

    def handler(request):
        seen.append(json.loads(request.content))
        content = json.dumps(replies.pop(0))
        choice = {"message": {"content": content}, "finish_reason": "stop"}
        return httpx.Response(200, json={"choices": [choice], "model": "fake",
                                         "usage": {"completion_tokens": 40}})

    client = ModelClient("http://model/v1", transport=httpx.MockTransport(handler), sleep=lambda s: None,
                         retries=0, breaker=CircuitBreaker(threshold=100))
    monkeypatch.setattr(llm, "get_model_client", lambda name: client)
    return replies, seen


def _study(api_client_for, radiologist):
    api = api_client_for(radiologist)
    response = api.post("/api/v1/medical/studies/", {
        "files": [SimpleUploadedFile("ct.dcm", file_bytes("CT_small.dcm"))],
        "indication": "Chest pain, rule out pulmonary embolism"}, format="multipart")
    assert response.status_code == 202, response.content
    (study,) = process_upload(response.json()["id"])
    return api, study


def test_a_draft_failing_the_gates_twice_is_not_shown(model_replies, radiologist, api_client_for, client):
    replies, seen = model_replies
    replies += [GARBAGE_V2, {**GARBAGE_V2, "recommendations": ["{{{{{"]}]
    api, study = _study(api_client_for, radiologist)
    assert len(seen) == 2 and seen[1]["repetition_penalty"] > 1  # the retry used other settings
    report = Report.objects.get(study=study)
    assert report.ai_generated is False and report.ai_sections is None
    assert report.sections["findings"] == [] and "Chest pain" not in json.dumps(report.sections)
    assert report.sections["technique"] == technique_text(study.result["summary"], "en")
    quality = study.result["draft_quality"]
    assert quality["usable"] is False and quality["status"] == "rejected" and quality["tries"] == 2
    assert any(r.startswith("1: findings[1].text: the text copies the input") for r in quality["reasons"])
    assert any(r.startswith("2: recommendations[1]: ") for r in quality["reasons"])

    body = api.get(study.api_url()).json()
    assert body["draft"]["usable"] is False and body["draft"]["message"] == "no usable draft"
    assert body["draft"]["reasons"] == quality["reasons"]
    assert {f["id"] for f in body["draft"]["features"]} >= {"lung_fraction", "slice_thickness"}
    assert body["report"]["ai_generated"] is False and body["report"]["notice"] is None
    assert body["report"]["findings"] == []

    client.force_login(radiologist)
    page = client.get(study.get_absolute_url()).content.decode()
    assert 'id="no-draft"' in page and "No usable draft" in page and "no prior study" in page  # the reasons
    assert 'id="study-facts"' in page and "22.8%" in page
    assert "ai-notice" not in page and "rule out pulmonary embolism</li>" not in page


def test_an_accepted_draft_is_shown_as_the_model_wrote_it_with_facts_from_code(model_replies, radiologist,
                                                                                api_client_for, client):
    replies, seen = model_replies
    replies.append(GOOD_V2)
    api, study = _study(api_client_for, radiologist)
    assert len(seen) == 1
    enum = seen[0]["response_format"]["json_schema"]["schema"]["properties"]["findings"]["items"][
        "properties"]["feature"]["enum"]
    assert "lung_fraction" in enum and "field_strength" not in enum  # narrowed to the study's features
    assert "- lung_fraction: the share of lung-density voxels" in seen[0]["messages"][-1]["content"]
    report = Report.objects.get(study=study)
    assert report.ai_generated is True and study.result["draft_quality"]["usable"] is True
    # the post-check reads only what the model wrote (the evidence's "-200 HU", "22.8%" are computed)
    assert report.postcheck_warnings == [] and study.status == "succeeded"
    sections = report.sections
    assert [f["description"] for f in sections["findings"]] == [f["text"] for f in GOOD_V2["findings"]]
    assert sections["findings"][0]["evidence"].endswith("22.8%")
    assert sections["impression"] == GOOD_V2["impression"]
    assert sections["recommendations"] == GOOD_V2["recommendations"]
    assert sections["technique"].startswith("CT examination") and "5 mm" in sections["technique"]
    body = api.get(study.api_url()).json()
    assert body["draft"]["usable"] is True and body["draft"]["message"] is None
    assert body["report"]["notice"] == "AI-generated draft, not verified"
    client.force_login(radiologist)
    page = client.get(study.get_absolute_url()).content.decode()
    assert GOOD_V2["impression"] in page and 'id="no-draft"' not in page
