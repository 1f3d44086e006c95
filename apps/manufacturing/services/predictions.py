"""Predictions: creating one (a job per machine and delivery), the job handler that scores it, the
result it stores and the side effects of a finished one (the machine's latest numbers, its alert).

The numbers come from the calibrated classical models of :mod:`apps.manufacturing.failure_model`; the
language model explains them (:mod:`.llm`). The combination, alert and review rules are those of
:mod:`apps.manufacturing.decisions`: a result that needs a person's review gets the job status
``needs_review`` and its ``review_reasons``.
"""
from __future__ import annotations

import json
import time

from django.conf import settings
from django.utils import timezone

from apps.manufacturing import decisions, prompting
from apps.manufacturing import failure_model as fm
from apps.manufacturing.features import FeatureError
from apps.manufacturing.models import FailureModelVersion, Machine, Prediction, ReadingChunk
from core import services as core_services
from core.artifacts import ArtifactError
from core.jobs import AwaitLLM, JobOutcome, PermanentJobError
from core.models import Batch, JobStatus
from core.signing import ArtifactSignatureError

from .alerts import alert_raise
from .common import manufacturing_threads, prompt_language, thread_limit
from .failure_models import failure_model_active, failure_model_load
from .llm import explanation_prompt_version, explanation_summary, llm_explain
from .readings import machine_series

#: The statuses of a finished prediction that has numbers.
DONE = (JobStatus.SUCCEEDED, JobStatus.NEEDS_REVIEW)


def prediction_create(*, owner, machine: Machine, chunk: ReadingChunk | None, source: str,
                      language: str = "en", batch: Batch | None = None, input_issues: list | None = None,
                      enqueue: bool = True) -> Prediction:
    prediction = Prediction.objects.create(
        owner=owner, machine=machine, chunk=chunk, source=source, language=prompt_language(language),
        batch=batch, input_issues=input_issues or [],
    )
    if enqueue:
        core_services.job_enqueue(job=prediction)
    return prediction


def prediction_process(job: Prediction) -> JobOutcome | AwaitLLM:
    """The CPU part: one machine's calibrated prediction and the series summary for the prompt. With the
    language model on, the job is then handed on to the language-model pool (:func:`prediction_explain`);
    without it, the result is built here."""
    timings: dict[str, float] = {}
    started = time.monotonic()
    version = failure_model_active()
    if version is None:
        raise PermanentJobError("no active failure model: train one (Models page or `manage.py "
                                "train_failure_model --activate`) and submit the readings again",
                                code="no_model")
    machine = job.machine
    series = machine_series(machine=machine, upto_chunk_id=job.chunk_id)
    if series is None or series.empty:
        raise PermanentJobError(f"machine {machine.machine_id}: no stored readings", code="no_readings")
    core_services.job_progress(job=job, fraction=0.1, message="scoring with the calibrated models")
    model = _load(version)
    try:
        with thread_limit():
            out = model.predict(series, threads=manufacturing_threads())
    except (fm.ModelError, FeatureError, ValueError) as exc:
        raise PermanentJobError(f"machine {machine.machine_id}: {exc}", code="prediction_failed") from None
    timings["classical_s"] = round(time.monotonic() - started, 3)
    state = {"out": _json_safe(out), "version_id": version.pk,
             "baseline_steps": model.spec.config.baseline_steps}
    if not settings.LLM_ENABLED:
        outcome = prediction_explain(job, state)
        outcome.timings.update(timings)
        return outcome
    summary = explanation_summary(series, model)
    state["summary"] = _json_safe(summary)
    state["prompt_version"] = explanation_prompt_version(job.language)
    state["variables"] = prompting.explanation_variables(machine.machine_id, summary, out, lang=job.language,
                                                         version=state["prompt_version"])
    core_services.job_progress(job=job, fraction=0.5, message="waiting for the language model")
    return AwaitLLM(finish=prediction_explain, state=state, timings=timings)


def prediction_explain(job: Prediction, state: dict) -> JobOutcome:
    """The language-model part (the language-model pool): the explanation, then the combination, alert
    and review decisions (status ``needs_review`` when the review rule says so)."""
    out = state["out"]
    machine = job.machine
    version = FailureModelVersion.objects.get(pk=state["version_id"])
    timings: dict[str, float] = {}
    llm, step = llm_explain(job, state.get("variables"), prediction=out, summary=state.get("summary"),
                            version=state.get("prompt_version"))
    if step is not None:
        timings["llm_s"] = round(step.latency_s, 3)
    combined = decisions.combine(out, llm.get("answer") if llm.get("status") == "ok" else None)
    decision = decisions.alert_decision(
        out, previous_probabilities=_previous_probabilities(job, out),
        thresholds={"probability": machine.effective_probability_threshold,
                    "rul": machine.effective_rul_threshold},
    )
    review = decisions.review_decision(out, decision, input_issues=job.input_issues,
                                       min_steps=state["baseline_steps"])
    result = _result(machine, out, llm, combined, decision, review, version, job)

    def apply(row: Prediction) -> None:
        prediction_apply(row, result=result, decision=decision)

    return JobOutcome(
        result=result, status=JobStatus.NEEDS_REVIEW if review["needs_review"] else JobStatus.SUCCEEDED,
        model_name=f"{version.name} + {(step.model if step else '') or 'no language model'}",
        model_version=version.model_version, prompt_template=step.template if step else "",
        prompt_version=step.template_version if step else None, timings=timings,
        fields={
            "failure_model": version, "failure_probability": out.get("failure_probability"),
            "horizon": out.get("horizon"), "horizon_unit": out.get("horizon_unit") or "",
            "rul_estimate": out.get("rul_estimate"), "anomaly_score": out.get("anomaly_score"),
            "is_anomalous": bool(out.get("is_anomalous")), "drivers": result["drivers"], "llm": result["llm"],
            "disagreement": bool(combined.get("disagreement")), "alert_level": decision.get("level") or "",
        },
        apply=apply,
    )


def _json_safe(value):
    """``value`` as plain JSON types (NumPy scalars and arrays, timestamps), to be stored on the row."""
    return json.loads(json.dumps(value, default=_json_default))


def _json_default(value):
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


def _load(version: FailureModelVersion) -> fm.FailureModel:
    try:
        return failure_model_load(version)
    except ArtifactSignatureError as exc:
        raise PermanentJobError(f"the active failure model was refused: {exc}; an admin must retrain it, or "
                                "run `manage.py resign_model_artifacts` after a SECRET_KEY rotation",
                                code="model_artifact_refused") from None
    except ArtifactError as exc:
        raise PermanentJobError(f"the active failure model cannot be read: {exc}",
                                code="model_artifact_unreadable") from None


def _result(machine, out, llm, combined, decision, review, version, job) -> dict:
    drivers = [
        {k: d.get(k) for k in ("sensor", "feature", "direction", "contribution", "contribution_logodds",
                               "deviation_sigma", "slope_sigma_per_step", "rul_effect", "text_en", "text_zh")
         if k in d}
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
        "alert": decisions.alert_block(decision),
        "alert_pending": bool(decision.get("pending")),
        "alert_reasons": decision.get("reasons") or [],
        "needs_review": review["needs_review"],
        "review_reasons": review["review_reasons"],
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


def _previous_probabilities(job: Prediction, out: dict, limit: int = 5) -> list[float]:
    """The machine's earlier evaluations, oldest first: its previous finished predictions; for a
    machine seen for the first time, the per-step probabilities of its own history before the
    last step (a crossing sustained over several cycles of the uploaded series is confirmed)."""
    earlier = list(
        Prediction.objects.filter(machine_id=job.machine_id, queued_at__lt=job.queued_at, status__in=DONE,
                                  failure_probability__isnull=False)
        .order_by("-queued_at").values_list("failure_probability", flat=True)[:limit])
    if earlier:
        return list(reversed(earlier))
    history = out.get("history") or []
    return [h.get("failure_probability") for h in history[-limit - 1:-1]
            if h.get("failure_probability") is not None]


def prediction_apply(row: Prediction, *, result: dict, decision: dict | None) -> None:
    """Side effects of a finished prediction (inside the storing transaction): the machine's latest
    numbers (if this is its newest prediction) and its alert."""
    machine = Machine.objects.select_for_update().get(pk=row.machine_id)
    newer = Prediction.objects.filter(machine=machine, queued_at__gt=row.queued_at, status__in=DONE).exists()
    if newer:
        return
    machine.last_prediction = row
    machine.failure_probability = result.get("failure_probability")
    machine.horizon = result.get("horizon")
    machine.horizon_unit = result.get("horizon_unit") or ""
    machine.rul_estimate = result.get("rul_estimate")
    machine.anomaly_score = result.get("anomaly_score")
    machine.is_anomalous = bool(result.get("is_anomalous"))
    machine.drivers = result.get("drivers") or []
    machine.alert_level = (decision or {}).get("level") or ""
    machine.last_predicted_at = timezone.now()
    machine.save()
    alert_raise(machine=machine, prediction=row, decision=decision, result=result)
