"""Issue 14: the stored English texts a user reads (ingest problems on the batch page and in the API, alert
reasons, model notes, progress and failure messages) are shown in Chinese on zh-hans pages; the CSV
template reads back through the real ingest without a problem."""
from __future__ import annotations

import io
from pathlib import Path

import pandas as pd
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from apps.manufacturing import decisions, services
from apps.manufacturing.ingest import ingest_csv
from apps.manufacturing.models import Alert, Machine, Prediction
from apps.manufacturing.tests.fixtures import *  # noqa: F403
from apps.manufacturing.tests.fixtures import wide_csv
from core.models import Batch, JobStatus

pytestmark = pytest.mark.django_db

ZH = {"HTTP_ACCEPT_LANGUAGE": "zh-hans"}


def _messy_csv(fd001_frame) -> bytes:
    """Two held-out engines with an unknown text column, an unknown numeric column (not a model sensor),
    one value that is not a number, one duplicated row and two missing cycles."""
    frame = pd.read_csv(io.BytesIO(wide_csv(fd001_frame, {81: 60, 85: 80})))
    frame["operator"] = "anna"  # text only: not a sensor
    frame["vibration"] = [0.1 + 0.001 * i for i in range(len(frame))]  # not used by the model
    frame["sensor_2"] = frame["sensor_2"].astype(object)
    frame.loc[5, "sensor_2"] = "n/v"  # not a number
    frame = pd.concat([frame, frame.iloc[[10]]])  # a duplicated reading
    frame = frame[~((frame["machine_id"] == "ENG-85") & frame["cycle"].isin([30, 31]))]  # a gap
    return frame.to_csv(index=False).encode()


@pytest.fixture
def messy_batch(engineer, active_model, fd001_frame, run_jobs, llm_off):
    upload = SimpleUploadedFile("messy.csv", _messy_csv(fd001_frame))
    batch = services.upload_create(owner=engineer, upload=upload)
    run_jobs(batch=batch)
    batch.refresh_from_db()
    return batch


def _body(html: str) -> str:
    """The page without the raw-result dump (stored JSON, shown as it is on purpose)."""
    return html.split("<details><summary>")[0]


def test_batch_page_shows_the_files_problems_in_chinese(client, engineer, messy_batch):
    stored = messy_batch.errors + messy_batch.warnings
    codes_seen = " ".join(stored)
    assert "holds no numbers" in codes_seen and "is not a number" in codes_seen
    assert "duplicated at" in codes_seen and "missing cycle" in codes_seen
    client.force_login(engineer)
    url = reverse("manufacturing:batch_detail", args=[messy_batch.pk])
    english = client.get(url).content.decode()
    assert "holds no numbers" in english and "duplicated at" in english  # the page shows them
    zh = client.get(url, **ZH).content.decode()
    for source in ("holds no numbers", "is not a number", "duplicated at", "missing cycle",
                   "values interpolated", "row dropped", "machine ENG-"):
        assert source not in zh, source
    assert "列 operator 不含数字；不是传感器，已忽略" in zh
    assert "值 &#x27;n/v&#x27; 不是数字；已丢弃" in zh
    assert "重复；保留最后一个" in zh and "插入了 2 个缺失周期" in zh
    # the live partial (polled while the batch runs) says the same
    partial = client.get(reverse("manufacturing:batch_results", args=[messy_batch.pk]), **ZH).content.decode()
    assert "不含数字" in partial and "holds no numbers" not in partial


def test_the_api_gives_the_problems_in_the_requests_language(engineer_client, messy_batch):
    url = reverse("api-v1:manufacturing-batch-detail", args=[messy_batch.pk])
    data = engineer_client.get(url, HTTP_ACCEPT_LANGUAGE="zh-hans").json()
    assert data["warnings"] == messy_batch.warnings  # stored as they are
    shown = " ".join(data["warnings_display"] + data["errors_display"])
    assert "不含数字" in shown and "不是数字" in shown and "holds no numbers" not in shown
    prediction = Prediction.objects.filter(batch=messy_batch, machine__machine_id="ENG-81").get()
    detail = engineer_client.get(reverse("api-v1:manufacturing-prediction-detail", args=[prediction.pk]),
                                 HTTP_ACCEPT_LANGUAGE="zh-hans").json()
    notes = detail["display"]["notes"]
    assert any(n.startswith("模型未使用的列：") and n.endswith("vibration") for n in notes)
    assert any(n.startswith("columns not used by the model: ") for n in detail["result"]["notes"])


def test_prediction_page_in_chinese(client, engineer, messy_batch):
    prediction = Prediction.objects.filter(batch=messy_batch, machine__machine_id="ENG-81").get()
    assert any("not a number" in i["message"] for i in prediction.input_issues)
    client.force_login(engineer)
    url = reverse("manufacturing:prediction_detail", args=[prediction.pk])
    assert "columns not used by the model: " in _body(client.get(url).content.decode())
    zh = _body(client.get(url, **ZH).content.decode())
    assert "模型未使用的列：" in zh and "不是数字；已丢弃" in zh
    for source in ("columns not used by the model", "is not a number", "readings of this machine"):
        assert source not in zh, source
    # a running prediction's progress, polled by the page
    Prediction.objects.filter(pk=prediction.pk).update(status=JobStatus.RUNNING,
                                                       progress_message="scoring with the calibrated models")
    live = client.get(reverse("manufacturing:prediction_status", args=[prediction.pk]), **ZH).content.decode()
    assert "正在用校准模型评分" in live and "scoring with" not in live


def test_a_failure_reason_quoted_in_a_review_reason_is_shown_in_chinese(client, engineer, messy_batch):
    prediction = Prediction.objects.filter(batch=messy_batch).first()
    review = decisions.review_decision({"fallback_reason": "sensors missing for the failure model: sensor_7"},
                                       {}, input_issues=[])
    Prediction.objects.filter(pk=prediction.pk).update(result={**prediction.result, **review})
    client.force_login(engineer)
    zh = _body(client.get(reverse("manufacturing:prediction_detail", args=[prediction.pk]), **ZH)
               .content.decode())
    box = zh.split('id="review-reasons"')[1].split("</section>")[0]
    assert "（缺少故障模型所需的传感器：sensor_7）" in box
    assert "sensors missing for the failure model" not in box


@pytest.fixture
def alerted_machine(engineer):
    decision = decisions.alert_decision({"failure_probability": 0.97, "rul_estimate": 8.4,
                                         "horizon_unit": "cycles"}, [0.9])
    machine = Machine.objects.create(machine_id="ENG-A", horizon=30, horizon_unit="cycles", time_axis="cycle")
    prediction = Prediction.objects.create(
        owner=engineer, machine=machine, status=JobStatus.SUCCEEDED, failure_probability=0.97, horizon=30,
        horizon_unit="cycles", rul_estimate=8.4, finished_at=timezone.now(), alert_level="critical",
        result={"alert": decisions.alert_block(decision), "notes": []})
    Alert.objects.create(machine=machine, prediction=prediction, level=decision["level"],
                         reasons=decision["reasons"], failure_probability=0.97, lead_time=8.4,
                         lead_time_unit="cycles", recommendation=decision["recommendation_en"],
                         recommendation_zh=decision["recommendation_zh"])
    return machine


def test_alerts_page_in_chinese_with_unbroken_status_words(client, engineer, alerted_machine):
    client.force_login(engineer)
    english = client.get(reverse("manufacturing:alerts")).content.decode()
    assert "failure probability" in english and "consecutive evaluations" in english
    zh = client.get(reverse("manufacturing:alerts"), **ZH).content.decode()
    table = zh.split('id="alerts"')[1].split("</table>")[0]
    assert "故障概率 97.0% ≥ 50.0%" in table and "严重" in table and "未处理" in table
    for source in ("failure probability", "consecutive evaluations", "remaining life", "critical:", "cycles"):
        assert source not in table, source
    # the status and level cells do not break "严重" / "未处理" one character per line
    assert "manufacturing/manufacturing.css" in zh
    css = (Path(__file__).resolve().parents[1] / "static/manufacturing/manufacturing.css").read_text()
    assert "#alerts td:nth-child(2), #alerts td:nth-child(3)" in css and "white-space: nowrap" in css
    row = table.split('data-alert="')[1]
    level_cell, status_cell = row.split("<td")[2], row.split("<td")[3]
    assert "严重" in level_cell and "未处理" in status_cell
    assert 'class="nowrap"' in level_cell and 'class="nowrap"' in status_cell


def test_csv_template_reads_back_cleanly_and_is_linked_from_the_upload_page(
        client, engineer, active_model, run_jobs, llm_off):
    client.force_login(engineer)
    upload = client.get(reverse("manufacturing:upload"), **ZH).content.decode()
    assert "下载 CSV 模板" in upload and reverse("manufacturing:csv_template") in upload
    assert reverse("manufacturing:csv_template") == "/manufacturing/upload/template.csv"
    response = client.get(reverse("manufacturing:csv_template"))
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    body = response.content
    header = body.decode("utf-8-sig").splitlines()[0].split(",")
    assert header[:2] == ["machine_id", "cycle"]
    assert set(active_model.metadata["sensors"]) <= set(header)  # what the active model needs
    # the real ingest reads it without an error or a warning
    result = ingest_csv(io.BytesIO(body), source="template.csv")
    assert result.errors == [] and result.warnings == [] and len(result.machines) == 2
    # and uploaded as it is, each machine gets a calibrated prediction
    batch = services.upload_create(owner=engineer, upload=SimpleUploadedFile("template.csv", body))
    run_jobs(batch=batch)
    batch.refresh_from_db()
    assert batch.status == Batch.Status.DONE and batch.errors == [] and batch.warnings == []
    predictions = list(Prediction.objects.filter(batch=batch))
    assert len(predictions) == 2
    assert all(p.status in (JobStatus.SUCCEEDED, JobStatus.NEEDS_REVIEW) for p in predictions)
    assert all(p.failure_probability is not None for p in predictions)


def test_csv_template_without_a_model_has_the_cmapss_columns(client, engineer):
    client.force_login(engineer)
    body = client.get(reverse("manufacturing:csv_template")).content
    header = body.decode("utf-8-sig").splitlines()[0].split(",")
    assert header[2:5] == ["op_setting_1", "op_setting_2", "op_setting_3"] and "sensor_21" in header
    result = ingest_csv(io.BytesIO(body), source="template.csv")
    assert result.errors == [] and result.warnings == [] and result.constant_sensors == []
