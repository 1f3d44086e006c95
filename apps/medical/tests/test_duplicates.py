"""Issue 14: a study uploaded again is processed again and linked to its first upload; DICOM dates on the
pages are in the locale's date format.

Real DICOM files (pydicom's bundled CT_small.dcm and MR_small.dcm, unmodified) go through the same
REST upload and ingest path as the worker's (``process_upload``), with the language model off.
"""
from __future__ import annotations

import pydicom
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.utils import timezone, translation
from django.utils.formats import date_format
from pydicom.data import get_testdata_file

from apps.medical.models import Instance, Study, StudyIdentity
from apps.medical.tests.web_helpers import PLANTED, file_bytes, planted_ct, process_upload, zip_bytes
from core.models import JobStatus

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_llm")]

UPLOAD = "/api/v1/medical/studies/"


@pytest.fixture
def client(radiologist) -> Client:
    c = Client()
    c.force_login(radiologist)
    return c


def _upload(api, files: dict[str, bytes]) -> tuple[dict, list[Study]]:
    response = api.post(UPLOAD, {"files": [SimpleUploadedFile(n, b) for n, b in files.items()]},
                        format="multipart")
    assert response.status_code == 202, response.content
    body = response.json()
    studies = process_upload(body["id"])
    return body, studies


def _original_uid(name: str) -> str:
    return str(pydicom.dcmread(get_testdata_file(name), stop_before_pixels=True).StudyInstanceUID)


def _processed(study: Study) -> None:
    """Nothing lost: the repeat is read, stored and drafted like any upload."""
    assert study.status in (JobStatus.SUCCEEDED, JobStatus.NEEDS_REVIEW), (study.status, study.error_message)
    assert study.instances.filter(status=Instance.Status.OK).count() == 1
    assert study.series.count() == 1 and study.report is not None


def test_same_file_uploaded_twice_is_processed_and_linked_to_the_first(api, client):
    first_body, (first,) = _upload(api, {"ct.dcm": file_bytes("CT_small.dcm")})
    second_body, (second,) = _upload(api, {"again.dcm": file_bytes("CT_small.dcm")})
    _processed(first)
    _processed(second)
    assert first.duplicate_of is None
    assert second.duplicate_of_id == first.pk
    assert second.study_instance_uid == first.study_instance_uid != _original_uid("CT_small.dcm")

    # a third upload links to the first upload, not to the repeat
    _body, (third,) = _upload(api, {"third.dcm": file_bytes("CT_small.dcm")})
    assert third.duplicate_of_id == first.pk

    # a different study (MR_small.dcm) is not a duplicate
    _body, (other,) = _upload(api, {"mr.dcm": file_bytes("MR_small.dcm")})
    _processed(other)
    assert other.duplicate_of is None

    # REST: the study carries duplicate_of (id, url, when), null for the first; the upload counts them
    data = api.get(second.api_url()).json()
    assert data["duplicate_of"]["id"] == str(first.pk)
    assert data["duplicate_of"]["url"].endswith(first.api_url())
    assert data["duplicate_of"]["uploaded_at"]
    assert api.get(first.api_url()).json()["duplicate_of"] is None
    assert api.get(other.api_url()).json()["duplicate_of"] is None
    listed = {s["id"]: s["duplicate_of"] for s in api.get(UPLOAD + "?status=all").json()["results"]}
    assert listed[str(second.pk)]["id"] == str(first.pk) and listed[str(first.pk)] is None
    upload = api.get(second_body["url"]).json()
    assert upload["already_uploaded"] == 1 and upload["studies"][0]["duplicate_of"]["id"] == str(first.pk)
    assert api.get(first_body["url"]).json()["already_uploaded"] == 0
    # the original UID is in the identity row only, never in what the API shows without ?include=identity
    original = _original_uid("CT_small.dcm")
    assert StudyIdentity.objects.get(study=second).original_study_instance_uid == original
    for url in (second.api_url(), second_body["url"], UPLOAD + "?status=all"):
        assert original not in api.get(url).content.decode()

    # pages, English: worklist and study page link the first upload with its date
    day = timezone.localtime(first.queued_at).date()
    with translation.override("en"):
        uploaded_en = date_format(day, "DATE_FORMAT")
    link = f'<a href="{first.get_absolute_url()}">'
    worklist = client.get("/medical/?status=all").content.decode()
    assert "Same study as " + link in worklist
    page = client.get(second.get_absolute_url()).content.decode()
    assert 'id="duplicate-of"' in page and "Same study as " + link in page
    assert f"(uploaded {uploaded_en})" in page
    assert 'id="duplicate-of"' not in client.get(first.get_absolute_url()).content.decode()
    assert 'id="duplicate-of"' not in client.get(other.get_absolute_url()).content.decode()

    # Chinese
    client.cookies["django_language"] = "zh-hans"
    d = day
    zh = client.get(second.get_absolute_url(), HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    assert f"与 {link}" in zh and f"为同一检查（上传于 {d.year}年{d.month}月{d.day}日）" in zh
    zh_list = client.get("/medical/?status=all", HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    assert f"与 {link}" in zh_list


def test_batch_page_counts_the_studies_already_uploaded(api, client):
    _upload(api, {"ct.dcm": file_bytes("CT_small.dcm")})
    body, studies = _upload(api, {"both.zip": zip_bytes({"a/ct.dcm": file_bytes("CT_small.dcm"),
                                                         "b/mr.dcm": file_bytes("MR_small.dcm")})})
    assert sorted(s.duplicate_of is not None for s in studies) == [False, True]
    page = client.get(f"/medical/uploads/{body['id']}/").content.decode()
    assert "1 of the 2 studies in this upload was already uploaded before" in page
    assert page.count('class="duplicate-of"') == 1
    client.cookies["django_language"] = "zh-hans"
    zh = client.get(f"/medical/uploads/{body['id']}/", HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    assert "本次上传的 2 项检查中有 1 项此前已上传过" in zh
    fresh, _ = _upload(api, {"fresh.dcm": planted_ct()[0]})
    assert 'id="already-uploaded"' not in client.get(f"/medical/uploads/{fresh['id']}/").content.decode()


def test_the_identity_row_links_a_study_stored_under_another_salt(api, settings):
    """A changed SECRET_KEY changes the de-identified UIDs; the original UID in the identity row still
    finds the first upload."""
    _body, (first,) = _upload(api, {"ct.dcm": file_bytes("CT_small.dcm")})
    settings.SECRET_KEY = settings.SECRET_KEY + "-rotated"
    _body, (second,) = _upload(api, {"ct.dcm": file_bytes("CT_small.dcm")})
    assert second.study_instance_uid != first.study_instance_uid
    assert second.duplicate_of_id == first.pk


def test_dicom_dates_in_the_locale_format_on_the_study_page(api, client):
    _body, (study,) = _upload(api, {"ct.dcm": planted_ct()[0]})
    identity = study.identity
    assert identity.patient_birth_date == PLANTED["birth"] == "19580317"
    study_date = identity.study_date  # CT_small.dcm's StudyDate, 20040119
    assert study_date == "20040119"
    en = client.get(study.get_absolute_url()).content.decode()
    assert "March 17, 1958" in en and "Jan. 19, 2004" in en
    assert "19580317" not in en and "20040119" not in en
    assert "March 17, 1958" in client.get("/medical/?status=all").content.decode()
    client.cookies["django_language"] = "zh-hans"
    zh = client.get(study.get_absolute_url(), HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    assert "1958年3月17日" in zh and "2004年1月19日" in zh
    assert "19580317" not in zh and "20040119" not in zh
    zh_list = client.get("/medical/?status=all", HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    assert "1958年3月17日" in zh_list
