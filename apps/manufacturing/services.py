"""Manufacturing writes: machines and sensors, stored readings, uploads and pushes, predictions (the job
handler), alerts, failure-model versions and training runs.

The numbers come from the calibrated classical models of :mod:`.failure_model`; the language model
explains them (:func:`_llm_explain`) and its own probability is combined by the documented rule of
:mod:`.prompting` (the classifier is authoritative; a disagreement is flagged).
"""
from __future__ import annotations

import logging
import threading
import time
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pandas as pd
from django.conf import settings
from django.core.files.base import ContentFile
from django.db import close_old_connections, connection, transaction
from django.utils import timezone

from apps.manufacturing import cmapss
from apps.manufacturing import failure_model as fm
from apps.manufacturing.features import FeatureError
from apps.manufacturing.ingest import (
    IngestError,
    IngestOptions,
    IngestResult,
    ingest_csv,
    merge_series,
    parse_readings,
)
from apps.manufacturing.models import (
    Alert,
    FailureModelVersion,
    Machine,
    Prediction,
    ReadingChunk,
    Sensor,
    TrainingRun,
)
from core import services as core_services
from core.jobs import JobOutcome, PermanentJobError, TransientJobError
from core.llm import LLMOutputInvalid, LLMStep, llm_step
from core.models import Batch, JobStatus
from core.signing import (
    ArtifactSignatureError,
    artifact_sign,
    artifact_signed_with_current_key,
    artifact_verify,
)

logger = logging.getLogger(__name__)

PROMPT_NAME = "manufacturing.failure_explanation"
#: The LLM answers a small JSON object; keep generation short on CPU.
LLM_MAX_TOKENS = 200
#: Chunks per machine above which they are folded into one.
COMPACT_AFTER_CHUNKS = 50


class ReadingsRejected(ValueError):
    """A push cannot be stored (nothing usable, or a time axis that does not match the stored one)."""

    def __init__(self, message: str, *, errors: list | None = None, code: str = "invalid_readings"):
        super().__init__(message)
        self.errors = errors or []
        self.code = code


@contextmanager
def single_thread():
    """Run scikit-learn/OpenMP code on one thread: on a shared 2-core machine OpenMP's spinning
    threads make HistGradientBoosting 10–30× slower. ``MANUFACTURING_THREADS`` overrides."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=int(getattr(settings, "MANUFACTURING_THREADS", 1) or 1)):
        yield


# --- issues (errors and warnings from ingestion) ----------------------------------------------------------
def issue_text(item: dict) -> str:
    """One line naming where: row (or pushed item), machine and sensor, then what."""
    message = str(item.get("message") or item.get("code") or "")
    where = []
    row = item.get("row")
    if row is not None and f"row {row}" not in message and f"item {row}" not in message:
        where.append(f"row {row}")
    machine = item.get("machine")
    if machine not in (None, "") and str(machine) not in message:
        where.append(f"machine {machine}")
    sensor = item.get("sensor")
    if sensor not in (None, "") and str(sensor) not in message:
        where.append(f"sensor {sensor}")
    return f"{', '.join(where)}: {message}" if where else message


def _issues_for(result: IngestResult, machine_id: str) -> list[dict]:
    out = []
    for kind, items in (("error", result.errors), ("warning", result.warnings)):
        for item in items:
            if str(item.get("machine")) == machine_id:
                out.append({"level": kind, "code": item.get("code"), "row": _jsonable(item.get("row")),
                            "sensor": item.get("sensor"), "message": issue_text(item)})
    return out


def _jsonable(value):
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    try:
        return int(value)
    except (TypeError, ValueError):
        return str(value)


# --- machines, sensors, readings -----------------------------------------------------------------------
def sensors_ensure(*, names: list[str], units: dict[str, str] | None = None, settings_names: list[str] | None = None) -> None:
    """Create rows for sensors not seen before (C-MAPSS sensors get their symbol, description and unit)."""
    units = units or {}
    setting_set = set(settings_names or [])
    existing = set(Sensor.objects.filter(name__in=names).values_list("name", flat=True))
    new = []
    for name in names:
        if name in existing:
            continue
        info = cmapss.CMAPSS_SENSORS.get(name) or cmapss.SETTING_INFO.get(name)
        new.append(Sensor(
            name=name[:100], unit=(units.get(name) or (info.unit if info and info.unit != "-" else ""))[:40],
            symbol=(info.symbol if info else "")[:40], description=(info.description_en if info else "")[:200],
            description_zh=(info.description_zh if info else "")[:200], is_setting=name in setting_set,
        ))
    if new:
        Sensor.objects.bulk_create(new, ignore_conflicts=True)
    # a unit learned later (a header "temp (°C)") fills an empty one
    for name, unit in units.items():
        if unit:
            Sensor.objects.filter(name=name, unit="").update(unit=unit[:40])


def machine_get_or_create(*, machine_id: str) -> Machine:
    machine_id = str(machine_id).strip()[:100]
    machine, _created = Machine.objects.get_or_create(machine_id=machine_id)
    return machine


def _time_label(value) -> str:
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    try:
        f = float(value)
    except (TypeError, ValueError):
        return str(value)
    return str(int(f)) if f.is_integer() else str(f)


def chunk_store(*, machine: Machine, frame: pd.DataFrame, time_axis: str, source: str,
                batch: Batch | None = None) -> ReadingChunk:
    """Append one delivery of a machine's cleaned series."""
    frame = frame.sort_index()
    chunk = ReadingChunk.objects.create(
        machine=machine, source=source, batch=batch, time_axis=time_axis, columns=[str(c) for c in frame.columns],
        steps=len(frame), readings=int(frame.notna().to_numpy().sum()),
        start=_time_label(frame.index[0]) if len(frame) else "", end=_time_label(frame.index[-1]) if len(frame) else "",
        data=ReadingChunk.encode(frame),
    )
    updates = {"last_reading_at": chunk.end}
    if not machine.time_axis:
        updates["time_axis"] = time_axis
    Machine.objects.filter(pk=machine.pk).update(**updates)
    for key, value in updates.items():
        setattr(machine, key, value)
    return chunk


def machine_series(*, machine: Machine, upto_chunk_id: int | None = None) -> pd.DataFrame | None:
    """The machine's whole stored series (chunks merged in order, later readings winning)."""
    chunks = ReadingChunk.objects.filter(machine=machine).order_by("id")
    if upto_chunk_id is not None:
        chunks = chunks.filter(id__lte=upto_chunk_id)
    series = None
    for chunk in chunks:
        series = merge_series(series, chunk.frame())
    return series


def machine_series_compact(*, machine: Machine) -> ReadingChunk | None:
    """Fold all of a machine's chunks into one (same series, fewer rows). Returns the new chunk."""
    with transaction.atomic():
        chunks = list(ReadingChunk.objects.select_for_update().filter(machine=machine).order_by("id"))
        if len(chunks) < 2:
            return None
        series = None
        for chunk in chunks:
            series = merge_series(series, chunk.frame())
        last = chunks[-1]
        merged = ReadingChunk.objects.create(
            machine=machine, source=last.source, batch=last.batch, time_axis=last.time_axis,
            columns=[str(c) for c in series.columns], steps=len(series),
            readings=int(series.notna().to_numpy().sum()), start=_time_label(series.index[0]),
            end=_time_label(series.index[-1]), data=ReadingChunk.encode(series),
        )
        # predictions that pointed at an old chunk now see the merged one (a superset)
        Prediction.objects.filter(chunk__in=chunks).update(chunk=merged)
        ReadingChunk.objects.filter(pk__in=[c.pk for c in chunks]).delete()
    return merged


def _check_axis(machine: Machine, time_axis: str) -> None:
    if machine.time_axis and machine.time_axis != time_axis:
        raise ReadingsRejected(
            f"machine {machine.machine_id}: stored readings use {machine.time_axis}, these use {time_axis}; "
            "send the same kind of time (cycle numbers or timestamps)", code="time_axis_mismatch")


# --- predictions ------------------------------------------------------------------------------------------
def prediction_create(*, owner, machine: Machine, chunk: ReadingChunk | None, source: str, language: str = "en",
                      batch: Batch | None = None, input_issues: list | None = None, enqueue: bool = True) -> Prediction:
    prediction = Prediction.objects.create(
        owner=owner, machine=machine, chunk=chunk, source=source, language=_language(language), batch=batch,
        input_issues=input_issues or [],
    )
    if enqueue:
        core_services.job_enqueue(job=prediction)
    return prediction


def _language(code: str | None) -> str:
    return "zh-hans" if (code or "").lower().startswith("zh") else "en"


def _ingest_options() -> IngestOptions:
    return IngestOptions(max_bytes=settings.UPLOAD_MAX_BYTES)


def upload_create(*, owner, upload, language: str = "en") -> Batch:
    """Store a sensor CSV as a batch and queue its reading (``manufacturing.batch_ingest``)."""
    return core_services.batch_create(owner=owner, app="manufacturing", kind=Prediction.job_type, upload=upload,
                                      options={"language": _language(language)})


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
            result = ingest_csv(fh, source=name, options=_ingest_options())
    except IngestError as exc:
        raise core_services.BatchRejected([str(exc)] + [issue_text(e) for e in exc.errors[:50]]) from None
    except (OSError, ValueError) as exc:
        raise core_services.BatchRejected([f"{name}: could not read the file: {exc}"]) from None
    language = (batch.options or {}).get("language", "en")
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
            issues = _issues_for(result, mid)
            if machine.time_axis and machine.time_axis != result.time_axis:
                jobs.append(_failed_item(batch, machine, language, issues, "time_axis_mismatch",
                                         f"machine {mid}: stored readings use {machine.time_axis}, this file uses "
                                         f"{result.time_axis}; its readings were not stored"))
                continue
            chunk = chunk_store(machine=machine, frame=frame, time_axis=result.time_axis,
                                source=ReadingChunk.Source.UPLOAD, batch=batch)
            jobs.append(prediction_create(owner=batch.owner, machine=machine, chunk=chunk,
                                          source=ReadingChunk.Source.UPLOAD, language=language, batch=batch,
                                          input_issues=issues, enqueue=False))
        for mid in failed_ids:
            machine = machine_get_or_create(machine_id=mid)
            issues = _issues_for(result, mid)
            first = "; ".join(i["message"] for i in issues[:3])
            jobs.append(_failed_item(batch, machine, language, issues, "invalid_input",
                                     f"machine {mid}: no usable reading ({first})"))
        return jobs

    summary = result.summary()
    return core_services.BatchItems(
        create=create, errors=[issue_text(e) for e in result.errors],
        warnings=[issue_text(w) for w in result.warnings],
        options={"ingest": {k: summary[k] for k in ("format", "delimiter", "time_axis", "rows", "readings",
                                                    "readings_kept", "counts", "constant_sensors", "units",
                                                    "outliers")}},
    )


def _failed_item(batch, machine, language, issues, code, message) -> Prediction:
    now = timezone.now()
    return Prediction.objects.create(
        owner=batch.owner, machine=machine, batch=batch, source=ReadingChunk.Source.UPLOAD, language=_language(language),
        input_issues=issues, status=JobStatus.FAILED, error_code=code, error_message=message[:4000],
        finished_at=now, progress=1.0,
    )


def readings_push(*, owner, machine: Machine, payload: Any, language: str = "en") -> tuple[Prediction, IngestResult]:
    """Validate and store readings pushed for one machine, then queue a prediction.

    Raises :class:`ReadingsRejected` (with per-item errors) when nothing is usable or the time axis
    does not match the machine's stored readings.
    """
    try:
        result = parse_readings(machine.machine_id, payload, options=_ingest_options(), source="readings")
    except IngestError as exc:
        raise ReadingsRejected(str(exc), errors=[issue_text(e) for e in exc.errors]) from None
    frame = result.series.get(machine.machine_id)
    if frame is None or frame.empty:
        raise ReadingsRejected("no usable reading in the payload", errors=[issue_text(e) for e in result.errors])
    _check_axis(machine, result.time_axis)
    with transaction.atomic():
        sensors_ensure(names=list(result.sensors) + list(result.settings), units=result.units,
                       settings_names=result.settings)
        chunk = chunk_store(machine=machine, frame=frame, time_axis=result.time_axis, source=ReadingChunk.Source.PUSH)
        prediction = prediction_create(owner=owner, machine=machine, chunk=chunk, source=ReadingChunk.Source.PUSH,
                                       language=language, input_issues=_issues_for(result, machine.machine_id))
    if ReadingChunk.objects.filter(machine=machine).count() > COMPACT_AFTER_CHUNKS:
        try:
            machine_series_compact(machine=machine)
        except Exception:  # compaction is an optimisation; the readings are stored either way
            logger.exception("could not compact the readings of machine %s", machine.machine_id)
    return prediction, result


# --- the model -------------------------------------------------------------------------------------------
_model_cache: dict[int, tuple[str, fm.FailureModel]] = {}
_model_lock = threading.Lock()


def failure_model_active() -> FailureModelVersion | None:
    return FailureModelVersion.objects.filter(is_active=True).first()


def failure_model_load(version: FailureModelVersion) -> fm.FailureModel:
    """The trained model of a version (loaded once per process)."""
    with _model_lock:
        cached = _model_cache.get(version.pk)
        if cached is not None and cached[0] == version.artifact.name:
            return cached[1]
    with version.artifact.open("rb") as fh:
        data = artifact_verify(fh.read(), name=version.artifact.name)
    model = fm.load(data)  # nosec B301
    with _model_lock:
        _model_cache[version.pk] = (version.artifact.name, model)
    return model


def failure_model_register(*, model: fm.FailureModel, name: str, created_by=None, training_source: str = "",
                           activate: bool = False, cv_metrics: dict | None = None) -> FailureModelVersion:
    """Store a trained model as a new version (and activate it if asked)."""
    meta = model.metadata
    version = FailureModelVersion(
        name=name[:120], model_version=str(meta.get("model_version", ""))[:40], kind=str(meta.get("kind", "failure"))[:20],
        horizon=model.horizon if model.has_labels else None, horizon_unit=model.horizon_unit if model.has_labels else "",
        metadata=meta, cv_metrics=cv_metrics or dict(meta.get("metrics") or {}), training_source=training_source[:255],
        created_by=created_by,
    )
    version.artifact.save(f"{meta.get('model_version', 'model')}.mfm", ContentFile(artifact_sign(fm.dump(model))), save=False)
    version.save()
    if activate:
        failure_model_activate(version=version)
    return version


def failure_model_artifacts_resign() -> dict[str, list[str]]:
    """Re-sign every stored model artifact with the current ``SECRET_KEY`` (the end of a key rotation).

    An artifact signed with a key in ``SECRET_KEY_FALLBACKS`` is written again, signed with the current
    key, under a new name; the old file is deleted. One whose signature matches no key is left alone and
    reported (retrain that version). Returns the version labels by outcome.
    """
    stats: dict[str, list[str]] = {"resigned": [], "current": [], "refused": []}
    for version in FailureModelVersion.objects.order_by("pk"):
        label = f"{version.pk} {version.name} ({version.model_version})"
        old_name = version.artifact.name
        with version.artifact.open("rb") as fh:
            blob = fh.read()
        try:
            if artifact_signed_with_current_key(blob, name=old_name):
                stats["current"].append(label)
                continue
            payload = artifact_verify(blob, name=old_name)
        except ArtifactSignatureError as exc:
            logger.error("failure model %s: %s", label, exc)
            stats["refused"].append(f"{label}: {exc}")
            continue
        version.artifact.save(old_name.rsplit("/", 1)[-1], ContentFile(artifact_sign(payload)), save=False)
        FailureModelVersion.objects.filter(pk=version.pk).update(artifact=version.artifact.name)
        version.artifact.storage.delete(old_name)
        stats["resigned"].append(label)
    return stats


def failure_model_activate(*, version: FailureModelVersion) -> None:
    with transaction.atomic():
        FailureModelVersion.objects.filter(is_active=True).exclude(pk=version.pk).update(is_active=False)
        FailureModelVersion.objects.filter(pk=version.pk).update(is_active=True, activated_at=timezone.now())
    version.is_active = True


# --- the prediction job -----------------------------------------------------------------------------------
def prediction_process(job: Prediction) -> JobOutcome:
    """Compute one machine's prediction: the calibrated models, then the language model's explanation."""
    from apps.manufacturing import prompting

    timings: dict[str, float] = {}
    started = time.monotonic()
    version = failure_model_active()
    if version is None:
        raise PermanentJobError("no active failure model: train one (Models page or `manage.py train_failure_model "
                                "--activate`) and submit the readings again", code="no_model")
    machine = job.machine
    series = machine_series(machine=machine, upto_chunk_id=job.chunk_id)
    if series is None or series.empty:
        raise PermanentJobError(f"machine {machine.machine_id}: no stored readings", code="no_readings")
    core_services.job_progress(job=job, fraction=0.1, message="scoring with the calibrated models")
    try:
        model = failure_model_load(version)
    except ArtifactSignatureError as exc:
        raise PermanentJobError(f"the active failure model was refused: {exc}; an admin must retrain it, or run "
                                "`manage.py resign_model_artifacts` after a SECRET_KEY rotation",
                                code="model_artifact_refused") from None
    try:
        with single_thread():
            out = model.predict(series)
    except (fm.ModelError, FeatureError, ValueError) as exc:
        raise PermanentJobError(f"machine {machine.machine_id}: {exc}", code="prediction_failed") from None
    timings["classical_s"] = round(time.monotonic() - started, 3)
    core_services.job_progress(job=job, fraction=0.5, message="asking the language model for an explanation")

    llm, step = _llm_explain(job, machine, series, out, model)
    if step is not None:
        timings["llm_s"] = round(step.latency_s, 3)
    combined = prompting.combine(out, llm.get("answer") if llm.get("status") == "ok" else None)
    decision = prompting.alert_decision(
        out, previous_probabilities=_previous_probabilities(job, out),
        thresholds={"probability": machine.effective_probability_threshold, "rul": machine.effective_rul_threshold},
    )
    result = _result(machine, out, llm, combined, decision, version, job)
    status = JobStatus.SUCCEEDED
    p = out.get("failure_probability")

    def apply(row: Prediction) -> None:
        prediction_apply(row, result=result, decision=decision)

    return JobOutcome(
        result=result, status=status,
        model_name=f"{version.name} + {(step.model if step else '') or 'no language model'}",
        model_version=version.model_version, prompt_template=step.template if step else "",
        prompt_version=step.template_version if step else None, timings=timings,
        fields={
            "failure_model": version, "failure_probability": p, "horizon": out.get("horizon"),
            "horizon_unit": out.get("horizon_unit") or "", "rul_estimate": out.get("rul_estimate"),
            "anomaly_score": out.get("anomaly_score"), "is_anomalous": bool(out.get("is_anomalous")),
            "drivers": result["drivers"], "llm": result["llm"], "disagreement": bool(combined.get("disagreement")),
            "alert_level": decision.get("level") or "",
        },
        apply=apply,
    )


def _result(machine, out, llm, combined, decision, version, job) -> dict:
    drivers = [
        {k: d.get(k) for k in ("sensor", "feature", "direction", "contribution", "deviation_sigma",
                               "slope_sigma_per_step", "rul_effect", "text_en", "text_zh") if k in d}
        for d in (out.get("drivers") or [])
    ]
    return {
        "machine_id": machine.machine_id,
        "mode": out.get("mode"),
        "failure_probability": out.get("failure_probability"),
        "horizon": out.get("horizon"),
        "horizon_unit": out.get("horizon_unit"),
        "rul_estimate": out.get("rul_estimate"),
        "rul_unit": out.get("rul_unit") or out.get("horizon_unit"),
        "rul_capped_at": out.get("rul_capped_at"),
        "anomaly_score": out.get("anomaly_score"),
        "anomaly_threshold": out.get("anomaly_threshold"),
        "is_anomalous": bool(out.get("is_anomalous")),
        "anomalies": out.get("anomalies") or [],
        "drivers": drivers,
        "alert": _alert_block(decision),
        "alert_pending": bool(decision.get("pending")),
        "alert_reasons": decision.get("reasons") or [],
        "llm": llm,
        "combined": combined,
        "disagreement": bool(combined.get("disagreement")),
        "history": out.get("history") or [],
        "last_at": out.get("last_at"),
        "steps": out.get("steps"),
        "notes": out.get("notes") or [],
        "input_issues": job.input_issues or [],
        "fallback_reason": out.get("fallback_reason"),
        "model_label": f"{version.name} ({version.model_version})",
        "sources": {
            "failure_probability": f"calibrated classifier {version.name} ({version.model_version})",
            "rul_estimate": f"gradient-boosting regressor {version.name} ({version.model_version})",
            "anomaly_score": "IsolationForest anomaly detector",
            "llm": "language model, not calibrated",
        },
        "model": out.get("model_version_info") or {},
    }


def _alert_block(decision: dict) -> dict | None:
    """The result's ``alert``: None when no alert fires (a first marginal crossing stays ``alert_pending``)."""
    if not decision.get("level"):
        return None
    lead = decision.get("lead_time") or {}
    return {
        "level": decision["level"], "reasons": decision.get("reasons") or [],
        "lead_time": lead.get("value"), "lead_time_unit": lead.get("unit") or "",
        "lead_time_text": lead.get("text_en") or "", "lead_time_text_zh": lead.get("text_zh") or "",
        "recommendation": decision.get("recommendation_en") or "",
        "recommendation_zh": decision.get("recommendation_zh") or "",
        "thresholds": decision.get("thresholds") or {},
    }


def _previous_probabilities(job: Prediction, out: dict, limit: int = 5) -> list[float]:
    """The machine's earlier evaluations, oldest first: its previous finished predictions; for a
    machine seen for the first time, the per-step probabilities of its own history before the
    last step (a crossing sustained over several cycles of the uploaded series is confirmed)."""
    earlier = list(
        Prediction.objects.filter(machine_id=job.machine_id, queued_at__lt=job.queued_at,
                                  status__in=[JobStatus.SUCCEEDED, JobStatus.NEEDS_REVIEW],
                                  failure_probability__isnull=False)
        .order_by("-queued_at").values_list("failure_probability", flat=True)[:limit])
    if earlier:
        return list(reversed(earlier))
    history = out.get("history") or []
    return [h.get("failure_probability") for h in history[-limit - 1:-1] if h.get("failure_probability") is not None]


def _llm_explain(job: Prediction, machine: Machine, series: pd.DataFrame, out: dict,
                 model: fm.FailureModel) -> tuple[dict, LLMStep | None]:
    """Ask the language model for its judgement and explanation (the core LLM step, constrained JSON).

    Returns (llm block for the result, the step). A transient model-service error retries the job,
    except on the job's last attempt, where the calibrated result is kept without the explanation.
    """
    from apps.manufacturing import prompting

    if not settings.LLM_ENABLED:
        return {"status": "disabled", "message": "the language model step is switched off (LLM_ENABLED=false)"}, None
    summary = prompting.summarize_series(series, sensors=[c for c in model.sensors if c in series.columns] or None,
                                         units=model.units)
    step = llm_step(template=PROMPT_NAME, language=job.language, max_tokens=LLM_MAX_TOKENS,
                    variables=prompting.explanation_variables(machine.machine_id, summary, out, lang=job.language),
                    validate=_explanation_valid, final_attempt=job.attempts >= settings.JOB_MAX_ATTEMPTS)
    block = step.meta()
    if step.ok:
        block["answer"] = step.value
    else:
        block["message"] = "; ".join(step.problems)
    return block, step


def _explanation_valid(parsed: Any) -> dict:
    if not isinstance(parsed, dict):
        raise LLMOutputInvalid(f"expected a JSON object, got {type(parsed).__name__}")
    return parsed


def prediction_apply(row: Prediction, *, result: dict, decision: dict | None) -> None:
    """Side effects of a finished prediction (inside the storing transaction): the machine's latest
    numbers (if this is its newest prediction) and its alert."""
    machine = Machine.objects.select_for_update().get(pk=row.machine_id)
    newer = Prediction.objects.filter(machine=machine, queued_at__gt=row.queued_at,
                                      status__in=[JobStatus.SUCCEEDED, JobStatus.NEEDS_REVIEW]).exists()
    if not newer:
        machine.last_prediction = row
        machine.failure_probability = result.get("failure_probability")
        machine.horizon = result.get("horizon")
        machine.horizon_unit = result.get("horizon_unit") or ""
        machine.rul_estimate = result.get("rul_estimate")
        machine.anomaly_score = result.get("anomaly_score")
        machine.is_anomalous = bool(result.get("is_anomalous"))
        machine.drivers = result.get("drivers") or []
        machine.alert_level = decision.get("level") or ""
        machine.last_predicted_at = timezone.now()
        machine.save()
        alert_raise(machine=machine, prediction=row, decision=decision, result=result)


def alert_raise(*, machine: Machine, prediction: Prediction, decision: dict | None, result: dict) -> Alert | None:
    """Open an alert, or update the machine's unresolved one, when the decision says so.

    One unresolved alert per machine: a later prediction that confirms it updates its numbers (and
    escalates a warning to critical) instead of raising another, so the list does not cry wolf.
    """
    block = _alert_block(decision)
    if block is None:
        return None
    level = block["level"]
    now = timezone.now()
    fields = {
        "prediction": prediction, "reasons": block["reasons"],
        "failure_probability": result.get("failure_probability"), "rul_estimate": result.get("rul_estimate"),
        "lead_time": block["lead_time"], "lead_time_unit": block["lead_time_unit"],
        "recommendation": block["recommendation"], "recommendation_zh": block["recommendation_zh"],
    }
    alert = Alert.objects.filter(machine=machine).exclude(status=Alert.Status.RESOLVED).order_by("-created_at").first()
    if alert is None:
        return Alert.objects.create(machine=machine, level=level, updated_at=now, **fields)
    if alert.prediction_id == prediction.pk:
        return alert
    for key, value in fields.items():
        setattr(alert, key, value)
    if level == Alert.Level.CRITICAL and alert.level != Alert.Level.CRITICAL:
        alert.level = Alert.Level.CRITICAL
        if alert.status == Alert.Status.ACKNOWLEDGED:  # escalated: needs a fresh look
            alert.status = Alert.Status.OPEN
    alert.updates += 1
    alert.updated_at = now
    alert.save()
    return alert


def alert_acknowledge(*, alert: Alert, user, note: str = "") -> Alert:
    if alert.status == Alert.Status.RESOLVED:
        raise ValueError("the alert is already resolved")
    Alert.objects.filter(pk=alert.pk).update(status=Alert.Status.ACKNOWLEDGED, acknowledged_by=user,
                                             acknowledged_at=timezone.now(),
                                             note=(note or alert.note)[:4000])
    alert.refresh_from_db()
    return alert


def alert_resolve(*, alert: Alert, user, note: str = "") -> Alert:
    if alert.status == Alert.Status.RESOLVED:
        raise ValueError("the alert is already resolved")
    now = timezone.now()
    updates = {"status": Alert.Status.RESOLVED, "resolved_by": user, "resolved_at": now, "note": (note or alert.note)[:4000]}
    if alert.acknowledged_at is None:
        updates.update(acknowledged_by=user, acknowledged_at=now)
    Alert.objects.filter(pk=alert.pk).update(**updates)
    alert.refresh_from_db()
    return alert


def machine_thresholds_update(*, machine: Machine, probability_threshold: float | None,
                              rul_threshold: float | None) -> Machine:
    Machine.objects.filter(pk=machine.pk).update(probability_threshold=probability_threshold, rul_threshold=rul_threshold)
    machine.refresh_from_db()
    return machine


# --- training ------------------------------------------------------------------------------------------------
def training_frame(fileobj, *, data_format: str = "auto", source: str = "history") -> tuple[pd.DataFrame, dict]:
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
    result = ingest_csv(fileobj, source=source, options=_ingest_options())
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
    with single_thread():
        return fm.train_failure_model(frame, horizon=horizon, seed=seed)


def training_create(*, owner, upload, horizon: float = 30, data_format: str = "auto", name: str = "",
                    activate: bool = False) -> TrainingRun:
    run = TrainingRun(owner=owner, original_filename=getattr(upload, "name", "")[:255], horizon=horizon,
                      data_format=data_format, name=(name or "failure model")[:120], activate=activate)
    run.upload.save(core_services.safe_name(run.original_filename or "history.csv"), upload, save=False)
    run.save()
    core_services.job_enqueue(job=run)
    return run


@contextmanager
def _lease_heartbeat(job, every: float = 30.0):
    """Keep extending a long job's lease while it computes, so the sweeper does not hand it to another worker."""
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
            frame, info = training_frame(fh, data_format=job.data_format, source=job.original_filename or "history")
    except IngestError as exc:
        raise PermanentJobError(str(exc), code="invalid_input") from None
    except OSError as exc:
        raise TransientJobError(f"cannot open the uploaded history: {exc}") from None
    core_services.job_progress(job=job, fraction=0.2, message=f"training on {info['machines']} machines")
    try:
        with _lease_heartbeat(job):
            model = train_from_frame(frame, horizon=job.horizon)
    except (fm.ModelError, FeatureError, ValueError) as exc:
        raise PermanentJobError(f"{job.original_filename}: cannot train: {exc}", code="training_failed") from None
    meta = model.metadata
    result = {"model_version": meta.get("model_version"), "machines": meta.get("machines"), "rows": meta.get("rows"),
              "horizon": meta.get("horizon"), "horizon_unit": meta.get("horizon_unit"),
              "metrics": meta.get("metrics"), "sensors": meta.get("sensors"), "input": info,
              "activated": job.activate, "training_seconds": meta.get("training_seconds")}

    def apply(row: TrainingRun) -> None:
        version = failure_model_register(model=model, name=row.name, created_by=row.owner,
                                         training_source=row.original_filename, activate=row.activate)
        row.created_version = version
        result["version_id"] = version.pk

    return JobOutcome(result=result, model_name=f"{job.name}", model_version=str(meta.get("model_version", "")),
                      timings={"training_s": round(time.monotonic() - started, 3)}, apply=apply)
