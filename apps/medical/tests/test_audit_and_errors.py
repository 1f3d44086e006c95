"""One audit event per action whichever way it came (API or page), and refusals answered with their own
status (never a 500): upload limits by code, a report without the draft's shape on a page."""
from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from apps.medical import services
from apps.medical.models import Report, Study
from apps.medical.tests.web_helpers import file_bytes, multipart_related, planted_ct, process_upload
from core.models import AuditEvent, Batch

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_llm")]

UPLOAD = "/api/v1/medical/studies/"


def _upload(api, files: dict[str, bytes]):
    payload = {"files": [SimpleUploadedFile(n, b) for n, b in files.items()]}
    return api.post(UPLOAD, payload, format="multipart")


def _sign_ready(api) -> Study:
    response = _upload(api, {"ct.dcm": planted_ct()[0]})
    assert response.status_code == 202, response.content
    (study,) = process_upload(response.json()["id"])
    return study


def _events(action: str, obj) -> int:
    return AuditEvent.objects.filter(action=action, object_id=str(obj.pk)).count()


def test_each_action_writes_exactly_one_audit_event_through_the_api_and_the_pages(api, radiologist, client):
    client.force_login(radiologist)
    # upload: one "submit" for the batch, through the API ...
    response = _upload(api, {"ct.dcm": planted_ct()[0]})
    api_batch = Batch.objects.get(pk=response.json()["id"])
    assert _events("submit", api_batch) == 1
    (api_study,) = process_upload(api_batch.pk)
    # ... and through the page
    client.post("/medical/upload/", {"files": [SimpleUploadedFile("ct.dcm", planted_ct()[0])],
                                     "language": "en"})
    page_batch = Batch.objects.exclude(pk=api_batch.pk).get(app="medical")
    assert _events("submit", page_batch) == 1
    (page_study,) = process_upload(page_batch.pk)
    assert AuditEvent.objects.filter(action="submit").count() == 2

    # edit, sign, addendum through the API: one event each
    url = api_study.api_url()
    report = Report.objects.get(study=api_study)
    response = api.patch(url + "report/", {"impression": "Edited through the API."}, format="json")
    assert response.status_code == 200
    assert _events("edit", report) == 1
    assert api.post(url + "sign/", {"name": "Jane Smith"}, format="json").status_code == 200
    assert _events("sign", report) == 1
    assert api.post(url + "addenda/", {"text": "Later note."}, format="json").status_code == 201
    assert AuditEvent.objects.filter(action="edit", object_type="medical.addendum").count() == 1
    # reads: one event per request
    api.get(url)
    assert _events("view", api_study) == 1
    api.get(url + "report.pdf")
    assert _events("export", api_study) == 1

    # the same through the pages
    base = f"/medical/studies/{page_study.pk}/"
    report = Report.objects.get(study=page_study)
    response = client.post(base + "edit/", {"impression": "Edited on the page.", "findings": ""})
    assert response.status_code == 302
    assert _events("edit", report) == 1
    assert client.post(base + "sign/", {"name": "Li Na", "confirm": "on"}).status_code == 302
    assert _events("sign", report) == 1
    assert client.post(base + "addenda/", {"text": "Page note."}).status_code == 302
    assert AuditEvent.objects.filter(action="edit", object_type="medical.addendum").count() == 2
    client.get(page_study.get_absolute_url())
    assert _events("view", page_study) == 1
    client.get(base + "download/pdf/")
    assert _events("export", page_study) == 1
    # an edit that changes nothing writes (and audits) nothing
    assert AuditEvent.objects.filter(action="edit").count() == 4


def test_a_report_error_on_a_page_answers_400_with_its_message_not_500(api, radiologist, client, monkeypatch):
    study = _sign_ready(api)
    client.force_login(radiologist)
    base = f"/medical/studies/{study.pk}/"

    # editing: the service refuses an invalid section -> the form shows it, 400
    def refuse(sections):
        raise services.ReportError("findings[0].evidence", "expected a string")

    monkeypatch.setattr(services.reports, "normalize_report", refuse)
    response = client.post(base + "edit/", {"impression": "Normal.", "findings": "lungs | clear | window"})
    assert response.status_code == 400
    page = response.content.decode()
    assert "findings[0].evidence" in page and "expected a string" in page
    monkeypatch.undo()

    # signing a report whose stored sections lost their shape -> the error page with 400, nothing signed
    Report.objects.filter(study=study).update(sections={"impression": "", "findings": []})
    response = client.post(base + "sign/", {"name": "Li Na", "confirm": "on"})
    assert response.status_code == 400
    assert "a report needs an impression or at least one finding" in response.content.decode()
    assert not Report.objects.get(study=study).is_final
    # the API answers the same refusal in its one error shape
    response = api.post(study.api_url() + "sign/", {"name": "Jane Smith"}, format="json")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid" and "impression" in error["message"]
    assert not AuditEvent.objects.filter(action="sign").exists()


def test_upload_refusals_take_their_status_from_their_code(radiologist, client, api, settings):
    assert services.UploadRefused("x", code="upload_too_large").status == 413
    assert services.UploadRefused("x", code="zip_bomb").status == 400
    assert services.UploadRefused("x", code="upload_missing").status == 400
    client.force_login(radiologist)
    settings.UPLOAD_MAX_BYTES = 20_000
    too_big = SimpleUploadedFile("ct.dcm", file_bytes("CT_small.dcm"))
    response = client.post("/medical/upload/", {"files": [too_big]})
    assert response.status_code == 413 and "over the upload limit" in response.content.decode()
    response = client.post("/medical/upload/", {"indication": "x"})
    assert response.status_code == 400 and "no file" in response.content.decode()
    # STOW-RS: a body over the limit is 413 in the platform's one error shape
    body, ctype = multipart_related([("application/dicom", file_bytes("CT_small.dcm"))] * 30)
    settings.UPLOAD_MAX_BYTES = 1000
    response = api.generic("POST", "/dicomweb/studies", body, content_type=ctype)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "upload_too_large"
    assert not Batch.objects.filter(app="medical").exists()
