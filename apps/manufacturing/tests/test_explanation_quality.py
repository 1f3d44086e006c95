"""The explanation's gate (sensor names that exist, numbers that match the features and the prediction,
no loops or debris) and graceful degradation: with a model service that refuses every request (4xx),
a prediction still returns its probability, remaining life and drivers, with ``llm.status`` and the
reason."""
from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from apps.manufacturing.decisions import explanation_drivers, explanation_gate
from apps.manufacturing.models import Prediction
from apps.manufacturing.services.llm import SYMBOLS, explanation_valid
from apps.manufacturing.tests.fixtures import *  # noqa: F403
from apps.manufacturing.tests.fixtures import wide_csv
from conftest import free_port
from core.models import Batch, JobStatus

pytestmark = pytest.mark.django_db

SUMMARY = {"steps": 150, "sensors": {
    "sensor_11": {"last": 47.83, "baseline": 47.3, "deviation_sigma": 2.41, "trend": "rising",
                  "slope_per_step": 0.004, "unit": "psia", "symbol": "Ps30"},
    "sensor_4": {"last": 1419.2, "baseline": 1401.1, "deviation_sigma": 1.87, "trend": "rising",
                 "slope_per_step": 0.08, "unit": "°R", "symbol": "T50"},
    "sensor_7": {"last": 552.1, "baseline": 553.9, "deviation_sigma": -1.52, "trend": "falling",
                 "slope_per_step": -0.01, "unit": "psia", "symbol": "P30"}}}
PREDICTION = {"failure_probability": 0.8734, "rul_estimate": 24.6, "anomaly_score": 0.61,
              "anomaly_threshold": 0.55, "horizon": 30, "horizon_unit": "cycles",
              "drivers": [{"sensor": "sensor_11", "deviation_sigma": 2.41}, {"sensor": "sensor_4"}]}
GOOD = {"failure_probability": 0.85, "horizon": "30 cycles",
        "drivers": ["sensor_11 (Ps30): +2.4σ, rising", "T50: +1.9σ above baseline, rising"],
        "recommended_action": "Inspect the HPC within 20 cycles.",
        "rationale": "The calibrated probability is 0.87 and the remaining life about 25 cycles."}


def _gate(answer, machine="FD001-085"):
    return explanation_gate(answer, prediction=PREDICTION, summary=SUMMARY, symbols=SYMBOLS, machine=machine)


def test_a_grounded_explanation_passes_and_names_its_drivers():
    assert _gate(GOOD) == []
    assert explanation_drivers(GOOD, SYMBOLS) == ["sensor_11", "sensor_4"]
    assert _gate({**GOOD, "rationale": "FD001-085 is at risk (0.87)."}) == []  # the label's digits
    v2 = explanation_valid({"failure_probability": 0.8,
                            "drivers": [{"sensor": "sensor_11", "evidence": "+2.41σ"}],
                            "recommended_action": "Inspect within 10 cycles.", "rationale": "Risk 87%."})
    assert v2["drivers"] == ["sensor_11: +2.41σ"] and v2["driver_sensors"] == ["sensor_11"]


@pytest.mark.parametrize("change, expected", [
    ({"drivers": ["sensor_99 is rising"]}, "“sensor_99” does not exist"),
    ({"drivers": ["T2 is high"]}, "“T2” does not exist"),  # a real symbol, but not of a scored sensor
    ({"drivers": ["sensor 11: +3.7σ"]}, "3.7 matches none"),
    ({"rationale": "The probability is 0.42."}, "0.42 matches none"),
    ({"rationale": "Remaining life is 80 cycles."}, "80 matches none"),
    ({"recommended_action": "Inspect within 90 cycles."}, "90 matches none"),
    ({"rationale": "risk is high. risk is high. risk is high."}, "repeated 3 times"),
    ({"rationale": '{"drivers": ["sensor_11"]}'}, "JSON debris"),
    ({"recommended_action": "N/A"}, "placeholder"),
    ({"drivers": ["sensor_11 rising", "sensor_11 rising"]}, "repeats item 1"),
    ({"drivers": ["FD001-085"]}, "drivers[1] names no scored sensor"),
])
def test_an_explanation_contradicting_the_facts_is_rejected(change, expected):
    problems = _gate({**GOOD, **change})
    assert any(expected in p for p in problems), problems


class _Refusing:
    """A model service at a wrong URL: every request answers 404 (counted)."""

    def __init__(self):
        self.requests = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self):
                outer.requests += 1
                body = json.dumps({"error": {"message": "no such route"}}).encode()
                self.send_response(404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = _answer  # noqa: N815

            def log_message(self, *args):
                pass

        self.port = free_port()
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def refusing_model_service(settings):
    from core import model_client

    service = _Refusing()
    settings.LLM_ENABLED = True
    settings.MODEL_SERVICE_URL = f"http://127.0.0.1:{service.port}/wrong/v1"
    model_client._clients.clear()
    yield service
    model_client._clients.clear()
    service.close()


def test_a_refusing_model_service_still_yields_the_calibrated_prediction(engineer_client, active_model,
                                                                        fd001_frame, run_jobs,
                                                                        refusing_model_service):
    from django.core.files.uploadedfile import SimpleUploadedFile

    data = wide_csv(fd001_frame, {85: 170, 92: 150})
    response = engineer_client.post("/api/v1/manufacturing/uploads/",
                                    {"file": SimpleUploadedFile("fleet.csv", data, "text/csv")},
                                    format="multipart")
    batch = Batch.objects.get(pk=response.json()["id"])
    run_jobs(batch=batch)
    assert refusing_model_service.requests >= 2  # the step was really tried against the service
    for prediction in Prediction.objects.filter(batch=batch):
        assert prediction.status == JobStatus.SUCCEEDED, (prediction.error_code, prediction.error_message)
        result = prediction.result
        assert 0 <= result["failure_probability"] <= 1 and result["rul_estimate"] is not None
        assert result["drivers"] and all(d["sensor"] for d in result["drivers"])
        assert result["llm"]["status"] == "unavailable" and "404" in result["llm"]["reason"]
        assert "answer" not in result["llm"] and not result["needs_review"]
        api = engineer_client.get(prediction.api_url()).json()
        assert api["result"]["llm"]["status"] == "unavailable"
        assert api["result"]["failure_probability"] is not None
    high = Prediction.objects.get(batch=batch, machine__machine_id="ENG-85")
    assert high.result["failure_probability"] > 0.5
