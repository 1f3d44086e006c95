"""Services across their consumers: the review rule on a real job, one audit event per action (API and
HTML alike), the errors' API shape, ``MANUFACTURING_THREADS`` and the htmx status partials."""
from __future__ import annotations

import csv
import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from apps.manufacturing import services
from apps.manufacturing.models import Alert, FailureModelVersion, Machine, Prediction, TrainingRun
from apps.manufacturing.tests.fixtures import *  # noqa: F403
from apps.manufacturing.tests.fixtures import cmapss_bytes, wide_csv
from core.models import AuditEvent, Batch, JobStatus

pytestmark = pytest.mark.django_db


def _upload(client, data: bytes, name="fleet.csv"):
    return client.post("/api/v1/manufacturing/uploads/", {"file": SimpleUploadedFile(name, data, "text/csv")},
                       format="multipart")


def _events(action, obj) -> int:
    return AuditEvent.objects.filter(action=action, object_id=str(obj.pk)).count()


# --- the review rule on a real prediction ---------------------------------------------------------------
def test_a_machine_lacking_a_model_sensor_is_scored_and_sent_to_review(client, engineer, engineer_client,
                                                                       active_model, fd001_frame, run_jobs,
                                                                       llm_off):
    text = wide_csv(fd001_frame, {81: 80}).decode()
    lines = [line.split(",") for line in text.splitlines()]
    drop = lines[0].index("sensor_11")  # one of the model's sensors: the calibrated model cannot score it
    data = "\n".join(",".join(v for j, v in enumerate(row) if j != drop) for row in lines) + "\n"
    batch = Batch.objects.get(pk=_upload(engineer_client, data.encode()).json()["id"])
    run_jobs(batch=batch)

    prediction = Prediction.objects.get(batch=batch)
    assert prediction.status == JobStatus.NEEDS_REVIEW
    result = prediction.result
    assert result["mode"] == "anomaly_only" and result["failure_probability"] is None
    assert result["needs_review"] is True
    assert [r["code"] for r in result["review_reasons"]] == ["model_fallback"]
    assert "sensor_11" in result["review_reasons"][0]["text_en"]
    # every consumer takes the status: API, results CSV, the machine's latest numbers, the pages
    api = engineer_client.get(prediction.api_url()).json()
    assert api["status"] == "needs_review" and api["result"]["review_reasons"]
    csv_url = f"/api/v1/manufacturing/uploads/{batch.pk}/results.csv"
    text = engineer_client.get(csv_url).content.decode("utf-8-sig")
    [row] = list(csv.DictReader(io.StringIO(text)))
    assert row["status"] == "needs_review" and row["alert"] == "none" and row["mode"] == "anomaly_only"
    assert "sensor_11" in row["review_reasons"]
    progress = engineer_client.get(f"/api/v1/manufacturing/uploads/{batch.pk}/").json()["progress"]
    assert progress["done"] == 1 and progress["failed"] == 0
    assert Machine.objects.get(machine_id="ENG-81").last_prediction_id == prediction.pk
    client.force_login(engineer)
    page = client.get(prediction.get_absolute_url()).content.decode()
    assert 'id="review-reasons"' in page and "sensor_11" in page and "Needs review" in page
    machine_page = client.get(reverse("manufacturing:machine_detail", args=["ENG-81"])).content.decode()
    assert 'id="review-reasons"' in machine_page
    zh = client.get(prediction.get_absolute_url(), HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    assert "需要复核的原因" in zh and "校准故障模型无法评估该设备" in zh


# --- audit: one event per action, recorded by the service ----------------------------------------------
def test_each_write_is_audited_once_through_the_api_and_through_html(client, make_user, engineer,
                                                                     engineer_client, api_client_for,
                                                                     active_model, fd001_frame, llm_off):
    client.force_login(engineer)
    # upload
    api_batch = Batch.objects.get(pk=_upload(engineer_client, wide_csv(fd001_frame, {81: 30})).json()["id"])
    client.post(reverse("manufacturing:upload"),
                {"file": SimpleUploadedFile("f.csv", wide_csv(fd001_frame, {82: 30}))})
    html_batch = Batch.objects.exclude(pk=api_batch.pk).get(app="manufacturing")
    assert _events("submit", api_batch) == _events("submit", html_batch) == 1
    event = AuditEvent.objects.get(action="submit", object_id=str(html_batch.pk))
    assert event.actor == engineer and event.ip_address == "127.0.0.1" and event.detail["file"] == "f.csv"

    # thresholds
    machine = Machine.objects.create(machine_id="M-1")
    assert engineer_client.patch("/api/v1/manufacturing/machines/M-1/", {"rul_threshold": 40},
                                 format="json").status_code == 200
    assert _events("edit", machine) == 1
    assert client.post(reverse("manufacturing:machine_detail", args=["M-1"]),
                       {"probability_threshold": "0.6", "name": "press"}).status_code == 302
    assert _events("edit", machine) == 2
    machine.refresh_from_db()
    assert machine.probability_threshold == 0.6 and machine.rul_threshold is None and machine.name == "press"

    # alert acknowledge and resolve; a refused action writes nothing
    api_alert = Alert.objects.create(machine=machine, level="warning")
    html_alert = Alert.objects.create(machine=Machine.objects.create(machine_id="M-2"), level="warning")
    url = f"/api/v1/manufacturing/alerts/{api_alert.pk}/"
    assert engineer_client.post(url + "acknowledge/", {}, format="json").status_code == 200
    assert engineer_client.post(url + "resolve/", {}, format="json").status_code == 200
    again = engineer_client.post(url + "resolve/", {}, format="json")
    assert again.status_code == 409 and again.json()["error"]["code"] == "conflict"
    assert _events("review", api_alert) == 2
    for action in ("acknowledge", "resolve", "resolve"):
        response = client.post(reverse("manufacturing:alert_action", args=[html_alert.pk, action]),
                               {"note": "n"})
        assert response.status_code == 302
    assert _events("review", html_alert) == 2
    reviews = AuditEvent.objects.filter(action="review", object_id=str(html_alert.pk)).order_by("id")
    assert [e.detail["action"] for e in reviews] == ["acknowledge", "resolve"]

    # model activation (admin)
    admin = make_user("boss", "admin")
    admin_client = api_client_for(admin)
    assert admin_client.post(f"/api/v1/manufacturing/models/{active_model.pk}/activate/").status_code == 200
    assert _events("activate", active_model) == 2  # registered active (by "system"), then the API call
    client.force_login(admin)
    client.post(reverse("manufacturing:model_activate", args=[active_model.pk]))
    by_admin = AuditEvent.objects.filter(action="activate", object_id=str(active_model.pk), actor=admin)
    assert by_admin.count() == 2

    # training (HTML only)
    client.post(reverse("manufacturing:models"), {
        "file": SimpleUploadedFile("h.txt", cmapss_bytes(fd001_frame, {1: 200})), "data_format": "cmapss",
        "horizon": "30", "name": "x"})
    assert _events("train", TrainingRun.objects.get()) == 1

    # pushed readings (API only)
    body = engineer_client.post("/api/v1/manufacturing/machines/M-1/readings/",
                                [{"cycle": 1, "sensor": "sensor_2", "value": 642.5}], format="json").json()
    assert _events("submit", Prediction.objects.get(pk=body["id"])) == 1

    # reads: one view event per request, the same from both sides
    client.force_login(engineer)
    client.get(reverse("manufacturing:machine_detail", args=["M-1"]))
    engineer_client.get("/api/v1/manufacturing/machines/M-1/")
    assert _events("view", machine) == 2
    client.get(reverse("manufacturing:batch_export", args=[api_batch.pk, "csv"]))
    engineer_client.get(f"/api/v1/manufacturing/uploads/{api_batch.pk}/results.csv")
    assert _events("export", api_batch) == 2


# --- errors ---------------------------------------------------------------------------------------------
def test_rejected_readings_keep_their_api_shape(engineer_client, active_model, fd001_frame, run_jobs,
                                                llm_off):
    run_jobs(batch=Batch.objects.get(
        pk=_upload(engineer_client, wide_csv(fd001_frame, {81: 30})).json()["id"]))
    url = "/api/v1/manufacturing/machines/ENG-81/readings/"
    bad = engineer_client.post(url, [{"cycle": 31, "sensor": "sensor_2", "value": "hot"}], format="json")
    error = bad.json()["error"]
    assert bad.status_code == 400 and set(error) == {"status", "code", "message", "details"}
    assert error["status"] == 400 and error["code"] == "invalid_readings"
    assert error["message"].startswith("machine ENG-81: ") and error["message"].count("ENG-81") == 1
    assert list(error["details"]) == ["readings"] and "hot" in error["details"]["readings"][0]
    axis = engineer_client.post(url, [{"timestamp": "2024-01-01T00:00:00", "sensor_2": 642.1}], format="json")
    error = axis.json()["error"]
    assert axis.status_code == 400 and error["code"] == "time_axis_mismatch" and "details" not in error
    assert error["message"].count("machine ENG-81") == 1
    with pytest.raises(services.ReadingsRejected) as exc:
        services.readings_push(owner=Machine.objects.get(machine_id="ENG-81").predictions.first().owner,
                               machine=Machine.objects.get(machine_id="ENG-81"), payload=[])
    assert exc.value.status == 400 and exc.value.errors == [] and exc.value.details is None


# --- MANUFACTURING_THREADS ------------------------------------------------------------------------------
def test_manufacturing_threads_sets_the_limit_of_prediction_and_training(settings, monkeypatch,
                                                                         engineer_client, active_model,
                                                                         fd001_frame, run_jobs, llm_off):
    import threadpoolctl

    from apps.manufacturing import failure_model as fm

    seen: list = []  # the limits asked for
    inside: list = []  # the OpenMP threads in force while the model computes
    real_limits = threadpoolctl.threadpool_limits

    def spy(limits=None, user_api=None):
        seen.append(limits)
        return real_limits(limits=limits, user_api=user_api)

    def openmp_threads():
        inside.extend(i["num_threads"] for i in threadpoolctl.threadpool_info() if i["user_api"] == "openmp")

    real_predict, real_train = fm.FailureModel._predict, fm.training._train_failure_model

    def predict(self, *args, **kwargs):
        openmp_threads()
        return real_predict(self, *args, **kwargs)

    def train(*args, **kwargs):
        openmp_threads()
        return real_train(*args, **kwargs)

    monkeypatch.setattr(threadpoolctl, "threadpool_limits", spy)
    monkeypatch.setattr(fm.FailureModel, "_predict", predict)
    monkeypatch.setattr(fm.training, "_train_failure_model", train)
    settings.MANUFACTURING_THREADS = 3

    batch = Batch.objects.get(pk=_upload(engineer_client, wide_csv(fd001_frame, {85: 150})).json()["id"])
    run_jobs(batch=batch)
    assert Prediction.objects.get(batch=batch).status in (JobStatus.SUCCEEDED, JobStatus.NEEDS_REVIEW)
    assert seen and set(seen) == {3}, seen
    assert inside and set(inside) == {3}, inside

    seen.clear()
    inside.clear()
    history = cmapss_bytes(fd001_frame, {u: 400 for u in range(1, 7)})
    frame, _info = services.training_frame(io.BytesIO(history), data_format="cmapss")
    services.train_from_frame(frame, horizon=30)
    assert seen and set(seen) == {3}, seen
    assert inside and set(inside) == {3}, inside


# --- htmx status partials (core.htmx.job_status_response) -----------------------------------------------
def test_status_partials_refresh_the_page_once_the_job_is_final(client, engineer, active_model, fd001_frame,
                                                                run_jobs, llm_off):
    batch = services.upload_create(owner=engineer,
                                   upload=SimpleUploadedFile("f.csv", wide_csv(fd001_frame, {81: 40})))
    client.force_login(engineer)
    run_jobs(batch=batch)
    prediction = Prediction.objects.get(batch=batch)
    url = reverse("manufacturing:prediction_status", args=[prediction.pk])
    assert client.get(url, HTTP_HX_REQUEST="true")["HX-Refresh"] == "true"
    Prediction.objects.filter(pk=prediction.pk).update(status=JobStatus.RUNNING)
    assert "HX-Refresh" not in client.get(url, HTTP_HX_REQUEST="true")
    run = TrainingRun.objects.create(owner=engineer, original_filename="h.csv")
    url = reverse("manufacturing:training_status", args=[run.pk])
    assert client.get(url).status_code == 200 and "HX-Refresh" not in client.get(url, HTTP_HX_REQUEST="true")
    TrainingRun.objects.filter(pk=run.pk).update(status=JobStatus.FAILED)
    assert client.get(url, HTTP_HX_REQUEST="true")["HX-Refresh"] == "true"
    assert FailureModelVersion.objects.count() == 1
