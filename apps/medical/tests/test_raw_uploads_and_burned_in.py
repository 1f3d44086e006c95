"""Raw (identified) uploads: deletion retried and logged without PHI, the sweeper for leftovers.
Burned-in annotation: no key images from such series; the PDF says so."""
from __future__ import annotations

import datetime as dt
import logging

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.utils import timezone
from pydicom.data import get_testdata_file

from apps.medical.imaging import burned_in_risk, series_features
from apps.medical.report_pdf import render_pdf
from apps.medical.services import storage
from apps.medical.tests.phi_corpus import pdf_text


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    return tmp_path / "media"


@pytest.fixture
def no_sleep(monkeypatch):
    monkeypatch.setattr(storage.time, "sleep", lambda s: None)


def test_a_failed_deletion_is_retried(media, no_sleep, monkeypatch):
    path = default_storage.save("medical/uploads/b/00000.upload", ContentFile(b"identified"))
    real, calls = default_storage.delete, []

    def flaky(name):
        calls.append(name)
        if len(calls) < 3:
            raise PermissionError("Blathers_Fenwick.dcm is busy")
        real(name)

    monkeypatch.setattr(default_storage, "delete", flaky)
    assert storage.raw_uploads_delete(paths=[path]) == []
    assert len(calls) == 3 and not default_storage.exists(path)


def test_a_deletion_that_keeps_failing_is_logged_without_phi(media, no_sleep, monkeypatch, caplog):
    path = default_storage.save("medical/uploads/b/00001.upload", ContentFile(b"identified"))

    def broken(name):
        raise PermissionError("cannot delete Blathers_Fenwick.dcm")

    monkeypatch.setattr(default_storage, "delete", broken)
    with caplog.at_level(logging.ERROR, logger="apps.medical.services.storage"):
        assert storage.raw_uploads_delete(paths=[path]) == [path]
    (record,) = [r for r in caplog.records if r.levelno == logging.ERROR]
    message = record.getMessage()
    assert path in message and "PermissionError" in message and "Blathers" not in message


@pytest.mark.django_db
def test_the_sweeper_removes_leftovers_of_ingested_uploads_only(media, make_user):
    from core.models import Batch

    owner = make_user("rad", "medical")
    done = Batch.objects.create(owner=owner, app="medical", kind="medical.study", status=Batch.Status.DONE)
    waiting = Batch.objects.create(owner=owner, app="medical", kind="medical.study",
                                   status=Batch.Status.QUEUED)
    stale = Batch.objects.create(owner=owner, app="medical", kind="medical.study",
                                 status=Batch.Status.PARSING,
                                 created_at=timezone.now() - dt.timedelta(days=30))
    paths = {b.pk: default_storage.save(f"medical/uploads/{b.pk}/00000.upload", ContentFile(b"x"))
             for b in (done, waiting, stale)}
    orphan = default_storage.save("medical/uploads/6f1c1f5e-0000-4000-8000-000000000000/00000.upload",
                                  ContentFile(b"x"))
    assert storage.raw_uploads_sweep() == 3
    assert not default_storage.exists(paths[done.pk]) and not default_storage.exists(paths[stale.pk])
    assert not default_storage.exists(orphan)
    assert default_storage.exists(paths[waiting.pk])  # its ingest still needs it


@pytest.mark.parametrize("name, reason", [("US1_J2KR.dcm", "burned_in_likely"),
                                          ("SC_rgb.dcm", "burned_in_likely"), ("CT_small.dcm", None)])
def test_series_that_may_show_burned_in_text_give_no_key_images(name, reason):
    result = series_features([get_testdata_file(name)], key_images=3)
    assert result.features.get("key_images_withheld") == reason
    assert (result.key_images == []) == (reason is not None)


def test_burned_in_annotation_yes_wins_and_no_clears_the_modality_guess():
    assert burned_in_risk({"modality": "CT", "burned_in_annotation": "YES"}) == "burned_in_annotation"
    assert burned_in_risk({"modality": "US", "burned_in_annotation": "NO"}) is None
    secondary_capture = {"modality": "OT", "sop_class": "Secondary Capture Image Storage"}
    assert burned_in_risk(secondary_capture) == "burned_in_likely"


@pytest.mark.parametrize("language, note", [("en", "Key images of 2 series are left out"),
                                            ("zh-hans", "已略去 2 个序列的关键图像")])
def test_the_pdf_says_which_key_images_were_left_out(language, note):
    pdf = render_pdf({"impression": "No acute findings."}, language=language, images_withheld=2)
    assert note in pdf_text(pdf)
