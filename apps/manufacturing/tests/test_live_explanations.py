"""Live: FD001 engines through the real worker and the real model service behind a recording proxy. The
explanation stored with each prediction (and returned by the API) is exactly what the model answered
last for that machine when it passed the gate; an answer the gate rejected is stored nowhere, and the
calibrated numbers are there either way."""
from __future__ import annotations

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from apps.manufacturing.models import Prediction
from apps.manufacturing.services.llm import explanation_valid
from apps.manufacturing.tests.fixtures import *  # noqa: F403
from apps.manufacturing.tests.fixtures import wide_csv
from conftest import _model_env, wait_for
from core.llm import json_salvage
from core.tests.recorder import ModelServiceRecorder, answer_content

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]

ENGINES = {85: 170, 92: 150}


def test_the_stored_explanation_is_what_the_model_answered(model_service, worker_factory, active_model,
                                                          engineer_client, fd001_frame):
    with ModelServiceRecorder(model_service.url) as proxy:
        worker_factory(env={**_model_env(model_service), "MODEL_SERVICE_URL": proxy.url},
                       name="explain").start()
        upload = SimpleUploadedFile("fleet.csv", wide_csv(fd001_frame, ENGINES), "text/csv")
        response = engineer_client.post("/api/v1/manufacturing/uploads/", {"file": upload},
                                        format="multipart")
        assert response.status_code == 202, response.content
        url = response.json()["url"]
        wait_for(lambda: engineer_client.get(url).json()["status"] in ("done", "failed"), timeout=600,
                 interval=2, message="the upload to finish")
    by_machine: dict[str, list[dict]] = {}
    for request, reply in proxy.chats():
        machine = next(m for m in (f"ENG-{e}" for e in ENGINES) if m in request["messages"][-1]["content"])
        by_machine.setdefault(machine, []).append(json_salvage(answer_content(reply)))
    assert set(by_machine) == {f"ENG-{e}" for e in ENGINES}
    for machine, answers in by_machine.items():
        prediction = Prediction.objects.get(machine__machine_id=machine)
        result = prediction.result
        llm = result["llm"]
        assert result["failure_probability"] is not None and result["rul_estimate"] is not None
        assert result["drivers"]
        # one answer per try, more when an answer was cut (asked again with twice the budget) or timed out
        assert len(llm.get("tries") or [None]) <= len(answers)
        api = engineer_client.get(prediction.api_url()).json()["result"]["llm"]
        stored = json.dumps(result, ensure_ascii=False)
        kept = []
        if llm["status"] == "ok":
            assert llm["answer"] == api["answer"]
            assert llm["answer"] in [explanation_valid(a) for a in answers if isinstance(a, dict)]
            kept = [llm["answer"].get("rationale"), llm["answer"].get("recommended_action")]
        else:
            assert llm["status"] == "rejected" and "answer" not in llm and llm["reason"]
        for answer in answers:
            for text in (answer.get("rationale"), answer.get("recommended_action")):
                if text and len(text) > 12 and text not in kept:
                    assert text not in stored
