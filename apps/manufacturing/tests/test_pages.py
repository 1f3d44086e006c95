"""Pages and exports of the manufacturing app, in English and Chinese (LLM step off)."""
from __future__ import annotations

import io
import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from apps.manufacturing import services
from apps.manufacturing.models import Alert, Machine, TrainingRun
from apps.manufacturing.tests.fixtures import *  # noqa: F403
from apps.manufacturing.tests.fixtures import cmapss_bytes, wide_csv
from core.models import Batch, JobStatus

pytestmark = pytest.mark.django_db


@pytest.fixture
def scored_fleet(engineer, active_model, fd001_frame, run_jobs, llm_off):
    batch = services.upload_create(owner=engineer, upload=SimpleUploadedFile(
        "fleet.csv", wide_csv(fd001_frame, {81: 60, 85: 180, 91: 125})))
    run_jobs(batch=batch)
    return batch


def test_upload_page_posts_and_shows_live_progress(client, engineer, active_model, fd001_frame, llm_off):
    client.force_login(engineer)
    page = client.get(reverse("manufacturing:upload"))
    assert page.status_code == 200 and b'name="file"' in page.content
    response = client.post(reverse("manufacturing:upload"),
                           {"file": SimpleUploadedFile("f.txt", cmapss_bytes(fd001_frame, {81: 40}))})
    batch = Batch.objects.get(app="manufacturing")
    assert response.status_code == 302 and response["Location"] == reverse("manufacturing:batch_detail",
                                                                           args=[batch.pk])
    detail = client.get(response["Location"])
    assert b'hx-trigger="every 2s"' in detail.content and b'role="progressbar"' in detail.content
    assert client.get(reverse("manufacturing:batch_results", args=[batch.pk])).status_code == 200
    # the server checks the size limit too
    empty = client.post(reverse("manufacturing:upload"), {"file": SimpleUploadedFile("e.csv", b"")})
    assert empty.status_code == 400


def test_fleet_machine_alert_and_prediction_pages(client, engineer, scored_fleet):
    client.force_login(engineer)
    index = client.get(reverse("manufacturing:index")).content.decode()
    assert index.index("ENG-85") < index.index("ENG-81")  # ranked by risk
    assert "<polyline" in index and "calibrated classifier" in index

    machine = client.get(reverse("manufacturing:machine_detail", args=["ENG-85"]))
    html = machine.content.decode()
    assert machine.status_code == 200
    for needle in ('id="chart-rul"', 'id="chart-probability"', 'id="sensor-charts"', 'id="drivers"',
                   'id="calibrated-probability"', "language model", "Recommendation", 'id="thresholds"'):
        assert needle in html, needle
    data = json.loads(html.split('id="chart-data" type="application/json">')[1].split("</script>")[0])
    assert len(data["history"]) == 50 and data["sensors"] and data["sensors"][0]["driver"]
    assert all(len(s["values"]) <= 300 for s in data["sensors"])
    # thresholds form
    bad = client.post(reverse("manufacturing:machine_detail", args=["ENG-85"]),
                      {"probability_threshold": "7"})
    assert bad.status_code == 400
    ok = client.post(reverse("manufacturing:machine_detail", args=["ENG-85"]),
                     {"probability_threshold": "0.6", "rul_threshold": "20", "name": "Line 3 engine"})
    assert ok.status_code == 302
    assert Machine.objects.get(machine_id="ENG-85").probability_threshold == 0.6
    assert client.get(reverse("manufacturing:machine_detail", args=["NOPE"])).status_code == 404

    prediction = Machine.objects.get(machine_id="ENG-85").last_prediction
    assert client.get(prediction.get_absolute_url()).status_code == 200

    alerts = client.get(reverse("manufacturing:alerts")).content.decode()
    alert = Alert.objects.get(machine__machine_id="ENG-85")
    assert str(alert.pk) in alerts and "Acknowledge" in alerts
    client.post(reverse("manufacturing:alert_action", args=[alert.pk, "acknowledge"]), {"note": "seen"})
    alert.refresh_from_db()
    assert alert.status == "acknowledged" and alert.acknowledged_by == engineer
    client.post(reverse("manufacturing:alert_action", args=[alert.pk, "resolve"]), {"note": "fixed"})
    alert.refresh_from_db()
    assert alert.status == "resolved" and alert.note == "fixed"


def test_pages_in_chinese(client, engineer, scored_fleet):
    client.force_login(engineer)
    for name, args in (("index", []), ("alerts", []), ("models", []), ("upload", []),
                       ("machine_detail", ["ENG-85"]), ("batch_detail", [scored_fleet.pk])):
        html = client.get(reverse(f"manufacturing:{name}", args=args),
                          HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
        assert "设备" in html or "预测" in html or "告警" in html or "模型" in html, name
    html = client.get(reverse("manufacturing:machine_detail", args=["ENG-85"]),
                      HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    assert "校准" in html and "剩余寿命" in html and "比早期基线" in html


def test_exports(client, engineer, scored_fleet):
    from openpyxl import load_workbook

    client.force_login(engineer)
    fleet = client.get(reverse("manufacturing:fleet_export", args=["csv"])).content.decode("utf-8-sig")
    assert fleet.splitlines()[0].startswith("rank,machine_id,name,failure_probability")
    assert fleet.splitlines()[1].split(",")[1] == "ENG-85"
    xlsx = client.get(reverse("manufacturing:fleet_export", args=["xlsx"]))
    ws = load_workbook(io.BytesIO(xlsx.content)).active
    assert [c.value for c in ws[1]][:2] == ["rank", "machine_id"] and ws.max_row == 4
    results = client.get(reverse("manufacturing:batch_export", args=[scored_fleet.pk, "xlsx"]))
    ws = load_workbook(io.BytesIO(results.content)).active
    header = [c.value for c in ws[1]]
    assert {"machine_id", "failure_probability", "horizon", "rul_estimate", "drivers", "alert",
            "llm_failure_probability", "llm_rationale"} <= set(header)
    alerts = client.get(reverse("manufacturing:alerts_export", args=["csv"])).content.decode("utf-8-sig")
    assert "ENG-85" in alerts
    assert client.get(reverse("manufacturing:alerts_export", args=["pdf"])).status_code == 404


def test_training_from_the_models_page(client, make_user, fd001_frame, llm_off):
    from core.services import job_run_inline

    admin = make_user("boss", "admin")
    client.force_login(admin)
    history = cmapss_bytes(fd001_frame, {u: 400 for u in range(1, 13)})  # 12 whole engines, run to failure
    response = client.post(reverse("manufacturing:models"), {
        "file": SimpleUploadedFile("train_small.txt", history), "data_format": "cmapss", "horizon": "30",
        "name": "plant history", "activate": "on"})
    run = TrainingRun.objects.get()
    assert response.status_code == 302 and response["Location"] == run.get_absolute_url()
    job_run_inline(model=TrainingRun, job_id=str(run.pk), handler=services.training_process, worker="test")
    run.refresh_from_db()
    assert run.status == JobStatus.SUCCEEDED, run.error_message
    version = run.created_version
    assert version.is_active and version.metadata["machines"] == 12 and version.cv_metrics["oof_auc"] > 0.9
    page = client.get(reverse("manufacturing:models")).content.decode()
    assert version.model_version in page and "plant history" in page
    # a history that is not run-to-failure data fails clearly
    client.post(reverse("manufacturing:models"), {
        "file": SimpleUploadedFile("junk.csv", b"a,b\n1,2\n"), "data_format": "auto", "horizon": "30",
        "name": "x"})
    bad = TrainingRun.objects.exclude(pk=run.pk).get()
    job_run_inline(model=TrainingRun, job_id=str(bad.pk), handler=services.training_process, worker="test")
    bad.refresh_from_db()
    assert bad.status == JobStatus.FAILED and "junk.csv" in bad.error_message


def test_admin_lists_every_model_read_only(client, scored_fleet, django_user_model):
    from apps.manufacturing.models import FailureModelVersion, Prediction, ReadingChunk, Sensor

    admin = django_user_model.objects.create_superuser("root", "root@example.com", "pw-Test-12345")
    client.force_login(admin)
    for name in ("machine", "sensor", "readingchunk", "failuremodelversion", "prediction", "trainingrun",
                 "alert"):
        assert client.get(f"/admin/manufacturing/{name}/").status_code == 200, name
        assert client.get(f"/admin/manufacturing/{name}/add/").status_code == 403, name
    assert client.get("/admin/manufacturing/prediction/?status__exact=succeeded").status_code == 200
    assert client.get("/admin/manufacturing/machine/?q=ENG-85").status_code == 200
    prediction = Prediction.objects.filter(machine__machine_id="ENG-85").first()
    page = client.get(f"/admin/manufacturing/prediction/{prediction.pk}/change/").content.decode()
    assert 'name="result"' not in page and 'name="status"' not in page  # job results are read-only
    chunk = ReadingChunk.objects.first()
    assert client.get(f"/admin/manufacturing/readingchunk/{chunk.pk}/change/").status_code == 200
    version = FailureModelVersion.objects.get()
    assert 'name="is_active"' not in client.get(
        f"/admin/manufacturing/failuremodelversion/{version.pk}/change/").content.decode()
    sensor = Sensor.objects.get(name="sensor_2")
    assert 'name="unit"' in client.get(f"/admin/manufacturing/sensor/{sensor.pk}/change/").content.decode()
