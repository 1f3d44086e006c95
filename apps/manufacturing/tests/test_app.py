"""The Django side without extra processes: uploads, pushes, predictions (LLM step off), alerts,
bad input, roles, pages and exports. The end-to-end tests with a real worker and the real model
service are in test_e2e.py."""
from __future__ import annotations

import csv
import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from apps.manufacturing.models import Alert, Machine, Prediction, ReadingChunk, Sensor
from apps.manufacturing.tests.fixtures import *  # noqa: F403
from apps.manufacturing.tests.fixtures import wide_csv
from core.models import Batch, JobStatus

pytestmark = pytest.mark.django_db

# held-out engines (fail at: 81 → 240, 85 → 188, 91 → 135, 92 → 341 cycles), cut late (high risk) or early
FLEET = {81: 60, 85: 180, 91: 120, 92: 120}


def _results_csv(client, batch_id) -> list[dict]:
    response = client.get(f"/api/v1/manufacturing/uploads/{batch_id}/results.csv")
    assert response.status_code == 200, response.content
    text = response.content.decode("utf-8-sig")
    return list(csv.DictReader(io.StringIO(text)))


def _upload(client, data: bytes, name="fleet.csv"):
    return client.post("/api/v1/manufacturing/uploads/", {"file": SimpleUploadedFile(name, data, "text/csv")},
                       format="multipart")


def test_upload_ranks_machines_and_raises_alerts(engineer_client, active_model, fd001_frame, run_jobs,
                                                 llm_off):
    response = _upload(engineer_client, wide_csv(fd001_frame, FLEET))
    assert response.status_code == 202, response.content
    body = response.json()
    assert body["results_url"].endswith(f"/api/v1/manufacturing/uploads/{body['id']}/results.csv")
    batch = Batch.objects.get(pk=body["id"])
    run_jobs(batch=batch)
    detail = engineer_client.get(body["url"]).json()
    progress = detail["progress"]
    assert progress["total"] == 4 and progress["done"] == 4 and progress["failed"] == 0
    assert detail["status"] == "done"
    assert detail["ingest"]["format"] == "wide" and detail["ingest"]["time_axis"] == "cycle"

    rows = {r["machine_id"]: r for r in _results_csv(engineer_client, batch.pk)}
    assert set(rows) == {f"ENG-{u}" for u in FLEET}
    for r in rows.values():
        assert r["status"] == "succeeded" and r["horizon"] == "30.0" and r["llm_status"] == "disabled"
    # engines cut near their end are at risk; engines cut early are not
    assert float(rows["ENG-85"]["failure_probability"]) > 0.8 and float(rows["ENG-85"]["rul_estimate"]) < 30
    assert float(rows["ENG-91"]["failure_probability"]) > 0.5
    for low in ("ENG-81", "ENG-92"):
        assert float(rows[low]["failure_probability"]) < 0.1 and float(rows[low]["rul_estimate"]) > 60
        assert rows[low]["alert"] == "none"
    assert rows["ENG-85"]["alert"] in ("warning", "critical") and rows["ENG-85"]["drivers"]

    ranked = engineer_client.get("/api/v1/manufacturing/machines/").json()["results"]
    order = [m["machine_id"] for m in ranked]
    assert set(order[:2]) == {"ENG-85", "ENG-91"} and set(order[2:]) == {"ENG-81", "ENG-92"}
    assert [m["rank"] for m in ranked] == [1, 2, 3, 4]
    top = ranked[0]
    assert top["failure_probability"] >= ranked[1]["failure_probability"]
    assert top["alert"]["level"] in ("warning", "critical") and top["alert"]["lead_time"] is not None
    assert {"failure_probability", "horizon", "rul_estimate", "drivers", "alert"} <= set(top)
    alert = Alert.objects.get(machine__machine_id="ENG-85")
    assert alert.status == "open" and alert.recommendation and alert.reasons
    # sensors are rows with units; readings stored compactly, one chunk per machine
    assert Sensor.objects.get(name="sensor_2").unit == "°R"
    assert ReadingChunk.objects.filter(machine__machine_id="ENG-85").get().steps == 180


def test_push_moves_probability_and_updates_the_same_alert(engineer_client, active_model, fd001_frame,
                                                           run_jobs, llm_off):
    # engine 92 (fails at 341): upload its first 150 cycles, then push cycles 151..330 in wide items
    batch = Batch.objects.get(pk=_upload(engineer_client, wide_csv(fd001_frame, {92: 150})).json()["id"])
    run_jobs(batch=batch)
    machine = Machine.objects.get(machine_id="ENG-92")
    before = machine.failure_probability
    assert before is not None and before < 0.2 and not Alert.objects.filter(machine=machine).exists()

    g = fd001_frame[fd001_frame["machine_id"] == "92"].set_index("cycle")
    sensors = ["op_setting_1", "op_setting_2", "op_setting_3"] + [f"sensor_{i}" for i in range(1, 22)]
    items = [{"cycle": int(c), **{s: float(g.loc[c, s]) for s in sensors}} for c in range(151, 331)]
    response = engineer_client.post("/api/v1/manufacturing/machines/ENG-92/readings/", {"readings": items},
                                    format="json")
    assert response.status_code == 202, response.content
    body = response.json()
    assert body["status"] == "queued"
    assert body["url"].endswith(f"/api/v1/manufacturing/predictions/{body['id']}/")
    run_jobs(predictions=[Prediction.objects.get(pk=body["id"])])
    after = engineer_client.get(body["url"]).json()
    assert after["status"] == "succeeded"
    assert after["failure_probability"] > 0.8 > before and after["rul_estimate"] < 20
    assert after["alert"]["level"] in ("warning", "critical")
    machine.refresh_from_db()
    assert machine.failure_probability == after["failure_probability"]
    assert machine.chunks.count() == 2

    # a second push confirms: the same alert is updated, not a new one
    more = [{"cycle": int(c), "sensor": s, "value": float(g.loc[c, s])}
            for c in range(331, 336) for s in sensors]
    second = engineer_client.post("/api/v1/manufacturing/machines/ENG-92/readings/", more,
                                  format="json").json()
    run_jobs(predictions=[Prediction.objects.get(pk=second["id"])])
    alerts = Alert.objects.filter(machine=machine)
    assert alerts.count() == 1 and alerts.get().updates == 2

    # acknowledge, then resolve through the API
    alert_url = f"/api/v1/manufacturing/alerts/{alerts.get().pk}/"
    ack = engineer_client.post(alert_url + "acknowledge/", {"note": "crew informed"}, format="json").json()
    assert ack["status"] == "acknowledged" and ack["acknowledged_by"] == "engineer"
    res = engineer_client.post(alert_url + "resolve/", {"note": "HPC module replaced"}, format="json").json()
    assert res["status"] == "resolved" and res["note"] == "HPC module replaced" and res["resolved_at"]
    again = engineer_client.post(alert_url + "resolve/", {}, format="json")
    assert again.status_code == 409 and "already resolved" in again.json()["error"]["message"]
    assert engineer_client.get("/api/v1/manufacturing/alerts/?status=resolved").json()["count"] == 1


def test_bad_file_names_rows_and_sensors_and_other_machines_go_on(engineer_client, active_model, fd001_frame,
                                                                  run_jobs, llm_off):
    text = wide_csv(fd001_frame, {81: 40, 84: 60}).decode()
    lines = text.splitlines()
    header = lines[0].split(",")
    s2 = header.index("sensor_2")
    # a non-numeric value (file row 6), a duplicated timestamp, out-of-order rows
    row = lines[5].split(",")
    row[s2] = "ERR"
    lines[5] = ",".join(row)
    lines.insert(10, lines[9])
    lines[20], lines[21] = lines[21], lines[20]
    # a machine whose every value is unreadable
    lines += [f"BROKEN,{c}," + ",".join(["x"] * (len(header) - 2)) for c in range(1, 4)]
    batch_id = _upload(engineer_client, ("\n".join(lines) + "\n").encode(), "bad.csv").json()["id"]
    batch = Batch.objects.get(pk=batch_id)
    run_jobs(batch=batch)
    batch.refresh_from_db()
    errors, warnings = " | ".join(batch.errors), " | ".join(batch.warnings)
    assert "row 6" in errors and "sensor_2" in errors and "ERR" in errors
    assert "duplicate" in warnings.lower() and "order" in warnings.lower()
    # FD001's constant sensors are named
    assert "sensor sensor_1 never changes" in warnings
    rows = {r["machine_id"]: r for r in _results_csv(engineer_client, batch_id)}
    # ENG-81 lost a reading ("ERR"): scored, and sent to review (decisions.review_decision); ENG-84 is clean
    assert rows["ENG-81"]["status"] == "needs_review" and rows["ENG-84"]["status"] == "succeeded"
    reasons = Prediction.objects.get(batch_id=batch_id, machine__machine_id="ENG-81").result["review_reasons"]
    assert [r["code"] for r in reasons] == ["readings_dropped"] and "ERR" in reasons[0]["text_en"]
    assert rows["BROKEN"]["status"] == "failed" and "BROKEN" in rows["BROKEN"]["error"]
    progress = engineer_client.get(f"/api/v1/manufacturing/uploads/{batch_id}/").json()["progress"]
    assert progress == {**progress, "total": 3, "done": 3, "failed": 1}


def test_unreadable_and_oversized_files(engineer_client, settings, active_model, run_jobs):
    # a file that cannot be read at all fails the upload with a message naming the file
    batch_id = _upload(engineer_client, b"just one column\n1\n2\n", "junk.csv").json()["id"]
    run_jobs(batch=Batch.objects.get(pk=batch_id))
    body = engineer_client.get(f"/api/v1/manufacturing/uploads/{batch_id}/").json()
    assert body["status"] == "failed" and "junk.csv" in body["errors"][0]
    # over the size limit: 413 before anything is stored
    settings.UPLOAD_MAX_BYTES = 2048
    response = _upload(engineer_client, b"machine_id,cycle,s1\n" + b"M1,1,1.0\n" * 400, "big.csv")
    assert response.status_code == 413
    assert "big.csv" in response.json()["error"]["message"] and "limit" in response.json()["error"]["message"]
    assert _upload(engineer_client, b"", "empty.csv").status_code == 400
    assert engineer_client.post("/api/v1/manufacturing/uploads/", {}, format="multipart").status_code == 400


def test_push_errors_are_clear(engineer_client, active_model, fd001_frame, run_jobs, llm_off):
    response = engineer_client.post("/api/v1/manufacturing/machines/NOPE-1/readings/",
                                    [{"cycle": 1, "sensor": "s", "value": 1}], format="json")
    assert response.status_code == 404
    assert "unknown machine 'NOPE-1'" in response.json()["error"]["message"]
    run_jobs(batch=Batch.objects.get(
        pk=_upload(engineer_client, wide_csv(fd001_frame, {81: 30})).json()["id"]))
    url = "/api/v1/manufacturing/machines/ENG-81/readings/"
    bad = engineer_client.post(url, [{"cycle": 31, "sensor": "sensor_2", "value": "hot"}], format="json")
    assert bad.status_code == 400
    err = bad.json()["error"]
    assert "ENG-81" in err["message"]
    assert any("sensor_2" in e and "hot" in e for e in err["details"]["readings"])
    assert engineer_client.post(url, [], format="json").status_code == 400
    assert engineer_client.post(url, {"nothing": 1}, format="json").status_code == 400
    axis = engineer_client.post(url, [{"timestamp": "2024-01-01T00:00:00", "sensor_2": 642.1}], format="json")
    assert axis.status_code == 400 and "cycle" in axis.json()["error"]["message"]
    # a good push with one bad item: stored, and the bad item reported
    ok = engineer_client.post(url, [{"cycle": 31, "sensor": "sensor_2", "value": 642.5},
                                    {"cycle": 32, "sensor": "sensor_2", "value": "??"}], format="json")
    assert ok.status_code == 202 and any("??" in e for e in ok.json()["ingest"]["errors"])


def test_no_active_model_fails_the_prediction_clearly(engineer_client, fd001_frame, run_jobs, llm_off):
    batch = Batch.objects.get(pk=_upload(engineer_client, wide_csv(fd001_frame, {81: 30})).json()["id"])
    run_jobs(batch=batch)
    p = Prediction.objects.get(batch=batch)
    assert p.status == JobStatus.FAILED and p.error_code == "no_model" and "train" in p.error_message


def test_roles(make_user, api_client_for, client, active_model):
    outsider = make_user("clerk", "finance")
    api = api_client_for(outsider)
    for name in ("machines", "alerts", "models"):
        assert api.get(f"/api/v1/manufacturing/{name}/").status_code == 403
    assert api.post("/api/v1/manufacturing/uploads/", {}, format="multipart").status_code == 403
    assert api.post("/api/v1/manufacturing/machines/X/readings/", [], format="json").status_code == 403
    client.force_login(outsider)
    for name in ("index", "upload", "alerts", "models"):
        assert client.get(reverse(f"manufacturing:{name}")).status_code == 403
    # engineers may not activate models; admins may
    engineer = make_user("eng2", "manufacturing")
    activate = f"/api/v1/manufacturing/models/{active_model.pk}/activate/"
    assert api_client_for(engineer).post(activate).status_code == 403
    admin = make_user("boss", "admin")
    assert api_client_for(admin).post(activate).status_code == 200


def test_thresholds_change_the_alert_decision(engineer_client, active_model, fd001_frame, run_jobs, llm_off):
    run_jobs(batch=Batch.objects.get(
        pk=_upload(engineer_client, wide_csv(fd001_frame, {91: 60})).json()["id"]))
    machine = Machine.objects.get(machine_id="ENG-91")
    response = engineer_client.patch("/api/v1/manufacturing/machines/ENG-91/",
                                     {"probability_threshold": 0.0, "rul_threshold": 200}, format="json")
    assert response.status_code == 200 and response.json()["probability_threshold"] == 0.0
    bad = engineer_client.patch("/api/v1/manufacturing/machines/ENG-91/", {"probability_threshold": 2},
                                format="json")
    assert bad.status_code == 400 and "probability_threshold" in bad.json()["error"]["message"]
    g = fd001_frame[fd001_frame["machine_id"] == "91"].set_index("cycle")
    items = [{"cycle": int(c), "sensor_11": float(g.loc[c, "sensor_11"])} for c in (61, 62)]
    p = engineer_client.post("/api/v1/manufacturing/machines/ENG-91/readings/", items, format="json").json()
    run_jobs(predictions=[Prediction.objects.get(pk=p["id"])])
    result = Prediction.objects.get(pk=p["id"]).result
    assert result["alert"] is not None and result["alert"]["thresholds"] == {"probability": 0.0, "rul": 200.0}
    machine.refresh_from_db()
    assert machine.alert_level in ("warning", "critical")


def test_model_service_down_keeps_the_calibrated_result_on_the_last_attempt(engineer_client, active_model,
                                                                             fd001_frame, run_jobs, settings):
    from core import model_client

    settings.LLM_ENABLED = True
    settings.MODEL_SERVICE_URL = "http://127.0.0.1:9/v1"  # nothing listens
    settings.MODEL_SERVICE_RETRIES = 0
    model_client._clients.clear()
    batch = Batch.objects.get(pk=_upload(engineer_client, wide_csv(fd001_frame, {85: 180})).json()["id"])
    from core.jobs import TransientJobError

    with pytest.raises(TransientJobError):  # first attempt: back to the queue for a retry
        run_jobs(batch=batch)
    p = Prediction.objects.get(batch=batch)
    # attempt 1 scored the machine and handed it on to the language-model pool; attempt 2 found the
    # model service down: back to the queue with the calibrated part kept (its stage)
    assert p.status == JobStatus.QUEUED and p.attempts == 2 and p.stage["state"]["out"]["failure_probability"]
    settings.JOB_MAX_ATTEMPTS = 3
    run_jobs(predictions=[p])  # last attempt: the calibrated numbers stand, the explanation is marked missing
    p.refresh_from_db()
    model_client._clients.clear()
    assert p.status == JobStatus.SUCCEEDED and p.failure_probability > 0.8
    assert p.llm["status"] == "unavailable" and "stayed unavailable" in p.llm["message"]
