"""XSS payloads in a loan report, an application id, DICOM descriptors and a clinical indication are
rendered as text in a real browser (Chromium): no script runs, the payload is visible verbatim.

The rows are built by the apps' own code in-process: the finance assessment is run by
``core.services.job_run_inline`` with the real scorecard (LLM off, every applicant field given), the
medical study by ``upload_create`` + ``upload_ingest`` (parse, de-identify with cleaned descriptors).
"""
import copy
import io
import warnings

import pytest

from tests.browser import conftest as browser_fixtures

# Playwright + Debian Chromium fixtures of tests/browser/
browser, page, login = browser_fixtures.browser, browser_fixtures.page, browser_fixtures.login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PAYLOAD = '<script>window.__xss=1</script><img src=x onerror="window.__xss=1">'
# DICOM LO values are at most 64 characters: one half of the payload in each descriptor.
SCRIPT_PART = "<script>window.__xss=1</script>"
IMG_PART = '<img src=x onerror="window.__xss=1">'


def _settle(pg):
    pg.wait_for_load_state("load")
    pg.wait_for_timeout(300)  # give an onerror handler (the broken image) time to fire


def _assert_inert(pg, *texts):
    assert pg.evaluate("window.__xss") is None, f"a payload ran on {pg.url}"
    body = pg.inner_text("body")
    for text in texts:
        assert text in body, f"{text!r} not shown as text on {pg.url}"


def _finance_assessment(owner):
    import csv

    from apps.finance.models import Assessment
    from apps.finance.services import assessment_process, credit_model_store
    from apps.finance.tests.conftest import applicant_of, shared_csv_text, trained_scorecard
    from core.services import job_run_inline

    with io.StringIO(shared_csv_text()) as fh:
        row = next(csv.DictReader(fh))
    model = credit_model_store(trained=trained_scorecard(), data_sha256="0" * 64,
                               filename="german_credit_train.csv", activate=True, note="xss test")
    job = Assessment.objects.create(owner=owner, application_id=PAYLOAD, applicant=applicant_of(row),
                                    report=f"Applicant notes: {PAYLOAD}", credit_model=model)
    status = job_run_inline(model=Assessment, job_id=str(job.pk), handler=assessment_process)
    assert status in ("succeeded", "needs_review"), (status, Assessment.objects.get(pk=job.pk).error_message)
    return job


def _medical_study(owner):
    import pydicom
    from pydicom.data import get_testdata_file
    from pydicom.uid import generate_uid

    from apps.medical.models import Study
    from apps.medical.services import upload_create, upload_ingest

    ds = copy.deepcopy(pydicom.dcmread(get_testdata_file("CT_small.dcm")))
    ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID = (
        generate_uid(), generate_uid(), generate_uid())
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.StudyDescription = IMG_PART
    ds.SeriesDescription = SCRIPT_PART
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds.save_as(buf, enforce_file_format=True)
    buf.seek(0)
    buf.name = "xss.dcm"
    from django.core.files.uploadedfile import SimpleUploadedFile

    upload = SimpleUploadedFile("xss.dcm", buf.getvalue(), content_type="application/dicom")
    batch = upload_create(owner=owner, files=[upload], indication=f"Cough. {PAYLOAD}")
    assert upload_ingest(batch_id=batch.pk) == "parsed"
    study = Study.objects.get(batch=batch)
    return study


def test_xss_payloads_render_as_text(make_user, login, page, live_server, settings, stop_shared_worker):
    # No worker may take the upload's queued ingest message: this test reads the upload in-process.
    settings.LLM_ENABLED = False
    admin = make_user("xss_admin", "admin")
    job = _finance_assessment(admin)
    study = _medical_study(admin)
    # The free-text filter now rewrites words it does not know in descriptors and the indication ("xss",
    # "onerror"), so the payload is put back on the stored rows: what is tested here is that whatever is
    # stored renders as text.
    type(study).objects.filter(pk=study.pk).update(indication=f"Cough. {PAYLOAD}", description=IMG_PART)
    first_series = study.series.order_by("pk").first()
    type(first_series).objects.filter(pk=first_series.pk).update(description=SCRIPT_PART)
    study.refresh_from_db()
    assert job.application_id == PAYLOAD
    assert study.indication.endswith(PAYLOAD)
    assert IMG_PART in study.description
    assert any(SCRIPT_PART in (s.description or "") for s in study.series.all())

    login("xss_admin")
    page.goto(f"{live_server.url}{job.get_absolute_url()}")
    _settle(page)
    _assert_inert(page, PAYLOAD, f"Applicant notes: {PAYLOAD}")

    page.goto(f"{live_server.url}/finance/assessments/")
    _settle(page)
    _assert_inert(page, PAYLOAD)

    page.goto(f"{live_server.url}{study.get_absolute_url()}")
    _settle(page)
    _assert_inert(page, IMG_PART, f"Cough. {PAYLOAD}")
    options = page.evaluate("Array.from(document.querySelectorAll('#viewer-series option')).map(o => o.text)")
    assert any(SCRIPT_PART in o for o in options), options

    page.goto(f"{live_server.url}/medical/")
    _settle(page)
    _assert_inert(page, IMG_PART)
