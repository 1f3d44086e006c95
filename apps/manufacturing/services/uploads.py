"""Readings arriving: sensor files uploaded as batches (read by the ``manufacturing.batch_ingest``
task) and readings pushed for one machine over the API. Each stores the cleaned series and queues one
prediction per machine; each submission is audited here, once."""
from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from apps.manufacturing.errors import ReadingsRejected
from apps.manufacturing.ingest import IngestError, IngestResult, ingest_csv, parse_readings
from apps.manufacturing.models import Machine, Prediction, ReadingChunk
from core import services as core_services
from core.audit import audit_record
from core.models import Batch, JobStatus

from .common import ingest_options, issue_text, issues_for, prompt_language
from .predictions import prediction_create
from .readings import (
    axis_mismatch_message,
    check_axis,
    chunk_store,
    machine_get_or_create,
    machine_series_compact_if_long,
    sensors_ensure,
)

#: The ingestion summary kept on the batch (``options["ingest"]``), shown by the API and the pages.
INGEST_SUMMARY_KEYS = ("format", "delimiter", "time_axis", "rows", "readings", "readings_kept", "counts",
                       "constant_sensors", "units", "outliers")


def upload_create(*, owner, upload, language: str = "en", request=None) -> Batch:
    """Store a sensor CSV as a batch and queue its reading (``manufacturing.batch_ingest``)."""
    return core_services.batch_create(owner=owner, app="manufacturing", kind=Prediction.job_type,
                                      upload=upload, options={"language": prompt_language(language)},
                                      request=request)


def batch_ingest(*, batch_id) -> str:
    """The ``manufacturing.batch_ingest`` task body (core's ingest routine with the reader below)."""
    return core_services.batch_ingest(batch_id=batch_id, read=_batch_read)


def _batch_read(batch: Batch) -> core_services.BatchItems:
    """Read an uploaded sensor file (streamed); store each machine's series and create one prediction per
    machine. Rows that fail validation are reported naming the row; a machine with no usable reading
    becomes a failed item naming its rows; the other machines go on."""
    name = batch.original_filename or "upload"
    try:
        with batch.file.open("rb") as fh:
            result = ingest_csv(fh, source=name, options=ingest_options())
    except IngestError as exc:
        raise core_services.BatchRejected([str(exc)] + [issue_text(e) for e in exc.errors[:50]]) from None
    except (OSError, ValueError) as exc:
        raise core_services.BatchRejected([f"{name}: could not read the file: {exc}"]) from None
    lang = (batch.options or {}).get("language", "en")
    series_ids = set(result.series)
    failed_ids = []
    for item in result.errors:
        mid = item.get("machine")
        if mid not in (None, "") and str(mid) not in series_ids and str(mid) not in failed_ids:
            failed_ids.append(str(mid))

    def create() -> list[Prediction]:
        sensors_ensure(names=list(result.sensors) + list(result.settings), units=result.units,
                       settings_names=result.settings)
        jobs = []
        for mid, frame in result.series.items():
            machine = machine_get_or_create(machine_id=mid)
            issues = issues_for(result, mid)
            if machine.time_axis and machine.time_axis != result.time_axis:
                message = axis_mismatch_message(machine, result.time_axis, "this file uses")
                jobs.append(_failed_item(batch, machine, lang, issues, "time_axis_mismatch",
                                         f"{message}; its readings were not stored"))
                continue
            chunk = chunk_store(machine=machine, frame=frame, time_axis=result.time_axis,
                                source=ReadingChunk.Source.UPLOAD, batch=batch)
            jobs.append(prediction_create(owner=batch.owner, machine=machine, chunk=chunk,
                                          source=ReadingChunk.Source.UPLOAD, language=lang, batch=batch,
                                          input_issues=issues, enqueue=False))
        for mid in failed_ids:
            machine = machine_get_or_create(machine_id=mid)
            issues = issues_for(result, mid)
            first = "; ".join(i["message"] for i in issues[:3])
            jobs.append(_failed_item(batch, machine, lang, issues, "invalid_input",
                                     f"machine {mid}: no usable reading ({first})"))
        return jobs

    summary = result.summary()
    return core_services.BatchItems(
        create=create, errors=[issue_text(e) for e in result.errors],
        warnings=[issue_text(w) for w in result.warnings],
        options={"ingest": {k: summary[k] for k in INGEST_SUMMARY_KEYS}},
    )


def _failed_item(batch, machine, lang, issues, code, message) -> Prediction:
    now = timezone.now()
    return Prediction.objects.create(
        owner=batch.owner, machine=machine, batch=batch, source=ReadingChunk.Source.UPLOAD,
        language=prompt_language(lang), input_issues=issues, status=JobStatus.FAILED, error_code=code,
        error_message=message[:4000], finished_at=now, progress=1.0,
    )


def readings_push(*, owner, machine: Machine, payload: Any, language: str = "en",
                  request=None) -> tuple[Prediction, IngestResult]:
    """Validate and store readings pushed for one machine, then queue a prediction (audited: ``submit``).

    Raises :class:`~apps.manufacturing.errors.ReadingsRejected` (400, with per-item errors) when nothing
    is usable or the time axis does not match the machine's stored readings.
    """
    where = f"machine {machine.machine_id}"
    try:
        result = parse_readings(machine.machine_id, payload, options=ingest_options(), source="readings")
    except IngestError as exc:
        raise ReadingsRejected(f"{where}: {exc}", errors=[issue_text(e) for e in exc.errors]) from None
    frame = result.series.get(machine.machine_id)
    if frame is None or frame.empty:
        raise ReadingsRejected(f"{where}: no usable reading in the payload",
                               errors=[issue_text(e) for e in result.errors])
    check_axis(machine, result.time_axis)
    with transaction.atomic():
        sensors_ensure(names=list(result.sensors) + list(result.settings), units=result.units,
                       settings_names=result.settings)
        chunk = chunk_store(machine=machine, frame=frame, time_axis=result.time_axis,
                            source=ReadingChunk.Source.PUSH)
        prediction = prediction_create(owner=owner, machine=machine, chunk=chunk,
                                       source=ReadingChunk.Source.PUSH, language=language,
                                       input_issues=issues_for(result, machine.machine_id))
        audit_record(actor=owner, action="submit", obj=prediction, request=request,
                     detail={"machine_id": machine.machine_id, "readings": result.readings})
    machine_series_compact_if_long(machine=machine)
    return prediction, result
