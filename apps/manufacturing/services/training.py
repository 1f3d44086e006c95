"""Training a failure model from run-to-failure history: reading the history, the training job (a
background job per upload, audited when submitted) and training in-process (commands, the demo)."""
from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from datetime import timedelta

import pandas as pd
from django.conf import settings
from django.db import close_old_connections, connection
from django.utils import timezone

from apps.manufacturing import cmapss
from apps.manufacturing import failure_model as fm
from apps.manufacturing.features import FeatureError
from apps.manufacturing.ingest import IngestError, ingest_csv
from apps.manufacturing.models import TrainingRun
from core import services as core_services
from core.audit import audit_record
from core.jobs import JobOutcome, PermanentJobError, TransientJobError
from core.models import JobStatus

from .common import ingest_options, issue_text, manufacturing_threads, thread_limit
from .failure_models import failure_model_register


def training_frame(fileobj, *, data_format: str = "auto",
                   source: str = "history") -> tuple[pd.DataFrame, dict]:
    """Read run-to-failure history into the labelled table :func:`failure_model.train_failure_model` takes.

    ``cmapss``: a C-MAPSS file as it is (26 numeric columns, no header). ``long``/``wide``/``auto``:
    any sensor CSV the upload accepts (cleaned the same way); each machine's series is taken to end
    at failure unless the file has an ``rul`` column.
    """
    if data_format == "cmapss":
        try:
            raw = pd.read_csv(fileobj, sep=r"\s+", header=None, dtype=float, engine="c")
        except ValueError as exc:
            raise IngestError(f"not a numeric C-MAPSS table ({exc})", source=source) from None
        try:
            frame = cmapss.frame_from_raw(raw, source=source)
        except cmapss.CmapssError as exc:
            raise IngestError(str(exc)) from None
        return frame, {"format": "cmapss", "machines": int(frame["machine_id"].nunique()), "rows": len(frame),
                       "warnings": []}
    result = ingest_csv(fileobj, source=source, options=ingest_options())
    if data_format in ("long", "wide") and result.format not in (data_format, "cmapss"):
        raise IngestError(f"expected a {data_format}-form file, found {result.format} form", source=source)
    frame = result.to_frame()
    keep = ["machine_id", result.time_axis, *result.feature_sensors, *result.settings]
    if "rul" in result.label_columns:
        keep.append("rul")
    frame = frame[[c for c in keep if c in frame.columns]]
    return frame, {"format": result.format, "machines": len(result.series), "rows": result.rows,
                   "warnings": [issue_text(w) for w in result.warnings[:20]],
                   "errors": [issue_text(e) for e in result.errors[:20]]}


def train_from_frame(frame: pd.DataFrame, *, horizon: float = 30, seed: int = 0) -> fm.FailureModel:
    """Train in this process on ``settings.MANUFACTURING_THREADS`` threads."""
    with thread_limit():
        return fm.train_failure_model(frame, horizon=horizon, seed=seed, threads=manufacturing_threads())


def training_create(*, owner, upload, horizon: float = 30, data_format: str = "auto", name: str = "",
                    activate: bool = False, request=None) -> TrainingRun:
    """Store an uploaded history and queue its training job (audited: ``train``)."""
    run = TrainingRun(owner=owner, original_filename=getattr(upload, "name", "")[:255], horizon=horizon,
                      data_format=data_format, name=(name or "failure model")[:120], activate=activate)
    run.upload.save(core_services.safe_name(run.original_filename or "history.csv"), upload, save=False)
    run.save()
    audit_record(actor=owner, action="train", obj=run, request=request,
                 detail={"file": run.original_filename, "horizon": run.horizon})
    core_services.job_enqueue(job=run)
    return run


@contextmanager
def _lease_heartbeat(job, every: float = 30.0):
    """Keep extending a long job's lease while it computes, so the sweeper does not hand it to another
    worker."""
    stop = threading.Event()
    model = type(job)

    def beat():
        try:
            while not stop.wait(every):
                model.objects.filter(pk=job.pk, lease_token=job.lease_token, status=JobStatus.RUNNING).update(
                    lease_expires_at=timezone.now() + timedelta(seconds=settings.JOB_LEASE_SECONDS))
        finally:
            close_old_connections()
            connection.close()

    thread = threading.Thread(target=beat, name=f"lease-{job.pk}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=5)


def training_process(job: TrainingRun) -> JobOutcome:
    """Train a model from the uploaded history; the new version is stored (and activated if asked)."""
    started = time.monotonic()
    core_services.job_progress(job=job, fraction=0.05, message="reading the history")
    try:
        with job.upload.open("rb") as fh:
            frame, info = training_frame(fh, data_format=job.data_format,
                                         source=job.original_filename or "history")
    except IngestError as exc:
        raise PermanentJobError(str(exc), code="invalid_input") from None
    except OSError as exc:
        raise TransientJobError(f"cannot open the uploaded history: {exc}") from None
    core_services.job_progress(job=job, fraction=0.2, message=f"training on {info['machines']} machines")
    try:
        with _lease_heartbeat(job):
            model = train_from_frame(frame, horizon=job.horizon)
    except (fm.ModelError, FeatureError, ValueError) as exc:
        raise PermanentJobError(f"{job.original_filename}: cannot train: {exc}",
                                code="training_failed") from None
    meta = model.metadata
    result = {"model_version": meta.get("model_version"), "machines": meta.get("machines"),
              "rows": meta.get("rows"), "horizon": meta.get("horizon"),
              "horizon_unit": meta.get("horizon_unit"),
              "metrics": meta.get("metrics"), "sensors": meta.get("sensors"), "input": info,
              "activated": job.activate, "training_seconds": meta.get("training_seconds")}

    def apply(row: TrainingRun) -> None:
        version = failure_model_register(model=model, name=row.name, created_by=row.owner,
                                         training_source=row.original_filename, activate=row.activate)
        row.created_version = version
        result["version_id"] = version.pk

    return JobOutcome(result=result, model_name=f"{job.name}",
                      model_version=str(meta.get("model_version", "")),
                      timings={"training_s": round(time.monotonic() - started, 3)}, apply=apply)
