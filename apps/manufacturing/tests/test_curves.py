"""Validation curves of the failure model: recorded at training (the out-of-fold predictions behind
oof_auc / oof_brier) and drawn on the training and models pages, in English and Chinese."""
from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from apps.manufacturing import failure_model as fm
from apps.manufacturing import services
from apps.manufacturing.models import FailureModelVersion, TrainingRun
from apps.manufacturing.tests.fixtures import *  # noqa: F403
from apps.manufacturing.tests.fixtures import cmapss_bytes
from core.models import JobStatus

ENGINES = range(1, 10)  # nine whole FD001 units, run to failure: three grouped folds


def _check(curves: dict, rows: int, positives: int, auc: float) -> None:
    fpr, tpr = curves["roc"]["fpr"], curves["roc"]["tpr"]
    assert 2 < len(fpr) <= 50 and len(fpr) == len(tpr)
    assert (fpr[0], tpr[0], fpr[-1], tpr[-1]) == (0, 0, 1, 1)
    assert all(np.diff(fpr) >= 0) and all(np.diff(tpr) >= 0)
    assert curves["roc"]["auc"] == pytest.approx(auc, abs=2e-3)  # the same predictions as oof_auc
    bins = curves["reliability"]
    assert 5 <= len(bins) <= 10 and sum(b["count"] for b in bins) == rows == curves["rows"]
    assert curves["positives"] == positives
    assert all(0 <= b["mean_predicted"] <= 1 and 0 <= b["observed_rate"] <= 1 for b in bins)


def test_training_records_the_curves(fd001_frame):
    train = fd001_frame[fd001_frame["machine_id"].astype(int).isin(ENGINES)].drop(columns=["rul_capped"])
    model = fm.train_failure_model(train, horizon=30, seed=0, threads=1)
    metrics = model.metadata["metrics"]
    positives = int((train["rul"] <= 30).sum())
    _check(metrics["curves"], rows=len(train), positives=positives, auc=metrics["oof_auc"])


@pytest.mark.django_db
def test_training_and_models_pages_draw_the_curves(client, make_user, fd001_frame, llm_off):
    from core.services import job_run_inline

    admin = make_user("boss", "admin")
    client.force_login(admin)
    history = cmapss_bytes(fd001_frame, {u: 400 for u in ENGINES})
    client.post(reverse("manufacturing:models"), {
        "file": SimpleUploadedFile("history.txt", history), "data_format": "cmapss", "horizon": "30",
        "name": "plant history", "activate": "on"})
    run = TrainingRun.objects.get()
    job_run_inline(model=TrainingRun, job_id=str(run.pk), handler=services.training_process, worker="test")
    run.refresh_from_db()
    assert run.status == JobStatus.SUCCEEDED, run.error_message
    version = run.created_version
    rows = version.metadata["rows"]
    positives = round(version.cv_metrics["positive_rate"] * rows)
    _check(version.cv_metrics["curves"], rows=rows, positives=positives, auc=version.cv_metrics["oof_auc"])
    # a version trained before curves were recorded still renders, with a note
    old = FailureModelVersion.objects.create(
        name="old", model_version="0ld0ld0ld0ld", kind="failure", horizon=30, horizon_unit="cycles",
        metadata={"machines": 3, "rows": 600}, cv_metrics={"oof_auc": 0.9, "oof_brier": 0.05},
        artifact=version.artifact.name)
    for lang, words in (("en", ("top-left corner", "Validation curves", "not recorded")),
                        ("zh-hans", ("左上角", "验证曲线", "未记录曲线"))):
        client.cookies["django_language"] = lang
        for url, prefix in ((run.get_absolute_url(), "training-curves"),
                            (reverse("manufacturing:models"), f"curves-{version.pk}")):
            page = client.get(url, HTTP_ACCEPT_LANGUAGE=lang).content.decode()
            svgs = re.findall(r"<svg.*?</svg>", page, flags=re.S)
            assert len(svgs) >= 2, url
            for svg in svgs:
                assert ET.fromstring(svg).get("role") == "img"
            assert f'id="{prefix}-roc"' in page and f'id="{prefix}-reliability"' in page
            assert words[0] in page and words[1] in page
            assert "{&#x27;fpr&#x27;" not in page and "&#x27;roc&#x27;" not in page  # no raw dict shown
        models = client.get(reverse("manufacturing:models"), HTTP_ACCEPT_LANGUAGE=lang).content.decode()
        assert f'id="curves-{old.pk}"' in models and words[2] in models
        assert 'data-metric="curves"' not in models
