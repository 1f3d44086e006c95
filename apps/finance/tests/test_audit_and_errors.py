"""One audit event per action, whichever way it comes (REST API or HTML form), written by the service that
does it; reads written once per request by the shared helper. Refusals in the one error shape (API) or on
the form with their status (HTML), never a 500. The htmx status partial."""
from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from apps.finance import services
from apps.finance.fields import FIELD_NAMES
from apps.finance.models import Assessment, CreditModelVersion, ModelTraining
from apps.finance.tests.conftest import applicant_of, csv_bytes
from core.models import AuditEvent, Batch, JobStatus
from core.services import job_run_inline

pytestmark = pytest.mark.django_db


class AuditDelta:
    """The audit events written inside the ``with`` block."""

    def __enter__(self):
        self.before = AuditEvent.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
        return self

    def __exit__(self, *exc):
        self.events = list(AuditEvent.objects.filter(pk__gt=self.before).order_by("pk"))

    @property
    def actions(self) -> list[tuple[str, str]]:
        return [(e.action, e.object_id) for e in self.events]


def _finished(user, row) -> Assessment:
    job = services.assessment_create(owner=user, applicant=applicant_of(row))
    job_run_inline(model=Assessment, job_id=str(job.pk), handler=services.assessment_process)
    job.refresh_from_db()
    return job


def _csv(german_rows) -> bytes:
    return csv_bytes([applicant_of(r) for r in german_rows[:2]], list(FIELD_NAMES))


# --- writes: one event per action, API and HTML alike --------------------------------------------------
def test_submit_is_audited_once_through_the_api_and_the_form(make_user, api_client_for, client, credit_model,
                                                            german_rows, llm_off):
    user = make_user("ana", "finance")
    with AuditDelta() as api_delta:
        response = api_client_for(user).post("/api/v1/finance/assessments/",
                                             {"applicant": applicant_of(german_rows[0])}, format="json")
    assert response.status_code == 202
    assert api_delta.actions == [("submit", response.json()["id"])]
    assert api_delta.events[0].detail["source"] == "api" and api_delta.events[0].ip_address

    client.force_login(user)
    with AuditDelta() as form_delta:
        response = client.post("/finance/new/", {**applicant_of(german_rows[1]), "language": "en",
                                                 "application_id": "F-1", "report": ""})
    assert response.status_code == 302
    job = Assessment.objects.get(application_id="F-1")
    assert form_delta.actions == [("submit", str(job.pk))] and form_delta.events[0].detail["source"] == "form"


def test_batch_upload_is_audited_once_through_the_api_and_the_form(make_user, api_client_for, client,
                                                                  credit_model, german_rows):
    user = make_user("ana", "finance")
    with AuditDelta() as api_delta:
        response = api_client_for(user).post(
            "/api/v1/finance/batches/", {"file": SimpleUploadedFile("a.csv", _csv(german_rows), "text/csv")},
            format="multipart")
    assert response.status_code == 202
    assert api_delta.actions == [("submit", response.json()["id"])]

    client.force_login(user)
    with AuditDelta() as form_delta:
        response = client.post("/finance/batches/", {"file": SimpleUploadedFile("b.csv", _csv(german_rows)),
                                                     "language": "en"})
    assert response.status_code == 302
    batch = Batch.objects.get(original_filename="b.csv")
    assert form_delta.actions == [("submit", str(batch.pk))]


def test_review_is_audited_once_through_the_api_and_the_form(make_user, api_client_for, client, credit_model,
                                                            german_rows, llm_off):
    user = make_user("ana", "finance")
    job = _finished(user, german_rows[2])
    with AuditDelta() as api_delta:
        response = api_client_for(user).post(f"/api/v1/finance/assessments/{job.pk}/review/",
                                             {"decision": "approve"}, format="json")
    assert response.status_code == 201
    assert api_delta.actions == [("review", str(job.pk))]

    client.force_login(user)
    other = 3 if job.risk_level != 3 else 1
    with AuditDelta() as form_delta:
        response = client.post(f"/finance/assessments/{job.pk}/review/",
                               {"decision": "override", "final_risk_level": other, "comment": "checked"})
    assert response.status_code == 302
    assert form_delta.actions == [("review", str(job.pk))]
    assert form_delta.events[0].detail["final_risk_level"] == other


def test_model_training_and_activation_are_audited_once(make_user, client, credit_model, german_rows):
    admin = make_user("boss", "admin")
    client.force_login(admin)
    data = csv_bytes(german_rows[:240], [*FIELD_NAMES, "creditability"])
    with AuditDelta() as submit:
        response = client.post("/finance/models/", {"file": SimpleUploadedFile("h.csv", data), "note": "web"})
    assert response.status_code == 302
    training = ModelTraining.objects.get()
    assert submit.actions == [("submit", str(training.pk))]

    with AuditDelta() as train:
        job_run_inline(model=ModelTraining, job_id=str(training.pk), handler=services.model_training_process)
    training.refresh_from_db()
    version = training.credit_model
    assert train.actions == [("train", str(version.pk))]
    assert train.events[0].detail["training_job"] == str(training.pk)

    with AuditDelta() as activate:
        assert client.post(f"/finance/models/{version.version}/activate/").status_code == 302
    assert activate.actions == [("activate", str(version.pk))]

    with AuditDelta() as sync:  # the management command's path: train, then activate
        again = services.credit_model_train(data=data, filename="h.csv", activate=True)
    assert sync.actions == [("train", str(again.pk)), ("activate", str(again.pk))]


def test_refused_actions_write_no_audit_event(make_user, api_client_for, credit_model, german_rows):
    api = api_client_for(make_user("ana", "finance"))
    with AuditDelta() as delta:
        assert api.post("/api/v1/finance/assessments/", {"applicant": {"credit_amount": "lots"}},
                        format="json").status_code == 400
        assert api.post("/api/v1/finance/assessments/", {"language": "fr", "report": "x"},
                        format="json").status_code == 400
    assert delta.events == []


# --- reads: once per request, one helper for the pages and the API -------------------------------------
def test_reads_are_audited_once_per_request(make_user, api_client_for, client, credit_model, german_rows,
                                            llm_off):
    user = make_user("ana", "finance")
    job = _finished(user, german_rows[0])
    api = api_client_for(user)
    client.force_login(user)
    with AuditDelta() as api_view:
        assert api.get(f"/api/v1/finance/assessments/{job.pk}/").status_code == 200
    with AuditDelta() as page_view:
        assert client.get(job.get_absolute_url()).status_code == 200
    assert api_view.actions == page_view.actions == [("view", str(job.pk))]

    batch = services.batch_create(owner=user, upload=SimpleUploadedFile("c.csv", _csv(german_rows)))
    with AuditDelta() as api_export:
        assert api.get(f"/api/v1/finance/batches/{batch.pk}/results.csv").status_code == 200
    with AuditDelta() as page_export:
        assert client.get(f"/finance/batches/{batch.pk}/results.csv").status_code == 200
    assert api_export.actions == page_export.actions == [("export", str(batch.pk))]
    with AuditDelta() as pdf:
        assert client.get(f"/finance/assessments/{job.pk}/report.pdf").status_code == 200
    assert pdf.actions == [("export", str(job.pk))]


def test_read_audit_writes_once_per_request_and_only_reads(make_user, rf, credit_model, german_rows, llm_off):
    user = make_user("ana", "finance")
    job = _finished(user, german_rows[0])
    request = rf.get("/")
    request.user = user
    assert services.read_audit(request, action="view", obj=job) is not None
    assert services.read_audit(request, action="view", obj=job) is None
    assert AuditEvent.objects.filter(action="view", object_id=str(job.pk)).count() == 1
    with pytest.raises(ValueError):
        services.read_audit(request, action="review", obj=job)


# --- refusals ------------------------------------------------------------------------------------------
def test_api_refusals_have_the_one_error_shape(make_user, api_client_for, german_rows, llm_off):
    user = make_user("ana", "finance")
    api = api_client_for(user)
    response = api.post("/api/v1/finance/assessments/", {"applicant": applicant_of(german_rows[0])},
                        format="json")
    assert response.status_code == 400  # no active scorecard
    error = response.json()["error"]
    assert set(error) == {"status", "code", "message", "details"}
    assert error["status"] == 400 and error["code"] == "invalid"
    assert "no scorecard version" in error["message"]
    assert error["details"] == {"field": "model"}

    response = api.get("/api/v1/finance/assessments/?risk_level=7")
    assert response.status_code == 400 and response.json()["error"] == {
        "status": 400, "code": "invalid", "message": "risk_level: must be 1, 2 or 3",
        "details": {"field": "risk_level"}}


def test_reviewing_an_unfinished_assessment_is_a_conflict(make_user, api_client_for, client, credit_model,
                                                         german_rows):
    user = make_user("ana", "finance")
    job = services.assessment_create(owner=user, applicant=applicant_of(german_rows[0]))
    response = api_client_for(user).post(f"/api/v1/finance/assessments/{job.pk}/review/",
                                         {"decision": "approve"}, format="json")
    assert response.status_code == 409
    error = response.json()["error"]
    assert error["code"] == "conflict" and "only finished assessments" in error["message"]
    assert error["details"] == {"field": "status"}
    client.force_login(user)
    response = client.post(f"/finance/assessments/{job.pk}/review/", {"decision": "approve"}, follow=True)
    assert response.status_code == 200 and "only finished assessments" in response.content.decode()
    assert Assessment.objects.get(pk=job.pk).status == JobStatus.QUEUED


def test_html_upload_refusals_show_on_the_form_with_their_status(make_user, client, german_rows, settings):
    user = make_user("ana", "finance")
    client.force_login(user)
    response = client.post("/finance/batches/", {"file": SimpleUploadedFile("a.csv", _csv(german_rows)),
                                                 "language": "en"})
    assert response.status_code == 400  # no active scorecard: on top of the form
    assert "no scorecard version is active" in " ".join(response.context["form"].non_field_errors())
    settings.UPLOAD_MAX_BYTES = 64
    response = client.post("/finance/batches/", {"file": SimpleUploadedFile("big.csv", b"x" * 200),
                                                 "language": "en"})
    assert response.status_code == 413 and "upload limit" in " ".join(response.context["form"].errors["file"])
    admin = make_user("boss", "admin")
    client.force_login(admin)
    response = client.post("/finance/models/", {"file": SimpleUploadedFile("big.csv", b"x" * 200)})
    assert response.status_code == 413 and "file" in response.context["form"].errors
    assert not ModelTraining.objects.exists() and not CreditModelVersion.objects.exists()


# --- htmx status partial -------------------------------------------------------------------------------
def test_status_partial_asks_for_a_refresh_once_the_job_is_final(make_user, client, credit_model, german_rows,
                                                                 llm_off):
    user = make_user("ana", "finance")
    client.force_login(user)
    queued = services.assessment_create(owner=user, applicant=applicant_of(german_rows[0]))
    url = f"/finance/assessments/{queued.pk}/status/"
    response = client.get(url, HTTP_HX_REQUEST="true")
    assert response.status_code == 200 and "HX-Refresh" not in response
    assert 'id="assessment-status"' in response.content.decode()
    _finished(user, german_rows[1])
    job_run_inline(model=Assessment, job_id=str(queued.pk), handler=services.assessment_process)
    response = client.get(url, HTTP_HX_REQUEST="true")
    assert response["HX-Refresh"] == "true"
    assert "HX-Refresh" not in client.get(url)  # not an htmx request
