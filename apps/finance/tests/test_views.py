"""Finance pages and REST endpoints in-process: roles, validation errors that name the field, pages that
render in English and Chinese, model pages, the model-service-down retry path."""
from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from apps.finance import services
from apps.finance.fields import FIELD_NAMES
from apps.finance.models import Assessment
from apps.finance.tests.conftest import applicant_of, csv_bytes
from core.models import Batch, JobStatus
from core.services import job_run_inline

pytestmark = pytest.mark.django_db

PAGES = ["/finance/", "/finance/new/", "/finance/assessments/", "/finance/review/", "/finance/batches/",
         "/finance/models/"]


def _scored(user, row, **kwargs) -> Assessment:
    job = services.assessment_create(owner=user, applicant=applicant_of(row), **kwargs)
    job_run_inline(model=Assessment, job_id=str(job.pk), handler=services.assessment_process)
    job.refresh_from_db()
    return job


def test_no_finance_role_gets_403_on_pages_and_api(make_user, api_client_for, client, credit_model,
                                                     german_rows, llm_off):
    analyst = make_user("ana", "finance")
    job = _scored(analyst, german_rows[0])
    outsider = make_user("doc", "medical")
    client.force_login(outsider)
    for url in [*PAGES, job.get_absolute_url(), f"/finance/assessments/{job.pk}/report.pdf",
                "/finance/assessments/export.csv", f"/finance/models/{credit_model.version}/"]:
        assert client.get(url).status_code == 403, url
    api = api_client_for(outsider)
    assert api.get("/api/v1/finance/assessments/").status_code == 403
    assert api.get(f"/api/v1/finance/assessments/{job.pk}/").status_code == 403
    response = api.post("/api/v1/finance/assessments/", {"report": "x"}, format="json")
    assert response.status_code == 403 and response.json()["error"]["status"] == 403
    assert api.post(f"/api/v1/finance/assessments/{job.pk}/review/", {"decision": "approve"},
                    format="json").status_code == 403
    client.logout()
    assert client.get("/finance/").status_code == 302  # to the login page
    from rest_framework.test import APIClient

    assert APIClient().get("/api/v1/finance/assessments/").status_code in (401, 403)


@pytest.mark.parametrize("lang", ["en", "zh-hans"])
def test_pages_render_in_both_languages(make_user, client, credit_model, german_rows, llm_off, lang):
    user = make_user("ana", "finance")
    job = _scored(user, german_rows[1], application_id="R-1")
    client.force_login(user)
    client.cookies["django_language"] = lang
    for url in [*PAGES, job.get_absolute_url(), f"/finance/models/{credit_model.version}/",
                "/finance/assessments/?risk_level=1&sort=-probability_of_default"]:
        response = client.get(url, HTTP_ACCEPT_LANGUAGE=lang)
        assert response.status_code == 200, url
    detail = client.get(job.get_absolute_url(), HTTP_ACCEPT_LANGUAGE=lang).content.decode()
    if lang == "zh-hans":
        assert "违约概率" in detail and "校准评分卡" in detail
    else:
        assert "Probability of default" in detail and "calibrated scorecard" in detail
    png = client.get(f"/finance/models/{credit_model.version}/calibration.png")
    assert png["Content-Type"] == "image/png"


def test_form_submission_and_field_errors(make_user, client, credit_model, german_rows, llm_off):
    user = make_user("ana", "finance")
    client.force_login(user)
    data = {**applicant_of(german_rows[2]), "language": "en", "application_id": "F-1", "report": ""}
    response = client.post("/finance/new/", data)
    assert response.status_code == 302
    job = Assessment.objects.get(application_id="F-1")
    assert response["Location"] == job.get_absolute_url() and job.source == "form"
    bad = {**data, "application_id": "F-2", "age_in_years": "12"}
    response = client.post("/finance/new/", bad)
    assert response.status_code == 200 and not Assessment.objects.filter(application_id="F-2").exists()
    assert "age_in_years" in response.context["form"].errors


def test_api_create_validation_names_fields(make_user, api_client_for, credit_model, german_rows, llm_off):
    api = api_client_for(make_user("ana", "finance"))
    applicant = applicant_of(german_rows[0])
    applicant["credit_amount"] = "a lot"
    response = api.post("/api/v1/finance/assessments/", {"applicant": applicant}, format="json")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid" and "credit_amount" in error["message"]
    response = api.post("/api/v1/finance/assessments/", {"applicant": {"favourite_colour": "blue"}},
                        format="json")
    assert response.status_code == 400 and "favourite_colour" in response.json()["error"]["message"]
    response = api.post("/api/v1/finance/assessments/", {"language": "fr", "report": "x"}, format="json")
    assert response.status_code == 400 and "language" in response.json()["error"]["message"]
    response = api.post("/api/v1/finance/assessments/", "not json", content_type="application/json")
    assert response.status_code == 400
    ok = api.post("/api/v1/finance/assessments/", {"applicant": applicant_of(german_rows[0]),
                                                   "application_id": "API-1"}, format="json")
    assert ok.status_code == 202
    body = ok.json()
    assert body["status"] == "queued" and body["url"].endswith(f"/api/v1/finance/assessments/{body['id']}/")
    listing = api.get("/api/v1/finance/assessments/?q=API&sort=-score").json()
    assert listing["count"] == 1 and listing["results"][0]["application_id"] == "API-1"
    assert api.get("/api/v1/finance/assessments/?risk_level=7").status_code == 400


def test_api_batch_upload_errors(make_user, api_client_for, credit_model, german_rows, settings,
                                  django_capture_on_commit_callbacks):
    api = api_client_for(make_user("ana", "finance"))
    response = api.post("/api/v1/finance/batches/", {}, format="multipart")
    assert response.status_code == 400 and "file" in response.json()["error"]["message"]
    empty = SimpleUploadedFile("empty.csv", b"", content_type="text/csv")
    response = api.post("/api/v1/finance/batches/", {"file": empty}, format="multipart")
    assert response.status_code == 400 and "empty" in response.json()["error"]["message"]
    settings.UPLOAD_MAX_BYTES = 2048
    big = SimpleUploadedFile("big.csv", b"x" * 4096, content_type="text/csv")
    assert api.post("/api/v1/finance/batches/", {"file": big}, format="multipart").status_code == 413
    settings.UPLOAD_MAX_BYTES = 10 * 1024 * 1024
    data = csv_bytes([applicant_of(r) for r in german_rows[:2]], list(FIELD_NAMES))
    with django_capture_on_commit_callbacks(execute=False):
        response = api.post("/api/v1/finance/batches/",
                            {"file": SimpleUploadedFile("two.csv", data, content_type="text/csv")},
                            format="multipart")
    assert response.status_code == 202, response.content
    body = response.json()
    assert body["results_url"].endswith(f"/api/v1/finance/batches/{body['id']}/results.csv")
    assert set(body["progress"]) >= {"total", "done", "failed"}
    assert Batch.objects.get(pk=body["id"]).app == "finance"


def test_model_pages_train_and_activate_are_admin_only(make_user, client, credit_model):
    analyst = make_user("ana", "finance")
    client.force_login(analyst)
    upload = SimpleUploadedFile("t.csv", b"a,b\n1,2\n", content_type="text/csv")
    assert client.post("/finance/models/", {"file": upload}).status_code == 403
    assert client.post(f"/finance/models/{credit_model.version}/activate/").status_code == 403


def test_model_service_down_sends_the_job_back_to_the_queue(make_user, credit_model, german_rows, settings):
    from core import model_client
    from core.jobs import TransientJobError
    from core.services import prompt_templates_seed

    prompt_templates_seed()
    settings.LLM_ENABLED = True
    settings.MODEL_SERVICE_URL = "http://127.0.0.1:9/v1"  # nothing listens on the discard port
    settings.MODEL_SERVICE_RETRIES = 0
    model_client._clients.clear()
    try:
        user = make_user("ana", "finance")
        job = services.assessment_create(owner=user, applicant=applicant_of(german_rows[0]))
        with pytest.raises(TransientJobError):
            job_run_inline(model=Assessment, job_id=str(job.pk), handler=services.assessment_process)
        job.refresh_from_db()
        # attempt 1 handed the job on to the language-model pool, attempt 2 found the service down
        assert job.status == JobStatus.QUEUED and job.attempts == 2 and job.stage is not None
        assert job.error_code == "model_service_unavailable" and job.result is None
    finally:
        model_client._clients.clear()


@pytest.mark.parametrize("lang", ["en", "zh-hans"])
def test_results_and_model_pages_show_how_informative_the_judgment_measured(make_user, client, credit_model,
                                                                            german_rows, llm_off, lang):
    user = make_user("ana", "finance")
    _scored(user, german_rows[1], application_id="R-1")
    client.force_login(user)
    client.cookies["django_language"] = lang
    pages = ["/finance/assessments/", f"/finance/models/{credit_model.version}/"]
    for url in pages:  # not measured yet: not informative, weight 0
        html = client.get(url, HTTP_ACCEPT_LANGUAGE=lang).content.decode()
        assert 'id="judgment-information"' in html and 'data-informative="yes"' not in html
        expected = "尚未在验证数据上" if lang == "zh-hans" else "has not been measured on validation data"
        assert expected in html
    measured = {"model": "SmolLM2-135M-Instruct", "prompt": "finance.risk_judgment v1", "language": "en",
                "n": 80, "n_bad": 40, "n_good": 40, "auc": 0.512, "auc_se": 0.065, "margin": 0.127,
                "informative": False, "why": "near_chance", "weight": 0.0, "review_rate": 0.0,
                "disagreement_rate": 0.35, "levels": [1, 2]}
    credit_model.judgment_calibration = {"en": measured}
    credit_model.save(update_fields=["judgment_calibration"])
    for url in pages:
        html = client.get(url, HTTP_ACCEPT_LANGUAGE=lang).content.decode()
        assert "0.512" in html and "SmolLM2-135M-Instruct" in html and "35.0%" in html
        expected = "与随机水平 0.5 的差距不超过 0.127" if lang == "zh-hans" else "within 0.127 of chance"
        assert expected in html
    html = client.get(pages[0], HTTP_ACCEPT_LANGUAGE=lang).content.decode()
    assert 'id="judgment-review-rate"' in html
    expected = "在所示的 1 份已完成评估中" if lang == "zh-hans" else "Of the 1 finished assessments shown"
    assert expected in html
