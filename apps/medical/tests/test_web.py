"""The medical app's Django side in one process: REST and page uploads, per-file errors, hostile ZIPs,
size limits, the report workflow (edit, sign, addenda), the outputs, STOW-RS and role checks.

The worker's work (ingest task, study job) runs here by calling the same service functions the Celery
tasks call, with ``LLM_ENABLED=false``; ``test_live.py`` runs the whole chain with the real worker
and model service.
"""
from __future__ import annotations

import csv
import io
import json

import pydicom
import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from fhir.resources.R4B.diagnosticreport import DiagnosticReport

from apps.medical.deidentify import find_phi, phi_strings
from apps.medical.models import Instance, Report, Study, StudyIdentity, UploadIdentity
from apps.medical.tests.web_helpers import (
    PLANTED,
    file_bytes,
    multipart_related,
    planted_ct,
    process_upload,
    truncated_bytes,
    undecodable_bytes,
    zip_bytes,
)
from core.models import AuditEvent, Batch

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_llm")]

UPLOAD = "/api/v1/medical/studies/"


def _upload(api, files: dict[str, bytes], **data):
    payload = {"files": [SimpleUploadedFile(n, b) for n, b in files.items()], **data}
    return api.post(UPLOAD, payload, format="multipart")


def _done(api, files: dict[str, bytes], **data) -> tuple[dict, list[Study]]:
    response = _upload(api, files, **data)
    assert response.status_code == 202, response.content
    body = response.json()
    studies = process_upload(body["id"])
    return api.get(body["url"]).json(), studies


def test_upload_answers_202_and_every_file_ends_ok_or_with_its_own_error(api):
    response = _upload(api, {"ct.dcm": planted_ct()[0], "notes.txt": b"not a dicom file at all " * 20,
                             "cut.dcm": truncated_bytes(), "j2k.dcm": undecodable_bytes(),
                             "plan.dcm": file_bytes("rtplan.dcm")}, indication="cough for 3 weeks")
    assert response.status_code == 202
    body = response.json()
    assert body["id"] and body["url"].endswith(f"/api/v1/medical/uploads/{body['id']}/")
    assert body["results_url"].endswith(f"/api/v1/medical/uploads/{body['id']}/results.csv")
    assert body["status"] == "queued"

    (study,) = process_upload(body["id"])
    upload = api.get(body["url"]).json()
    # the API names files by pseudonym; the original names are in the upload's identity row only
    originals = UploadIdentity.objects.get(batch_id=body["id"]).files
    assert all(f["name"].startswith("file-") for f in upload["files"])
    assert not any(n in json.dumps(upload) for n in ("ct.dcm", "notes.txt", "cut.dcm", "j2k.dcm", "plan.dcm"))
    files = {originals[f["name"]]: f for f in upload["files"]}
    pseudonym = {v: k for k, v in originals.items()}
    assert files["ct.dcm"]["status"] == "ok" and files["ct.dcm"]["study"] == str(study.pk)
    assert files["notes.txt"]["error"]["code"] == "not_dicom"
    assert files["cut.dcm"]["error"]["code"] == "truncated"
    assert files["j2k.dcm"]["error"]["code"] == "undecodable"
    assert "JPEG 2000" in files["j2k.dcm"]["error"]["message"]
    assert files["plan.dcm"]["status"] == "skipped" and files["plan.dcm"]["error"]["code"] == "no_pixel_data"
    assert upload["progress"]["total"] == 1 and upload["progress"]["done"] == 1
    assert upload["status"] == "done"
    assert any(e.startswith(f"{pseudonym['cut.dcm']}: truncated") for e in upload["errors"])

    detail = api.get(study.api_url()).json()
    assert detail["status"] in ("succeeded", "needs_review")
    assert set(detail["report"]["sections"]) == {"technique", "comparison", "findings", "impression",
                                                 "recommendations", "limitations"}
    assert detail["report"]["impression"] and detail["report"]["status"] == "draft"
    assert detail["result"]["llm"]["enabled"] is False
    assert detail["series"][0]["features"]["units"] == "HU"
    assert set(detail["downloads"]) == {"pdf", "sr", "fhir"}
    assert detail["identity"] is None  # only on request

    csv_response = api.get(body["results_url"])
    assert csv_response.status_code == 200 and csv_response["Content-Type"].startswith("text/csv")
    rows = {originals[r["file_name"]]: r
            for r in csv.DictReader(io.StringIO(csv_response.content.decode("utf-8-sig")))}
    assert set(rows) == {"ct.dcm", "notes.txt", "cut.dcm", "j2k.dcm", "plan.dcm"}
    assert rows["ct.dcm"]["study_id"] == str(study.pk) and rows["ct.dcm"]["report_status"] == "draft"
    assert rows["cut.dcm"]["error_code"] == "truncated" and rows["cut.dcm"]["status"] == "error"


def test_originals_stay_in_the_identity_table_and_the_stored_copy_is_deidentified(
        api, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        upload, (study,) = _done(api, {"a.dcm": planted_ct()[0]})
    # run the ingest's own after-commit step (deleting the raw upload), not the queue sends
    for callback in callbacks:
        if "_upload_read" in callback.__qualname__:
            callback()
    identity = StudyIdentity.objects.get(study=study)
    assert identity.patient_name == PLANTED["name"] and identity.patient_id == PLANTED["id"]
    assert identity.patient_birth_date == PLANTED["birth"]
    assert identity.accession_number == PLANTED["accession"]
    inst = Instance.objects.get(study=study)
    with default_storage.open(inst.file.name, "rb") as fh:
        ds = pydicom.dcmread(fh)
    assert ds.PatientIdentityRemoved == "YES"
    assert ds.DeidentificationMethodCodeSequence[0].CodeValue == "113100"
    assert str(ds.StudyInstanceUID) == study.study_instance_uid != identity.original_study_instance_uid
    planted = [PLANTED["name"], "Zhangsan", PLANTED["id"], PLANTED["birth"], PLANTED["accession"],
               PLANTED["other_id"], PLANTED["institution"], "Heartwell", identity.original_study_instance_uid]
    assert find_phi(ds, planted) == []
    # nothing but the identity row holds them: the study row, its result and the upload's API answer
    api_text = json.dumps(api.get(study.api_url()).json()) + json.dumps(upload)
    for value in planted:
        assert value.lower() not in api_text.lower()
    # the raw upload (with the originals) is deleted once ingested
    batch = Batch.objects.get(pk=upload["id"])
    assert all(not default_storage.exists(f["path"]) for f in batch.options["files"])
    # ... and the identity is there on request, audited
    with_identity = api.get(study.api_url() + "?include=identity").json()
    assert with_identity["identity"]["patient_id"] == PLANTED["id"]
    assert AuditEvent.objects.filter(action="view", object_id=str(study.pk), detail__identity=True).exists()


def test_zip_with_folders_and_several_studies_makes_one_job_per_study(api):
    one = planted_ct(n=2)
    other = planted_ct(n=1)
    archive = zip_bytes({"patientA/series1/1.dcm": one[0], "patientA/series1/2.dcm": one[1],
                         "patientB/x.dcm": other[0], "patientB/readme.txt": b"hello" * 50,
                         "__MACOSX/._x.dcm": b"junk"})
    upload, studies = _done(api, {"exam.zip": archive})
    assert len(studies) == 2 and sorted(s.instance_count for s in studies) == [1, 2]
    # ZIP paths (here: the patient's name) are pseudonyms outside the upload's identity row
    assert "patient" not in json.dumps(upload["files"])
    originals = UploadIdentity.objects.get(batch_id=upload["id"]).files
    names = {originals[f["name"]]: f["status"] for f in upload["files"]}
    assert names == {"exam.zip/patientA/series1/1.dcm": "ok", "exam.zip/patientA/series1/2.dcm": "ok",
                     "exam.zip/patientB/x.dcm": "ok", "exam.zip/patientB/readme.txt": "error"}
    assert len(upload["studies"]) == 2


@pytest.mark.parametrize("member", ["../../etc/evil.dcm", "/abs/evil.dcm", "ok/../../evil.dcm"])
def test_zip_climbing_out_is_refused_with_a_clear_message(api, member):
    response = _upload(api, {"evil.zip": zip_bytes({member: planted_ct()[0]})})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "unsafe_path" and "evil.zip" in error["message"]
    assert not Batch.objects.filter(app="medical").exists()


def test_zip_bomb_is_refused(api):
    response = _upload(api, {"bomb.zip": zip_bytes({"zeros.dcm": b"\0" * (8 * 1024 * 1024)})})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "zip_bomb" and "ratio" in error["message"] and "bomb.zip" in error["message"]


def test_over_limit_and_empty_uploads_are_refused(api, settings):
    settings.UPLOAD_MAX_BYTES = 20_000
    response = _upload(api, {"ct.dcm": file_bytes("CT_small.dcm")})
    assert response.status_code == 413
    assert "over the upload limit" in response.json()["error"]["message"]
    settings.UPLOAD_MAX_BYTES = 200 * 1024 * 1024
    response = api.post(UPLOAD, {"indication": "x"}, format="multipart")
    assert response.status_code == 400 and "files" in response.json()["error"]["message"]
    response = _upload(api, {"empty.dcm": b""})
    assert response.status_code == 400 and "empty" in response.json()["error"]["message"]


def test_multiframe_and_compressed_files_are_read_frame_by_frame(api):
    upload, studies = _done(api, {"mr.dcm": file_bytes("emri_small_jpeg_2k_lossless.dcm"),
                                  "us.dcm": file_bytes("US1_J2KR.dcm")})
    frames = {s.modality: s.frame_count for s in studies}
    assert frames == {"MR": 10, "US": 1}
    mr = next(s for s in studies if s.modality == "MR")
    assert mr.status in ("succeeded", "needs_review")
    assert mr.key_images.count() >= 2


def _sign_ready(api) -> Study:
    _upload_body, (study,) = _done(api, {"ct.dcm": planted_ct()[0]})
    return study


def test_edit_sign_then_never_edited_again_and_addenda(api, radiologist):
    study = _sign_ready(api)
    url = study.api_url()
    draft_sr = pydicom.dcmread(io.BytesIO(api.get(url + "report-sr.dcm").content))
    assert (draft_sr.CompletionFlag, draft_sr.VerificationFlag) == ("PARTIAL", "UNVERIFIED")

    edited = {"impression": "No acute abnormality on this single slice.",
              "findings": [{"location": "lungs", "description": "Clear on the imaged slice.",
                            "evidence": "lung window review"}]}
    response = api.patch(url + "report/", edited, format="json")
    assert response.status_code == 200, response.content
    report = response.json()["report"]
    assert report["impression"] == edited["impression"] and report["edits"][0]["by"] == "rad"
    response = api.patch(url + "report/", {"findings": "not a list"}, format="json")
    assert response.status_code == 400

    response = api.post(url + "sign/", {"name": "Jane Smith"}, format="json")
    assert response.status_code == 200
    signed = response.json()["report"]
    assert signed["status"] == "final" and signed["signed_by"] == "Jane Smith" and signed["signed_at"]
    assert signed["notice"] is None

    assert api.patch(url + "report/", {"impression": "changed"}, format="json").status_code == 409
    assert api.post(url + "sign/", {"name": "Jane Smith"}, format="json").status_code == 409
    report_row = Report.objects.get(study=study)
    report_row.sections = {**report_row.sections, "impression": "sneaky"}
    with pytest.raises(PermissionError):
        report_row.save()

    response = api.post(url + "addenda/", {"text": "Correlate with the prior film when available."},
                        format="json")
    assert response.status_code == 201
    assert response.json()["report"]["addenda"][0]["text"].startswith("Correlate")
    assert response.json()["report"]["impression"] == edited["impression"]
    assert AuditEvent.objects.filter(action="sign", object_id=str(report_row.pk)).exists()

    sr = pydicom.dcmread(io.BytesIO(api.get(url + "report-sr.dcm").content))
    assert (sr.CompletionFlag, sr.VerificationFlag) == ("COMPLETE", "VERIFIED")
    identity = StudyIdentity.objects.get(study=study)
    assert sr.StudyInstanceUID == identity.original_study_instance_uid  # for the hospital's PACS
    assert sr.PatientID == PLANTED["id"]
    deid_sr = pydicom.dcmread(io.BytesIO(api.get(url + "report-sr.dcm?deidentified=1").content))
    assert deid_sr.StudyInstanceUID == study.study_instance_uid
    assert PLANTED["id"] not in str(deid_sr.PatientID)

    fhir_response = api.get(url + "report-fhir.json")
    assert fhir_response["Content-Type"] == "application/fhir+json"
    fhir = fhir_response.json()
    DiagnosticReport.model_validate(fhir)
    assert fhir["status"] == "final" and fhir["conclusion"] == edited["impression"]
    pdf = api.get(url + "report.pdf")
    assert pdf["Content-Type"] == "application/pdf" and pdf.content.startswith(b"%PDF")


def test_pages_worklist_upload_viewer_edit_sign(radiologist, client: Client):
    client.force_login(radiologist)
    page = client.get("/medical/")
    assert page.status_code == 200 and b"Radiology worklist" in page.content
    response = client.post("/medical/upload/", {"files": [SimpleUploadedFile("ct.dcm", planted_ct()[0])],
                                                "indication": "fever", "language": "en"})
    assert response.status_code == 302
    batch = Batch.objects.get(app="medical")
    assert response["Location"] == f"/medical/uploads/{batch.pk}/"
    assert b"Reading and de-identifying" in client.get(response["Location"]).content
    (study,) = process_upload(batch.pk)
    live = client.get(f"/medical/uploads/{batch.pk}/live/", HTTP_HX_REQUEST="true")
    assert live["HX-Trigger"] == "batch-finished"
    assert b"file-001" in live.content and b"ct.dcm" not in live.content

    viewer = client.get(study.get_absolute_url())
    html = viewer.content.decode()
    assert viewer.status_code == 200 and PLANTED["id"] in html  # identity shown to the medical role
    assert 'id="viewer"' in html and "lung" in html and 'id="sign-form"' in html
    inst = Instance.objects.get(study=study)
    png = client.get(f"/medical/instances/{inst.pk}/image.png?frame=0&preset=lung")
    assert png.status_code == 200 and png.content.startswith(b"\x89PNG")
    assert client.get(f"/medical/instances/{inst.pk}/image.png?frame=5").status_code == 400
    key = study.key_images.first()
    assert client.get(f"/medical/key-images/{key.pk}.png").content.startswith(b"\x89PNG")

    edit = client.post(f"/medical/studies/{study.pk}/edit/", {
        "technique": "CT chest", "findings": "lungs | clear | lung window", "impression": "Normal.",
        "recommendations": "", "limitations": "", "comparison": ""})
    assert edit.status_code == 302
    assert Report.objects.get(study=study).sections["findings"][0]["location"] == "lungs"
    assert client.post(f"/medical/studies/{study.pk}/sign/", {"name": "Li Na"}).status_code == 302
    assert not Report.objects.get(study=study).is_final  # the confirmation box was not ticked
    client.post(f"/medical/studies/{study.pk}/sign/", {"name": "Li Na", "confirm": "on"})
    report = Report.objects.get(study=study)
    assert report.is_final and report.signer_name == "Li Na"
    assert client.get(f"/medical/studies/{study.pk}/edit/").status_code == 302  # final: back to the study
    pdf = client.get(f"/medical/studies/{study.pk}/download/pdf/")
    assert pdf["Content-Type"] == "application/pdf"
    assert b"Signed by Li Na" in client.get(study.get_absolute_url()).content


def test_draft_is_marked_ai_generated_everywhere(api, radiologist, client, settings):
    study = _sign_ready(api)
    # make it an AI draft (as the live test does for real)
    Report.objects.filter(study=study).update(ai_generated=True)
    client.force_login(radiologist)
    assert "AI-generated draft, not verified" in client.get(study.get_absolute_url()).content.decode()
    assert "AI-generated draft, not verified" in client.get("/medical/?status=all").content.decode()
    detail = api.get(study.api_url()).json()
    assert detail["report"]["notice"] == "AI-generated draft, not verified"
    fhir = api.get(study.api_url() + "report-fhir.json").json()
    assert fhir["status"] == "preliminary" and "not verified" in fhir["code"]["text"]
    sr = pydicom.dcmread(io.BytesIO(api.get(study.api_url() + "report-sr.dcm").content))
    assert sr.VerificationFlag == "UNVERIFIED" and "AI-generated" in sr.SeriesDescription


def test_stow_rs_stores_and_lists_failures(api):
    good = planted_ct(n=2)
    body, ctype = multipart_related([("application/dicom", good[0]), ("application/dicom", good[1]),
                                     ("application/dicom", b"garbage, not DICOM" * 10)])
    response = api.generic("POST", "/dicomweb/studies", body, content_type=ctype,
                           HTTP_ACCEPT="application/dicom+json")
    assert response.status_code == 202, response.content
    assert response["Content-Type"] == "application/dicom+json"
    answer = json.loads(response.content)
    stored = answer["00081199"]["Value"]
    failed = answer["00081198"]["Value"]
    sops = {pydicom.dcmread(io.BytesIO(b)).SOPInstanceUID for b in good}
    assert {item["00081155"]["Value"][0] for item in stored} == sops
    assert failed[0]["00081197"]["Value"] == [0xC000]
    batch_url = answer["00081190"]["Value"][0]
    assert response["Location"] == batch_url
    batch = Batch.objects.get(app="medical")
    assert batch.options["source"] == "stow-rs"
    (study,) = process_upload(batch.pk)
    assert study.instance_count == 2 and study.source == "stow-rs"

    body, ctype = multipart_related([("application/dicom", good[0])])
    assert api.generic("POST", "/dicomweb/studies", body, content_type=ctype).status_code == 200
    body, ctype = multipart_related([("application/dicom", b"nope" * 100)])
    assert api.generic("POST", "/dicomweb/studies", body, content_type=ctype).status_code == 409
    wrong_study, ctype = multipart_related([("application/dicom", good[0])])
    response = api.generic("POST", "/dicomweb/studies/1.2.3.4", wrong_study, content_type=ctype)
    answer = json.loads(response.content)
    assert answer["00081198"]["Value"][0]["00081197"]["Value"] == [0xA900]
    assert api.generic("POST", "/dicomweb/studies", b"x", content_type="application/json").status_code == 415
    truncated = body[: len(body) // 2]
    response = api.generic("POST", "/dicomweb/studies", truncated, content_type=ctype)
    assert response.status_code == 400 and "closing boundary" in response.json()["error"]["message"]


def test_roles_no_medical_role_gets_403_everywhere(make_user, api_client_for, api, client):
    _body, (study,) = _done(api, {"ct.dcm": planted_ct()[0]})
    outsider = make_user("banker", "finance")
    other_api = api_client_for(outsider)
    assert other_api.get(UPLOAD).status_code == 403
    assert other_api.get(study.api_url()).status_code == 403
    assert _upload(other_api, {"ct.dcm": planted_ct()[0]}).status_code == 403
    assert other_api.get(study.api_url() + "report.pdf").status_code == 403
    assert other_api.post(study.api_url() + "sign/", {"name": "x"}, format="json").status_code == 403
    body, ctype = multipart_related([("application/dicom", planted_ct()[0])])
    assert other_api.generic("POST", "/dicomweb/studies", body, content_type=ctype).status_code == 403
    from rest_framework.test import APIClient

    anonymous = APIClient()
    assert anonymous.generic("POST", "/dicomweb/studies", body, content_type=ctype).status_code == 401
    assert anonymous.get(UPLOAD).status_code == 401
    client.force_login(outsider)
    inst = Instance.objects.get(study=study)
    for path in ("/medical/", "/medical/upload/", study.get_absolute_url(),
                 f"/medical/instances/{inst.pk}/image.png", f"/medical/studies/{study.pk}/download/sr/"):
        assert client.get(path).status_code == 403, path
    client.logout()
    assert client.get("/medical/").status_code == 302  # to the login page


def test_page_upload_refuses_hostile_zip_with_message(radiologist, client):
    client.force_login(radiologist)
    bad = SimpleUploadedFile("bad.zip", zip_bytes({"../x.dcm": b"x"}))
    response = client.post("/medical/upload/", {"files": [bad]})
    assert response.status_code == 400
    assert "climbs out of the archive" in response.content.decode()


def test_prompt_is_built_from_deidentified_features_only(api, settings):
    """The prompt the study job would send (rendered here) holds none of the planted identifiers."""
    from apps.medical.prompting import draft_variables
    from core.prompts import render_messages
    from core.selectors import prompt_template_get

    indication = f"Patient {PLANTED['name'].replace('^', ' ')} born 1958-03-17, id {PLANTED['id']}"
    _body, (study,) = _done(api, {"ct.dcm": planted_ct()[0]}, indication=indication)
    summary = study.result["summary"]
    variables = draft_variables(summary, study.indication, "en",
                                phi=phi_strings(StudyIdentity.objects.get(study=study).identifiers))
    template = prompt_template_get(name="medical.radiology_draft_ct", language="en")
    messages = render_messages(template.body, variables)
    text = json.dumps(messages)
    for value in (PLANTED["name"], "Zhangsan", PLANTED["id"], PLANTED["birth"], "1958-03-17",
                  PLANTED["accession"]):
        assert value.lower() not in text.lower()
    assert "CHEST" in text and "HU" in text


def test_demo_seed_queues_one_study(radiologist):
    from apps.medical.demo import demo_seed

    out = io.StringIO()
    demo_seed(owner=radiologist, stdout=out)
    batch = Batch.objects.get(app="medical")
    (study,) = process_upload(batch.pk)
    assert study.source == "demo" and study.modality == "CT"
    demo_seed(owner=radiologist, stdout=out)
    assert Batch.objects.filter(app="medical").count() == 1 and "exist already" in out.getvalue()


def test_chinese_ui_and_chinese_draft(radiologist, client, api):
    client.force_login(radiologist)
    client.cookies["django_language"] = "zh-hans"
    page = client.get("/medical/", HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    assert "放射科工作列表" in page and "上传 DICOM" in page
    _body, (study,) = _done(api, {"ct.dcm": planted_ct()[0]}, language="zh-hans")
    assert study.language == "zh-hans" and "无 AI 草稿" in study.report.sections["impression"]
    viewer = client.get(study.get_absolute_url(), HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    assert "签署为终稿" in viewer and "去标识化版本" in viewer
    assert client.get(f"/medical/studies/{study.pk}/download/pdf/").content.startswith(b"%PDF")

