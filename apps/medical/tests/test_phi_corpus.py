"""A study with patient identity planted in many places (apps/medical/tests/phi_corpus.py: nested
sequences two levels deep, descriptors, third-party names without titles, phone numbers, an address,
a record number, a private tag, the file name, a ZIP path, the indication; English and Chinese) goes
through the platform; each planted string is searched for in every de-identified output.

* pure: de-identification and the prompt variables;
* in one process (the worker's service calls, no model): the stored de-identified DICOM, the SR, PDF and
  FHIR downloads (de-identified variants), the API's JSON and the results CSV;
* the independent last check: something the filter lets through stops the request
  (``privacy_check_failed``, in the API and on the page);
* live (``-m live``): through the real worker and model service; the model-service traffic, captured by
  a recording proxy, and every download are searched; the draft request is still sent and answered.
"""
from __future__ import annotations

import copy
import io
import json
import warnings

import pydicom
import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile

from apps.medical.deidentify import deidentify, phi_strings
from apps.medical.imaging import series_features, study_summary
from apps.medical.prompting import draft_variables
from apps.medical.tests.phi_corpus import (
    CLINICAL,
    FILE_NAME,
    PLACES,
    ZIP_MEMBER,
    build_corpus,
    leaks,
    pdf_text,
    planted_strings,
)

UPLOAD = "/api/v1/medical/studies/"


def _dicom_text(ds) -> str:
    ds = copy.deepcopy(ds)
    if "PixelData" in ds:
        del ds.PixelData
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds.save_as(buf, enforce_file_format=False)
    return buf.getvalue().decode("latin-1") + "\n" + buf.getvalue().decode("utf-8", "ignore")


def test_the_corpus_plants_identity_in_at_least_fifteen_places() -> None:
    corpus = build_corpus()
    assert len(PLACES) >= 15
    # the planted strings are really in the inputs (so a clean output means they were removed)
    raw = "\n".join([*(_dicom_text(ds) for ds in corpus.originals), corpus.indication, *corpus.files,
                     ZIP_MEMBER])
    assert sorted(leaks(raw)) == sorted(planted_strings())


def test_deidentified_copies_and_prompt_variables_hold_no_planted_string(salt, tmp_path) -> None:
    corpus = build_corpus()
    results = [deidentify(ds, salt) for ds in corpus.originals]
    for r in results:
        assert leaks(_dicom_text(r.dataset)) == []
    paths = []
    for n, r in enumerate(results):
        paths.append(tmp_path / f"{n}.dcm")
        r.dataset.save_as(paths[-1], enforce_file_format=False)
    summary = study_summary([series_features(paths).features])
    phi = phi_strings(results[0].identifiers)
    for lang in ("en", "zh-hans"):
        variables = draft_variables(summary, corpus.indication, lang, phi=phi)
        text = json.dumps(variables, ensure_ascii=False)
        assert leaks(text) == [], text
        assert all(c in variables["indication"] for c in CLINICAL), variables["indication"]


@pytest.mark.django_db
class TestThroughThePlatform:
    @pytest.fixture(autouse=True)
    def _setup(self, settings, tmp_path, make_user, api_client_for):
        settings.LLM_ENABLED = False
        settings.MEDIA_ROOT = str(tmp_path / "media")
        self.api = api_client_for(make_user("rad", "medical"))

    def _upload(self, files: dict[str, bytes], indication: str) -> dict:
        response = self.api.post(UPLOAD, {"files": [SimpleUploadedFile(n, b) for n, b in files.items()],
                                          "indication": indication}, format="multipart")
        assert response.status_code == 202, response.content
        return response.json()

    def test_no_planted_string_in_any_deidentified_output(self, django_capture_on_commit_callbacks):
        from apps.medical.models import Instance, StudyIdentity, UploadIdentity
        from apps.medical.tests.web_helpers import process_upload
        from core.models import Batch

        corpus = build_corpus()
        with django_capture_on_commit_callbacks() as callbacks:
            body = self._upload(corpus.files, corpus.indication)
            (study,) = process_upload(body["id"])
        for callback in callbacks:  # the ingest's own after-commit step: deleting the raw upload
            if "_upload_read" in callback.__qualname__:
                callback()
        assert study.instance_count == 2
        outputs: dict[str, str] = {}
        for inst in Instance.objects.filter(study=study):
            with default_storage.open(inst.file.name, "rb") as fh:
                outputs[f"stored DICOM {inst.file_name}"] = _dicom_text(pydicom.dcmread(fh))
        detail = self.api.get(study.api_url())
        outputs["API study"] = detail.content.decode()
        outputs["API upload"] = self.api.get(body["url"]).content.decode()
        outputs["results CSV"] = self.api.get(body["results_url"]).content.decode("utf-8-sig")
        downloads = detail.json()["downloads"]
        sr = self.api.get(downloads["sr"] + "?deidentified=1")
        outputs["SR"] = _dicom_text(pydicom.dcmread(io.BytesIO(sr.content)))
        pdf = self.api.get(downloads["pdf"] + "?deidentified=1")
        assert pdf.content.startswith(b"%PDF")
        outputs["PDF"] = pdf_text(pdf.content)
        outputs["FHIR"] = self.api.get(downloads["fhir"] + "?deidentified=1").content.decode()
        found = {where: leaks(text) for where, text in outputs.items() if leaks(text)}
        assert found == {}
        # the drafts' inputs kept the clinical content; the indication shown is the filtered one
        assert all(c in detail.json()["indication"] for c in CLINICAL)
        # originals: only in the identity rows; the raw upload is gone
        names = UploadIdentity.objects.get(batch_id=body["id"]).files
        assert FILE_NAME in names.values() and f"export.zip/{ZIP_MEMBER}" in names.values()
        assert UploadIdentity.objects.get(batch_id=body["id"]).indication == corpus.indication
        identity = StudyIdentity.objects.get(study=study)
        assert identity.identifiers["indication"] == corpus.indication
        batch = Batch.objects.get(pk=body["id"])
        assert all(not default_storage.exists(f["path"]) for f in batch.options["files"])

    def test_the_last_check_stops_what_the_filter_lets_through(self, settings, client, make_user):
        """A given name the filter misses (林有才: its second character is common in clinical Chinese)
        is caught by the independent last check: nothing is sent, the study says why."""
        from apps.medical.tests.web_helpers import planted_ct, process_upload
        from core.services import prompt_templates_seed

        prompt_templates_seed()
        settings.LLM_ENABLED = True
        settings.MODEL_SERVICE_URL = "http://127.0.0.1:9/v1"  # nothing listens: a call would fail differently
        body = self._upload({"a.dcm": planted_ct()[0]}, "患者林有才，男，62岁，咳嗽两周")
        (study,) = process_upload(body["id"])
        assert study.status == "failed" and study.error_code == "privacy_check_failed"
        detail = self.api.get(study.api_url()).json()
        assert detail["error"]["code"] == "privacy_check_failed"
        assert "nothing was sent" in detail["error"]["message"] and "林有才" not in detail["error"]["message"]
        client.force_login(make_user("rad2", "medical"))
        page = client.get(study.get_absolute_url())
        assert page.status_code == 200 and b"privacy_check_failed" in page.content


def test_the_searches_see_a_planted_string_where_there_is_one() -> None:
    """The PDF text extraction and the search can fail: a PDF that prints the strings is caught."""
    from apps.medical.report_pdf import render_pdf

    pdf = render_pdf({"impression": "Fenwick Blathers 王小明 555-867-5309"}, study_label="Room 47B 李建国",
                     language="zh-hans")
    assert set(leaks(pdf_text(pdf))) >= {"Fenwick", "Blathers", "王小明", "555-867-5309", "47B", "李建国"}


@pytest.mark.live
@pytest.mark.django_db(transaction=True)
def test_live_no_planted_string_reaches_the_model_service_or_any_download(model_service, worker_factory,
                                                                         make_user, api_client_for):
    """The corpus through the real stack: REST upload → Celery worker (ingest, features) → the real model
    service behind a recording proxy. The draft request is sent and answered; neither it nor any
    download, the stored de-identified copies, the API's JSON or the worker's log holds a planted string."""
    from apps.medical.models import Instance, Study
    from apps.medical.tests.test_live import _post, _Recorder, _wait_done
    from conftest import TEST_MODEL_KEY

    api = api_client_for(make_user("rad", "medical"))
    corpus = build_corpus()
    with _Recorder(model_service.url) as proxy:
        worker = worker_factory(env={"MODEL_SERVICE_URL": proxy.url, "MODEL_SERVICE_API_KEY": TEST_MODEL_KEY},
                                name="phicorpus").start()
        upload = _post(api, corpus.files, indication=corpus.indication)
        (study,) = _wait_done(api, upload, studies=1, timeout=600)
    # a draft was asked for and answered (the draft's own quality gates may still reject it)
    assert study["status"] in ("succeeded", "needs_review"), study["error"]
    chats = [body for path, body in proxy.requests if path.endswith("/chat/completions")]
    assert chats, "no draft request reached the model service"
    llm = study["result"]["llm"]
    assert llm["enabled"] and llm["status"] in ("ok", "rejected") and llm["usage"]["completion_tokens"] > 0
    if llm["status"] == "ok":
        assert study["report"]["ai_generated"] is True
    sent = "\n".join(body.decode("utf-8") for body in chats)
    sent_text = json.dumps([json.loads(b) for b in chats], ensure_ascii=False)
    assert all(c in sent_text for c in CLINICAL), sent_text[:3000]  # the clinical content did go

    outputs = {"model traffic": sent + sent_text,
               "all proxied requests": b"\n".join(b for _p, b in proxy.requests).decode("utf-8", "replace")}
    row = Study.objects.get(pk=study["id"])
    for inst in Instance.objects.filter(study=row):
        with default_storage.open(inst.file.name, "rb") as fh:
            outputs[f"stored DICOM {inst.file_name}"] = _dicom_text(pydicom.dcmread(fh))
    outputs["API study"] = api.get(study["url"]).content.decode()
    outputs["API upload"] = api.get(upload["url"]).content.decode()
    downloads = study["downloads"]
    sr = api.get(downloads["sr"] + "?deidentified=1").content
    outputs["SR"] = _dicom_text(pydicom.dcmread(io.BytesIO(sr)))
    outputs["PDF"] = pdf_text(api.get(downloads["pdf"] + "?deidentified=1").content)
    outputs["FHIR"] = api.get(downloads["fhir"] + "?deidentified=1").content.decode()
    outputs["worker log"] = worker.log()
    found = {where: leaks(text) for where, text in outputs.items() if leaks(text)}
    assert found == {}
