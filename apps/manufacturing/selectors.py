"""Manufacturing reads: the fleet ranked by risk, a machine's history, alerts, model versions, exports."""
from __future__ import annotations

from django.db.models import Count, F, Q, QuerySet

from apps.manufacturing.models import Alert, FailureModelVersion, Machine, Prediction, Sensor
from core.models import Batch, JobStatus

DONE = [JobStatus.SUCCEEDED, JobStatus.NEEDS_REVIEW]


def fleet_ranked() -> QuerySet[Machine]:
    """Machines by risk: calibrated failure probability (highest first), then the shortest remaining
    life, then the anomaly score; machines never scored last."""
    return Machine.objects.annotate(
        open_alerts=Count("alerts", filter=~Q(alerts__status=Alert.Status.RESOLVED)),
    ).order_by(
        F("failure_probability").desc(nulls_last=True), F("rul_estimate").asc(nulls_last=True),
        F("anomaly_score").desc(nulls_last=True), "machine_id",
    )


def machine_get(*, machine_id: str) -> Machine | None:
    return Machine.objects.filter(machine_id=machine_id).first()


def machine_predictions(*, machine: Machine, limit: int = 100, done_only: bool = True) -> list[Prediction]:
    qs = Prediction.objects.filter(machine=machine)
    if done_only:
        qs = qs.filter(status__in=DONE)
    return list(qs.order_by("-queued_at")[:limit])


def probability_series(*, machine_ids: list[int], per_machine: int = 20) -> dict[int, list[float]]:
    """Recent calibrated probabilities per machine (oldest first), for sparklines."""
    out: dict[int, list[float]] = {mid: [] for mid in machine_ids}
    rows = (Prediction.objects
            .filter(machine_id__in=machine_ids, status__in=DONE, failure_probability__isnull=False)
            .order_by("machine_id", "-queued_at").values_list("machine_id", "failure_probability"))
    for mid, p in rows:
        if len(out[mid]) < per_machine:
            out[mid].append(p)
    return {mid: list(reversed(v)) for mid, v in out.items()}


def alert_list(*, status: str | None = None, machine: Machine | None = None) -> QuerySet[Alert]:
    qs = Alert.objects.select_related("machine", "acknowledged_by", "resolved_by")
    if status:
        qs = qs.filter(status=status)
    if machine is not None:
        qs = qs.filter(machine=machine)
    return qs.order_by("status" if not status else "-created_at", "-created_at")


def alert_get(*, alert_id) -> Alert | None:
    return Alert.objects.select_related("machine").filter(pk=alert_id).first()


def prediction_get(*, prediction_id) -> Prediction | None:
    return Prediction.objects.select_related("machine", "failure_model").filter(pk=prediction_id).first()


def batch_predictions(*, batch: Batch) -> list[Prediction]:
    return list(Prediction.objects.filter(batch_id=batch.pk).select_related("machine")
                .order_by(F("failure_probability").desc(nulls_last=True), "machine__machine_id"))


def model_versions() -> list[FailureModelVersion]:
    return list(FailureModelVersion.objects.select_related("created_by")
                .order_by("-is_active", "-created_at"))


def sensors_by_name(names) -> dict[str, Sensor]:
    return {s.name: s for s in Sensor.objects.filter(name__in=list(names))}


# --- flat rows for CSV / XLSX -----------------------------------------------------------------------
RESULT_COLUMNS = [
    "machine_id", "status", "error", "failure_probability", "horizon", "horizon_unit", "rul_estimate",
    "anomaly_score", "is_anomalous", "drivers", "alert", "alert_lead_time", "alert_recommendation",
    "llm_status", "llm_failure_probability", "llm_horizon", "llm_drivers", "llm_recommended_action",
    "llm_rationale", "disagreement", "combined_rule", "mode", "input_issues", "prediction_id",
    "model_version", "review_reasons",
]


def prediction_row(prediction: Prediction) -> dict:
    """One prediction as a flat row (the results CSV columns; nested ones flattened with ``_``)."""
    result = prediction.result or {}
    llm = result.get("llm") or prediction.llm or {}
    answer = llm.get("answer") or {}
    alert = result.get("alert") or {}
    drivers = result.get("drivers") or prediction.drivers or []
    error = f"{prediction.error_code}: {prediction.error_message}" if prediction.error_code and \
        prediction.status == JobStatus.FAILED else ""
    return {
        "machine_id": prediction.machine.machine_id,
        "status": prediction.status,
        "error": error,
        "failure_probability": prediction.failure_probability,
        "horizon": prediction.horizon,
        "horizon_unit": prediction.horizon_unit,
        "rul_estimate": prediction.rul_estimate,
        "anomaly_score": prediction.anomaly_score,
        "is_anomalous": prediction.is_anomalous if prediction.status in DONE else None,
        "drivers": "; ".join(d.get("sensor", "") for d in drivers),
        "alert": (alert.get("level") or "none") if prediction.status in DONE else "",
        "alert_lead_time": alert.get("lead_time"),
        "alert_recommendation": alert.get("recommendation") or "",
        "llm_status": llm.get("status") or "",
        "llm_failure_probability": answer.get("failure_probability"),
        "llm_horizon": answer.get("horizon"),
        "llm_drivers": "; ".join(str(d) for d in (answer.get("drivers") or [])),
        "llm_recommended_action": answer.get("recommended_action") or "",
        "llm_rationale": answer.get("rationale") or "",
        "disagreement": prediction.disagreement if prediction.status in DONE else None,
        "combined_rule": (result.get("combined") or {}).get("rule") or "",
        "mode": result.get("mode") or "",
        "input_issues": " | ".join(i.get("message", "") for i in (prediction.input_issues or [])[:10]),
        "prediction_id": str(prediction.pk),
        "model_version": prediction.model_version,
        "review_reasons": "; ".join(r.get("text_en", "") for r in result.get("review_reasons") or []),
    }


FLEET_COLUMNS = ["rank", "machine_id", "name", "failure_probability", "horizon", "horizon_unit",
                 "rul_estimate", "anomaly_score", "is_anomalous", "drivers", "alert", "open_alerts",
                 "probability_threshold", "rul_threshold", "last_reading_at", "last_predicted_at"]


def fleet_rows() -> list[dict]:
    rows = []
    for rank, m in enumerate(fleet_ranked(), start=1):
        rows.append({
            "rank": rank, "machine_id": m.machine_id, "name": m.name,
            "failure_probability": m.failure_probability,
            "horizon": m.horizon, "horizon_unit": m.horizon_unit, "rul_estimate": m.rul_estimate,
            "anomaly_score": m.anomaly_score, "is_anomalous": m.is_anomalous,
            "drivers": "; ".join(d.get("sensor", "") for d in (m.drivers or [])),
            "alert": m.alert_level or "none",
            "open_alerts": m.open_alerts, "probability_threshold": m.effective_probability_threshold,
            "rul_threshold": m.effective_rul_threshold, "last_reading_at": m.last_reading_at,
            "last_predicted_at": m.last_predicted_at.isoformat() if m.last_predicted_at else "",
        })
    return rows


ALERT_COLUMNS = ["alert_id", "machine_id", "level", "status", "failure_probability", "rul_estimate",
                 "lead_time", "lead_time_unit", "reasons", "recommendation", "created_at", "updated_at",
                 "acknowledged_by", "acknowledged_at", "resolved_by", "resolved_at", "note"]


def alert_rows(alerts) -> list[dict]:
    return [{
        "alert_id": str(a.pk), "machine_id": a.machine.machine_id, "level": a.level, "status": a.status,
        "failure_probability": a.failure_probability, "rul_estimate": a.rul_estimate,
        "lead_time": a.lead_time,
        "lead_time_unit": a.lead_time_unit, "reasons": "; ".join(str(r) for r in a.reasons or []),
        "recommendation": a.recommendation, "created_at": a.created_at.isoformat(),
        "updated_at": a.updated_at.isoformat(),
        "acknowledged_by": a.acknowledged_by.get_username() if a.acknowledged_by else "",
        "acknowledged_at": a.acknowledged_at.isoformat() if a.acknowledged_at else "",
        "resolved_by": a.resolved_by.get_username() if a.resolved_by else "",
        "resolved_at": a.resolved_at.isoformat() if a.resolved_at else "", "note": a.note,
    } for a in alerts]


def attention(*, user) -> list[dict]:
    """The dashboard's registry hook (``ManufacturingConfig.attention``): what waits for this engineer:
    alerts not yet resolved, and failed predictions (the link opens the newest)."""
    from django.urls import reverse
    from django.utils.translation import gettext as _

    failed = Prediction.objects.filter(status=JobStatus.FAILED)
    newest = failed.order_by("-queued_at").values_list("pk", flat=True).first()
    unresolved = Alert.objects.exclude(status=Alert.Status.RESOLVED).count()
    return [
        {"label": _("Unresolved alerts"), "count": unresolved,
         "url": reverse("manufacturing:alerts")},
        {"label": _("Predictions that failed"), "count": failed.count(),
         "url": reverse("manufacturing:prediction_detail", kwargs={"prediction_id": newest}) if newest
         else reverse("manufacturing:index")},
    ]


# --- what the pages show beside the numbers -------------------------------------------------------------
#: A calibrated probability this close to 0 or 1 is saturated: no single sensor moves it.
SATURATION = 0.0005


def drivers_view(result: dict) -> dict:
    """How to read a prediction's drivers: ``saturated`` when the calibrated probability sits at 0 or 1
    (or no driver moves it), so that every contribution on the probability scale is 0; ``logodds`` when the
    drivers carry their contribution on the classifier's log-odds scale (stored since the scale was kept)."""
    drivers = result.get("drivers") or []
    p = result.get("failure_probability")
    at_edge = p is not None and (p >= 1 - SATURATION or p <= SATURATION)
    flat = bool(drivers) and all((d.get("contribution") or 0) < SATURATION for d in drivers)
    return {"saturated": p is not None and bool(drivers) and (at_edge or flat),
            "logodds": any(d.get("contribution_logodds") is not None for d in drivers),
            "probability": p}


def anomaly_reason(result: dict) -> dict | None:
    """Why a prediction is marked anomalous: its score against the threshold, and the sensor that deviated
    most at the latest flagged step (with its deviation in σ); None when it is not anomalous."""
    if not result or not result.get("is_anomalous"):
        return None
    flagged = [a for a in result.get("anomalies") or [] if a.get("sensor")]
    latest = flagged[-1] if flagged else {}
    return {"score": result.get("anomaly_score"), "threshold": result.get("anomaly_threshold"),
            "sensor": latest.get("sensor"), "sigma": latest.get("deviation_sigma"), "at": latest.get("at"),
            "steps": len(result.get("anomalies") or [])}


def metric_rows(metrics: dict | None) -> list[dict]:
    """A failure model's out-of-fold metrics as table rows: ``key``, ``label`` (translated), ``value``,
    ``kind`` ("pct" or "num") and ``digits``; metrics without a label keep their key."""
    from django.utils.translation import gettext as _

    known = {
        "oof_auc": (_("AUC, out-of-fold (failure within the horizon; 1 is perfect)"), "num", 3),
        "oof_brier": (_("Brier score, out-of-fold (calibration; lower is better)"), "num", 4),
        "calibration_folds": (_("Folds, grouped by machine"), "num", 0),
        "train_rmse_rul_capped": (_("Remaining-life error on the training data (RMSE, capped life)"),
                                  "num", 1),
        "positive_rate": (_("Share of steps within the horizon of a failure"), "pct", 1),
    }
    rows = []
    for key, value in (metrics or {}).items():
        if value is None or isinstance(value, (dict, list)):  # "curves" and the like are drawn, not listed
            continue
        label, kind, digits = known.get(key, (key, "num", None))
        rows.append({"key": key, "label": label, "value": value, "kind": kind, "digits": digits})
    return rows


def training_metrics(result: dict) -> dict:
    """A finished training run's result for its page: the facts and the metrics table rows."""
    return {"rows": metric_rows(result.get("metrics")), "machines": result.get("machines"),
            "steps": result.get("rows"), "horizon": result.get("horizon"), "unit": result.get("horizon_unit"),
            "sensors": result.get("sensors") or [], "seconds": result.get("training_seconds"),
            "version": result.get("model_version"), "activated": result.get("activated")}


def csv_template() -> tuple[list[str], list[dict]]:
    """The upload's CSV template (:mod:`apps.manufacturing.ingest.template`): the columns of the active
    failure model's sensors and settings (the NASA C-MAPSS ones without an active model) and example rows."""
    from apps.manufacturing.ingest.template import template_rows
    from apps.manufacturing.models import FailureModelVersion

    version = FailureModelVersion.objects.filter(is_active=True).order_by("-activated_at").first()
    meta = (version.metadata or {}) if version is not None else {}
    sensors = [str(s) for s in meta.get("sensors") or []] or None
    settings = [str(s) for s in meta.get("settings") or []] if sensors else None
    return template_rows(sensors, settings)
