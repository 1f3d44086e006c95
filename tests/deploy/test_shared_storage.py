"""Workers on other hosts read uploads from S3-compatible storage (docs/deploy.md, "Rules that make many
hosts work").

A real S3-compatible server (moto's, over HTTP on loopback) stands in for MinIO. The web side (this
test process) and a real Celery worker (its own process) are given *different* local media folders,
so the only way a file can pass from one to the other is the bucket: a finance CSV batch, a medical
DICOM upload and a manufacturing sensor file are uploaded over REST, parsed and processed by the
worker, and the web side then renders a DICOM frame the worker stored. Afterwards the bucket holds
the files and neither local media folder holds any.
"""
from __future__ import annotations

import csv
import io
import os
import subprocess
import sys

import httpx
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from conftest import ROOT, free_port, wait_for

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]

BUCKET = "suite-test"
KEYS = {"S3_ACCESS_KEY_ID": "suite-test-key", "S3_SECRET_ACCESS_KEY": "suite-test-secret"}


@pytest.fixture(scope="module")
def s3_server(tmp_path_factory):
    """moto's S3-compatible server in its own process, with one empty bucket."""
    import boto3

    port = free_port()
    log = tmp_path_factory.mktemp("s3") / "moto.log"
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            cwd=ROOT, stdout=log.open("ab"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"

    def up():
        if proc.poll() is not None:
            raise AssertionError(f"the S3 server exited: {log.read_text()[-2000:]}")
        try:
            return httpx.get(url, timeout=1).status_code < 500
        except httpx.HTTPError:
            return False

    wait_for(up, timeout=60, interval=0.3, message="the S3 server")
    client = boto3.client("s3", endpoint_url=url, aws_access_key_id=KEYS["S3_ACCESS_KEY_ID"],
                          aws_secret_access_key=KEYS["S3_SECRET_ACCESS_KEY"], region_name="us-east-1")
    client.create_bucket(Bucket=BUCKET)
    yield url, client
    proc.terminate()
    proc.wait(timeout=20)


def _files_under(folder) -> list[str]:
    return [os.path.join(d, f) for d, _, names in os.walk(folder) for f in names]


def _bucket_keys(client) -> list[str]:
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET)
    return [obj["Key"] for page in pages for obj in page.get("Contents", [])]


def _wait_batch(api, url: str, what: str) -> dict:
    def finished():
        body = api.get(url).json()
        progress = body.get("progress") if isinstance(body.get("progress"), dict) else body
        return body if progress.get("status") in ("done", "failed") else None

    return wait_for(finished, timeout=240, interval=1.0, message=what)


def test_uploads_cross_hosts_only_through_the_bucket(s3_server, worker_factory, settings, tmp_path, make_user,
                                                      api_client_for, client):
    from apps.finance.fields import FIELD_NAMES
    from apps.finance.services import credit_model_store
    from apps.finance.tests.conftest import csv_bytes, shared_csv_text, trained_scorecard
    from apps.manufacturing import cmapss
    from apps.manufacturing import failure_model as fm
    from apps.manufacturing import services as mfg_services
    from apps.manufacturing.tests.fixtures import TRAIN_ENGINES, cmapss_bytes
    from apps.medical.models import Instance, Study
    from apps.medical.tests.web_helpers import file_bytes

    url, s3 = s3_server
    s3_options = {"bucket_name": BUCKET, "endpoint_url": url, "access_key": KEYS["S3_ACCESS_KEY_ID"],
                  "secret_key": KEYS["S3_SECRET_ACCESS_KEY"], "region_name": "us-east-1", "default_acl": None,
                  "querystring_auth": True, "file_overwrite": False}
    web_media, worker_media = tmp_path / "web_media", tmp_path / "worker_media"
    # the web host: S3 storage, its own (empty) local media folder
    settings.STORAGES = {**settings.STORAGES, "default": {"BACKEND": "storages.backends.s3.S3Storage",
                                                          "OPTIONS": s3_options}}
    settings.MEDIA_ROOT = str(web_media)
    settings.LLM_ENABLED = False
    # the worker host: the same bucket through the environment, as docs/deploy.md configures it
    worker_factory(env={"S3_BUCKET": BUCKET, "S3_ENDPOINT_URL": url, **KEYS, "MEDIA_ROOT": str(worker_media),
                        "LLM_ENABLED": "false"}, name="s3w").start()

    # models the jobs need: the finance scorecard (stored in the database) and a failure model (a signed
    # artifact in the bucket, which the worker must read back from it)
    credit_model_store(trained=trained_scorecard(), data_sha256="0" * 64, filename="german_credit_train.csv",
                       activate=True, note="s3 test")
    frame = cmapss.load_fd001_labelled()
    train = frame[frame["machine_id"].astype(int).isin(TRAIN_ENGINES[:10])].drop(columns=["rul_capped"])
    mfg_services.failure_model_register(model=fm.train_failure_model(train, horizon=30, seed=0),
                                        name="s3 test", training_source="train_FD001 engines 1-10",
                                        activate=True)

    user = make_user("s3_admin", "admin")
    api = api_client_for(user)

    # finance: a CSV batch of 3 applications
    with io.StringIO(shared_csv_text()) as fh:
        rows = [{**row, "application_id": f"S3-{i}"} for i, row in enumerate(csv.DictReader(fh)) if i < 3]
    response = api.post("/api/v1/finance/batches/", {"file": SimpleUploadedFile(
        "s3.csv", csv_bytes(rows, ["application_id", *FIELD_NAMES]), "text/csv")}, format="multipart")
    assert response.status_code == 202, response.content
    finance = response.json()
    # medical: one CT slice
    response = api.post("/api/v1/medical/studies/",
                        {"files": [SimpleUploadedFile("ct.dcm", file_bytes("CT_small.dcm"))],
                         "indication": "cough"}, format="multipart")
    assert response.status_code == 202, response.content
    medical = response.json()
    # manufacturing: two engines' sensor history, C-MAPSS format
    response = api.post("/api/v1/manufacturing/uploads/", {"file": SimpleUploadedFile(
        "fd001.txt", cmapss_bytes(frame, {85: 178, 92: 150}))}, format="multipart")
    assert response.status_code == 202, response.content
    manufacturing = response.json()

    body = _wait_batch(api, finance["url"], "the finance batch")
    assert body["progress"]["done"] == 3 and body["progress"]["failed"] == 0, body
    body = _wait_batch(api, medical["url"], "the medical upload")
    assert body["status"] == "done" and len(body["studies"]) == 1, body
    study = api.get(body["studies"][0]["url"]).json()
    assert study["status"] in ("succeeded", "needs_review"), study
    body = _wait_batch(api, manufacturing["url"], "the manufacturing upload")
    assert body["progress"]["done"] == 2 and body["progress"]["failed"] == 0, body

    # the web host renders a DICOM frame the worker stored (it can only have come from the bucket)
    instance = Instance.objects.filter(study=Study.objects.get(pk=study["id"]),
                                       status=Instance.Status.OK).first()
    assert instance is not None and not os.path.isabs(instance.file.name)
    client.force_login(user)
    png = client.get(f"/medical/instances/{instance.pk}/image.png")
    assert png.status_code == 200 and png.content.startswith(b"\x89PNG"), png.content[:200]

    keys = _bucket_keys(s3)
    assert any("/finance/" in k and k.endswith("/s3.csv") for k in keys), keys  # stored by the web host
    assert any("/manufacturing/" in k and k.endswith("/fd001.txt") for k in keys), keys
    # stored by the worker
    assert any(k.startswith("medical/studies/") and k.endswith(".dcm") for k in keys), keys
    assert any(k.startswith("manufacturing/models/") for k in keys), keys  # the signed model artifact
    assert _files_under(web_media) == [] and _files_under(worker_media) == []
