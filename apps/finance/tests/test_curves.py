"""Validation curves of the scorecard: recorded at training (the out-of-fold predictions behind the
headline AUC) and drawn with the metrics table on the training and model pages, in English and Chinese."""
from __future__ import annotations

import copy
import re
import xml.etree.ElementTree as ET

import numpy as np
import pandas as pd
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from apps.finance import services
from apps.finance.models import CreditModelVersion, ModelTraining
from core.models import JobStatus
from core.shipped_data import demo_data_file

pytestmark = pytest.mark.django_db

SAMPLE_ROWS = 240


@pytest.fixture(scope="module")
def sample_csv() -> bytes:
    """A small stratified-enough sample of the shipped German Credit training file."""
    frame = pd.read_csv(demo_data_file("finance/german_credit_train.csv"), dtype=str, keep_default_na=False)
    return frame.sample(SAMPLE_ROWS, random_state=0).to_csv(index=False).encode()


def _svgs(page: str) -> list[ET.Element]:
    return [ET.fromstring(s) for s in re.findall(r"<svg.*?</svg>", page, flags=re.S)]


def test_training_stores_curves_and_both_pages_draw_them(client, make_user, sample_csv):
    from core.services import job_run_inline

    admin = make_user("boss", "admin", "finance")
    job = services.model_training_create(owner=admin, upload=SimpleUploadedFile("sample.csv", sample_csv))
    job_run_inline(model=ModelTraining, job_id=str(job.pk), handler=services.model_training_process,
                   worker="test")
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED, job.error_message
    version = job.credit_model
    curves = version.metrics["curves"]
    fpr, tpr = curves["roc"]["fpr"], curves["roc"]["tpr"]
    assert 2 < len(fpr) <= 50 and len(fpr) == len(tpr)
    assert (fpr[0], tpr[0], fpr[-1], tpr[-1]) == (0, 0, 1, 1)
    assert all(np.diff(fpr) >= 0) and all(np.diff(tpr) >= 0)
    assert curves["roc"]["auc"] == pytest.approx(version.metrics["auc"], abs=1e-3)  # same predictions
    bins = curves["reliability"]
    assert len(bins) == 10 and sum(b["count"] for b in bins) == SAMPLE_ROWS == curves["rows"]
    assert curves["positives"] == round(version.metrics["bad_rate"] * SAMPLE_ROWS)
    assert "curves" not in job.result["metrics"]  # the job's result and the audit keep the headline only

    old = services.credit_model_store(trained=_without_curves(version), data_sha256="1" * 64,
                                      filename="old.csv")
    assert "curves" not in old.metrics
    client.force_login(admin)
    for lang, words in (("en", ("top-left corner", "Validation curves", "Metric")),
                        ("zh-hans", ("左上角", "验证曲线", "指标"))):
        client.cookies["django_language"] = lang
        for url, prefix in ((job.get_absolute_url(), "training-curves"),
                            (version.get_absolute_url(), "model-curves")):
            response = client.get(url, HTTP_ACCEPT_LANGUAGE=lang)
            assert response.status_code == 200, url
            page = response.content.decode()
            svgs = _svgs(page)
            assert len(svgs) == 2 and all(s.get("role") == "img" and s.get("aria-label") for s in svgs), url
            assert f'id="{prefix}-roc"' in page and f'id="{prefix}-reliability"' in page
            assert 'id="metrics-table"' in page and 'data-metric="auc"' in page
            assert all(w in page for w in words), url
            assert "&#x27;auc&#x27;" not in page  # no metrics dict printed raw
        page = client.get(old.get_absolute_url(), HTTP_ACCEPT_LANGUAGE=lang).content.decode()
        assert _svgs(page) == [] and "curves-missing" in page
        assert ("not recorded" if lang == "en" else "未记录曲线") in page
        assert client.get("/finance/models/", HTTP_ACCEPT_LANGUAGE=lang).status_code == 200


def _without_curves(version: CreditModelVersion):
    """The version's trained scorecard, as one trained before curves were recorded."""
    trained = copy.copy(services.scorecard_load(version))  # not the cached object itself
    trained.report = {k: v for k, v in trained.report.items() if k != "curves"}
    return trained
