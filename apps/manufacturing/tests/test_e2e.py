"""End to end with a real Celery worker and the real model service (embedded SmolLM2):
an FD001 upload (held-out engines, one bad value, one unreadable machine) to ranked predictions,
the language model's constrained explanation and alerts; then a push of readings that moves a
machine's probability."""
from __future__ import annotations

import csv
import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from apps.manufacturing.models import Alert, Prediction
from apps.manufacturing.tests.fixtures import *  # noqa: F403
from apps.manufacturing.tests.fixtures import cmapss_bytes
from conftest import wait_for

pytestmark = [pytest.mark.live]

# held-out engines: 85 fails at 188 cycles, 91 at 135, 92 at 341
ENGINES = {85: 178, 91: 120, 92: 150}


def _progress(client, url):
    return client.get(url).json()


def test_fd001_upload_then_push(celery_worker, active_model, engineer_client, fd001_frame):
    data = cmapss_bytes(fd001_frame, ENGINES).decode().splitlines()
    fields = data[3].split()
    fields[6] = "bad"  # sensor_2 of engine 85, cycle 4: not a number (file row 4)
    data[3] = " ".join(fields)
    data.append("7 1 " + " ".join(["x"] * 24))  # engine 7: nothing readable
    upload = SimpleUploadedFile("train_like_FD001.txt", ("\n".join(data) + "\n").encode())
    response = engineer_client.post("/api/v1/manufacturing/uploads/", {"file": upload}, format="multipart")
    assert response.status_code == 202, response.content
    url = response.json()["url"]
    body = wait_for(lambda: (b := _progress(engineer_client, url))["status"] in ("done", "failed") and b,
                    timeout=240, interval=1, message="the upload to finish")
    progress = body["progress"]
    assert progress["total"] == 4 and progress["done"] == 4 and progress["failed"] == 1
    assert body["ingest"]["format"] == "cmapss"
    assert any("row 4" in e and "sensor_2" in e and "bad" in e for e in body["errors"]), body["errors"]

    text = engineer_client.get(body["results_url"]).content.decode("utf-8-sig")
    rows = {r["machine_id"]: r for r in csv.DictReader(io.StringIO(text))}
    assert set(rows) == {"85", "91", "92", "7"}
    assert rows["7"]["status"] == "failed" and "7" in rows["7"]["error"]
    for mid in ("85", "91", "92"):
        r = rows[mid]
        # engine 85 lost its "bad" reading: scored, and sent to review (decisions.review_decision)
        assert r["status"] == ("needs_review" if mid == "85" else "succeeded"), r
        # The embedded 135M model's explanation may be withheld by the gate (test_live_explanations checks
        # that what is stored is what the model answered); the calibrated half is there either way.
        assert r["llm_status"] in ("ok", "rejected"), r
        if r["llm_status"] == "ok":
            assert 0.0 <= float(r["llm_failure_probability"]) <= 1.0
            assert r["llm_rationale"] or r["llm_recommended_action"]
            assert r["disagreement"] in ("true", "false")
        else:
            assert not r["llm_rationale"] and not r["llm_recommended_action"], r
    assert float(rows["85"]["failure_probability"]) > 0.8 and float(rows["92"]["failure_probability"]) < 0.2
    p85 = Prediction.objects.get(machine__machine_id="85")
    assert p85.prompt_template == "manufacturing.failure_explanation" and p85.prompt_version == 4
    assert p85.timings["llm_s"] > 0 and p85.result["llm"]["usage"]["completion_tokens"] <= 200
    assert p85.model_version == active_model.model_version

    ranked = engineer_client.get("/api/v1/manufacturing/machines/").json()["results"]
    assert [m["machine_id"] for m in ranked][-1] in ("92", "7")
    assert ranked[0]["machine_id"] in ("85", "91") and ranked[0]["alert"] is not None
    assert Alert.objects.filter(machine__machine_id="85", status="open").exists()
    assert not Alert.objects.filter(machine__machine_id="92").exists()

    # push engine 92's later cycles (long items): its probability moves up and an alert opens
    g = fd001_frame[fd001_frame["machine_id"] == "92"].set_index("cycle")
    sensors = [f"sensor_{i}" for i in (2, 3, 4, 7, 8, 9, 11, 12, 13, 14, 15, 17, 20, 21)] + \
        ["sensor_1", "sensor_5", "sensor_6", "sensor_10", "sensor_16", "sensor_18", "sensor_19",
         "op_setting_1", "op_setting_2", "op_setting_3"]
    items = [{"cycle": int(c), "sensor": s, "value": float(g.loc[c, s])}
             for c in range(151, 331) for s in sensors]
    before = float(rows["92"]["failure_probability"])
    pushed = engineer_client.post("/api/v1/manufacturing/machines/92/readings/", {"readings": items},
                                  format="json")
    assert pushed.status_code == 202, pushed.content
    purl = pushed.json()["url"]
    finished = ("succeeded", "needs_review", "failed")
    done = wait_for(lambda: (b := engineer_client.get(purl).json())["status"] in finished and b,
                    timeout=180, interval=1, message="the pushed prediction")
    assert done["status"] == "succeeded", done["error"]
    assert done["failure_probability"] > 0.8 > before and done["rul_estimate"] < 30
    assert done["alert"] is not None and done["alert"]["lead_time"] is not None
    assert done["llm"]["status"] in ("ok", "rejected")  # the gate may withhold the small model's answer
    machine = engineer_client.get("/api/v1/manufacturing/machines/92/").json()
    assert machine["failure_probability"] == done["failure_probability"]
    assert machine["alert"]["status"] == "open"
