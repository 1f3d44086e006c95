"""End to end with real processes: REST upload → Celery worker → the real model service → draft →
sign → SR, PDF, FHIR; and what the model service receives, captured by a recording proxy, holds no
planted patient identifier."""
from __future__ import annotations

import io
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pydicom
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from fhir.resources.R4B.diagnosticreport import DiagnosticReport

from apps.medical.models import Study, StudyIdentity
from apps.medical.tests.web_helpers import PLANTED, file_bytes, planted_ct
from conftest import TEST_MODEL_KEY, free_port, wait_for

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]

UPLOAD = "/api/v1/medical/studies/"


def _post(api, files: dict[str, bytes], **data) -> dict:
    response = api.post(UPLOAD, {"files": [SimpleUploadedFile(n, b) for n, b in files.items()], **data},
                        format="multipart")
    assert response.status_code == 202, response.content
    return response.json()


def _wait_done(api, upload: dict, *, studies: int, timeout: float = 240) -> list[dict]:
    def finished():
        body = api.get(upload["url"]).json()
        if body["status"] in ("done", "failed") and len(body["studies"]) >= studies:
            return body
        return None

    body = wait_for(finished, timeout=timeout, interval=1.0, message="the upload's studies to finish")
    assert len(body["studies"]) == studies, body
    return [api.get(s["url"]).json() for s in body["studies"]]


def test_ct_and_multiframe_to_signed_report_sr_pdf_fhir(celery_worker, make_user, api_client_for):
    api = api_client_for(make_user("rad", "medical"))
    upload = _post(api, {"CT_small.dcm": file_bytes("CT_small.dcm"),
                         "emri_small.dcm": file_bytes("emri_small.dcm")}, indication="headache and cough")
    studies = {s["modality"]: s for s in _wait_done(api, upload, studies=2)}
    assert set(studies) == {"CT", "MR"}
    assert studies["MR"]["frame_count"] == 10 and studies["CT"]["frame_count"] == 1
    for modality, study in studies.items():
        assert study["status"] in ("succeeded", "needs_review"), study["error"]
        llm = study["result"]["llm"]
        assert llm["enabled"] and llm["usage"]["completion_tokens"] <= 300
        assert study["model"]["prompt_template"] == f"medical.radiology_draft_{modality.lower()}"
        assert study["model"]["name"]
        report = study["report"]
        usable = study["draft"]["usable"]  # a draft failing the quality gates twice is not shown
        assert report["status"] == "draft" and report["ai_generated"] is usable
        assert report["notice"] == ("AI-generated draft, not verified" if usable else None)
        assert report["impression"] or report["findings"]

        signed = api.post(study["url"] + "sign/", {"name": "Jane Smith"}, format="json")
        assert signed.status_code == 200
        assert signed.json()["report"]["status"] == "final"
        downloads = signed.json()["downloads"]

        sr = pydicom.dcmread(io.BytesIO(api.get(downloads["sr"]).content))
        assert (sr.CompletionFlag, sr.VerificationFlag) == ("COMPLETE", "VERIFIED")
        assert sr.VerifyingObserverSequence[0].VerifyingObserverName == "Smith^Jane"
        name = "CT_small.dcm" if modality == "CT" else "emri_small.dcm"
        source = pydicom.dcmread(io.BytesIO(file_bytes(name)))
        assert sr.StudyInstanceUID == source.StudyInstanceUID
        evidence = sr.CurrentRequestedProcedureEvidenceSequence[0]
        assert evidence.StudyInstanceUID == source.StudyInstanceUID
        series = evidence.ReferencedSeriesSequence[0]
        assert series.SeriesInstanceUID == source.SeriesInstanceUID
        assert series.ReferencedSOPSequence[0].ReferencedSOPInstanceUID == source.SOPInstanceUID

        pdf = api.get(downloads["pdf"])
        assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
        fhir = api.get(downloads["fhir"]).json()
        DiagnosticReport.model_validate(fhir)
        assert fhir["status"] == "final" and fhir["resultsInterpreter"][0]["display"].startswith("Jane Smith")


class _Recorder:
    """A tiny HTTP proxy in front of the real model service that keeps every request it forwards."""

    def __init__(self, upstream: str):
        self.upstream = upstream.rstrip("/")
        if self.upstream.endswith("/v1"):
            self.upstream = self.upstream[:-3]
        self.requests: list[tuple[str, bytes]] = []
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def _forward(self, method: str):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                recorder.requests.append((self.path, body))
                headers = {k: v for k, v in self.headers.items()
                           if k.lower() in ("authorization", "content-type")}
                reply = httpx.request(method, recorder.upstream + self.path, content=body, headers=headers,
                                      timeout=300)
                self.send_response(reply.status_code)
                self.send_header("Content-Type", reply.headers.get("content-type", "application/json"))
                self.send_header("Content-Length", str(len(reply.content)))
                self.end_headers()
                self.wfile.write(reply.content)

            def do_POST(self):  # noqa: N802
                self._forward("POST")

            def do_GET(self):  # noqa: N802
                self._forward("GET")

            def log_message(self, *args):
                pass

        self.port = free_port()
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


def test_planted_identifiers_never_reach_the_model_service(model_service, worker_factory, make_user,
                                                           api_client_for):
    api = api_client_for(make_user("rad", "medical"))
    slices = planted_ct(n=2)
    originals = [pydicom.dcmread(io.BytesIO(b)) for b in slices]
    with _Recorder(model_service.url) as proxy:
        worker = worker_factory(env={"MODEL_SERVICE_URL": proxy.url, "MODEL_SERVICE_API_KEY": TEST_MODEL_KEY},
                                name="phi").start()
        indication = (f"Patient {PLANTED['name'].replace('^', ' ')}, born 17/03/1958 ({PLANTED['birth']}), "
                      f"ID {PLANTED['id']}, accession {PLANTED['accession']}: chest pain")
        upload = _post(api, {"Zhangsan_Wei_chest.dcm": slices[0], "slice2.dcm": slices[1]},
                       indication=indication)
        (study,) = _wait_done(api, upload, studies=1)
    assert study["status"] in ("succeeded", "needs_review"), study["error"]
    assert study["report"]["ai_generated"] is study["draft"]["usable"]
    chats = [body for path, body in proxy.requests if path.endswith("/chat/completions")]
    # core's truncation policy asks once more when the draft is cut; a rejected draft is retried once
    assert 1 <= len(chats) <= 4
    sent = json.loads(chats[0])
    assert "CHEST" in json.dumps(sent) and "chest pain" in json.dumps(sent)  # the de-identified inputs did go

    identity = StudyIdentity.objects.get(study=Study.objects.get(pk=study["id"]))
    planted = {PLANTED["name"], "Zhangsan", "Wei Zhangsan", PLANTED["id"], "77129", PLANTED["birth"],
               "1958-03-17", "17/03/1958", PLANTED["accession"], "99318877", PLANTED["other_id"],
               PLANTED["institution"], "Heartwell", "Quentin", identity.original_study_instance_uid}
    for ds in originals:
        planted |= {str(ds.SeriesInstanceUID), str(ds.SOPInstanceUID)}
    everything_sent = b"\n".join(body for _path, body in proxy.requests).decode("utf-8", "replace").lower()
    leaked = sorted(p for p in planted if p.lower() in everything_sent)
    assert leaked == [], f"identifiers reached the model service: {leaked}"
    worker_log = worker.log().lower()
    assert "medical.study_run" in worker_log
    leaked_to_log = sorted(p for p in planted if p.lower() in worker_log)
    assert leaked_to_log == [], f"identifiers reached the worker's log: {leaked_to_log}"
