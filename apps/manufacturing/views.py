"""Manufacturing pages: fleet overview, upload with live progress, machine page, prediction page,
alerts, model versions and training; CSV and XLSX exports."""
from __future__ import annotations

import math

import numpy as np
from django.contrib import messages
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from apps.manufacturing import selectors, services
from apps.manufacturing.errors import AlertAlreadyResolved
from apps.manufacturing.forms import AlertActionForm, ThresholdsForm, TrainingForm, UploadForm
from apps.manufacturing.models import Alert, FailureModelVersion, Prediction, TrainingRun
from apps.manufacturing.texts import texts_display
from core.auth import role_required
from core.exports import rows_to_csv_response, rows_to_xlsx_response
from core.htmx import batch_status_response, job_status_response
from core.models import Batch
from core.roles import user_has_role
from core.selectors import batch_get_for_user, batch_list_for_user, batch_progress

ROLE = "manufacturing"
CHART_POINTS = 300


def sparkline_points(values: list[float], width: int = 120, height: int = 24) -> str:
    """SVG polyline points for a 0–1 series (probabilities); "" under two points (a line needs two: the
    page shows the one value instead)."""
    vals = [v for v in values if v is not None]
    if len(vals) < 2:
        return ""
    step = width / (len(vals) - 1)
    return " ".join(f"{i * step:.1f},{height - max(0.0, min(1.0, v)) * height:.1f}"
                    for i, v in enumerate(vals))


def _export(fmt: str, filename: str, columns, rows):
    if fmt == "xlsx":
        return rows_to_xlsx_response(f"{filename}.xlsx", columns, rows)
    if fmt == "csv":
        return rows_to_csv_response(f"{filename}.csv", columns, rows)
    raise Http404


# --- fleet ----------------------------------------------------------------------------------------
@role_required(ROLE)
def index(request):
    machines = list(selectors.fleet_ranked().select_related("last_prediction")[:500])
    series = selectors.probability_series(machine_ids=[m.pk for m in machines])
    for rank, m in enumerate(machines, start=1):
        m.rank = rank
        points = series.get(m.pk, [])
        if len(points) < 3 and m.last_prediction is not None:
            # few predictions yet: the latest one's per-step probabilities over the machine's recent history
            history = (m.last_prediction.result or {}).get("history") or []
            points = [h.get("failure_probability") for h in history]
        m.spark = sparkline_points(points)
        known = [p for p in points if p is not None]
        m.spark_single = known[0] if len(known) == 1 else None
        m.anomaly_reason = selectors.anomaly_reason((m.last_prediction.result or {})
                                                    if m.last_prediction is not None else {})
    open_alerts = Alert.objects.exclude(status=Alert.Status.RESOLVED)
    return render(request, "manufacturing/index.html", {
        "machines": machines,
        "open_alerts": open_alerts.count(),
        "critical_alerts": open_alerts.filter(level=Alert.Level.CRITICAL).count(),
        "active_model": services.failure_model_active(),
        "batches": batch_list_for_user(user=request.user, limit=5, app="manufacturing"),
    })


@role_required(ROLE)
def fleet_export(request, fmt):
    services.read_audit(request, action="export", object_type="manufacturing.fleet", detail={"format": fmt})
    return _export(fmt, "fleet", selectors.FLEET_COLUMNS, selectors.fleet_rows())


# --- uploads ----------------------------------------------------------------------------------------
@role_required(ROLE)
def upload(request):
    form = UploadForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        batch = services.upload_create(owner=request.user, upload=form.cleaned_data["file"],
                                       language=get_language(), request=request)
        messages.success(request, _("Upload received; the machines are being scored."))
        return redirect("manufacturing:batch_detail", batch_id=batch.pk)
    return render(request, "manufacturing/upload.html", {
        "form": form, "batches": batch_list_for_user(user=request.user, limit=20, app="manufacturing"),
    }, status=400 if request.method == "POST" else 200)


@role_required(ROLE)
def csv_template(request):
    """A CSV template to fill in: the header the upload reads and a few example rows that read cleanly."""
    columns, rows = selectors.csv_template()
    return rows_to_csv_response("sensor-data-template.csv", columns, rows)


def _batch_or_404(request, batch_id) -> Batch:
    batch = batch_get_for_user(user=request.user, batch_id=batch_id)
    if batch is None or batch.app != "manufacturing":
        raise Http404(_("No such upload, or not one your roles allow."))
    return batch


def _batch_context(batch: Batch) -> dict:
    """The batch's progress and items, its stored problems in the page's language."""
    return {"batch": batch, "progress": batch_progress(batch=batch),
            "predictions": selectors.batch_predictions(batch=batch),
            "batch_errors": texts_display(batch.errors), "batch_warnings": texts_display(batch.warnings)}


@role_required(ROLE)
def batch_detail(request, batch_id):
    batch = _batch_or_404(request, batch_id)
    return render(request, "manufacturing/batch_detail.html", {
        **_batch_context(batch), "ingest": (batch.options or {}).get("ingest") or {},
    })


@role_required(ROLE)
def batch_results_partial(request, batch_id):
    batch = _batch_or_404(request, batch_id)
    return batch_status_response(request, batch=batch, template="manufacturing/_batch_results.html",
                                 context=_batch_context(batch))


@role_required(ROLE)
def batch_export(request, batch_id, fmt):
    batch = _batch_or_404(request, batch_id)
    rows = [selectors.prediction_row(p) for p in selectors.batch_predictions(batch=batch)]
    services.read_audit(request, action="export", obj=batch, detail={"format": fmt})
    return _export(fmt, f"manufacturing-{batch.pk}", selectors.RESULT_COLUMNS, rows)


# --- machines -----------------------------------------------------------------------------------------
def _downsample(index, values: np.ndarray, limit: int = CHART_POINTS):
    n = len(index)
    if n <= limit:
        pick = np.arange(n)
    else:
        pick = np.unique(np.linspace(0, n - 1, limit).round().astype(int))
    return [index[i] for i in pick], [None if not math.isfinite(v) else round(float(v), 4)
                                      for v in values[pick]]


def _label(t) -> str:
    if hasattr(t, "isoformat"):
        return t.isoformat(timespec="minutes")
    f = float(t)
    return str(int(f)) if f.is_integer() else f"{f:g}"


def _chart_data(machine, prediction: Prediction | None, lang: str) -> dict:
    series = services.machine_series(machine=machine)
    data: dict = {"sensors": [], "history": [], "predictions": [], "anomalies": []}
    if series is None or series.empty:
        return data
    labels = [_label(t) for t in series.index]
    sensors = selectors.sensors_by_name(series.columns)
    result = (prediction.result or {}) if prediction else {}
    driver_names = [d.get("sensor") for d in result.get("drivers") or []]
    order = ([s for s in driver_names if s in series.columns]
             + [c for c in series.columns if c not in driver_names])
    anomalies = result.get("anomalies") or []
    anomaly_at = {_label(a["at"]) if not isinstance(a["at"], str) else a["at"][:16]: a for a in anomalies}
    for name in order:
        col = series[name].to_numpy(dtype=float)
        if not np.isfinite(col).any() or np.nanmax(col) == np.nanmin(col):
            continue  # constant sensors carry nothing to look at
        xs, ys = _downsample(labels, col)
        sensor = sensors.get(name)
        marks = []
        for key, a in anomaly_at.items():
            if key in labels:
                i = labels.index(key)
                v = col[i]
                if math.isfinite(v):
                    marks.append({"x": key, "y": round(float(v), 4), "sensor": a.get("sensor"),
                                  "score": a.get("score")})
        description = ""
        if sensor is not None:
            zh = lang.startswith("zh") and sensor.description_zh
            description = sensor.description_zh if zh else sensor.description
        data["sensors"].append({"name": name, "unit": sensor.unit if sensor else "",
                                "description": description, "driver": name in driver_names, "labels": xs,
                                "values": ys, "anomalies": marks})
    data["history"] = result.get("history") or []
    data["anomalies"] = anomalies
    return data


@role_required(ROLE)
def machine_detail(request, machine_id):
    machine = selectors.machine_get(machine_id=machine_id)
    if machine is None:
        raise Http404(_("Unknown machine %(id)s.") % {"id": machine_id})
    initial = {"name": machine.name, "location": machine.location,
               "probability_threshold": machine.probability_threshold, "rul_threshold": machine.rul_threshold}
    form = ThresholdsForm(request.POST or None, initial=initial)
    if request.method == "POST":
        if form.is_valid():
            d = form.cleaned_data
            services.machine_thresholds_update(
                machine=machine, probability_threshold=d["probability_threshold"],
                rul_threshold=d["rul_threshold"], name=d["name"], location=d["location"], user=request.user,
                request=request)
            messages.success(request, _("Thresholds saved; they apply from the next prediction."))
            return redirect(machine.get_absolute_url())
    predictions = selectors.machine_predictions(machine=machine, limit=50)
    latest = predictions[0] if predictions else None
    pending = Prediction.objects.filter(machine=machine).exclude(
        status__in=["succeeded", "needs_review", "failed"]).order_by("-queued_at").first()
    last_failed = Prediction.objects.filter(machine=machine, status="failed").order_by("-queued_at").first()
    services.read_audit(request, action="view", obj=machine)
    lang = get_language() or "en"
    chart = _chart_data(machine, latest, lang)
    chart["predictions"] = [{"at": p.queued_at.isoformat(timespec="minutes"), "p": p.failure_probability,
                             "rul": p.rul_estimate} for p in reversed(predictions)]
    result = (latest.result or {}) if latest else {}
    return render(request, "manufacturing/machine_detail.html", {
        "machine": machine, "form": form, "latest": latest, "result": result,
        "drivers_view": selectors.drivers_view(result), "anomaly": selectors.anomaly_reason(result),
        "predictions": predictions[:20], "pending": pending, "last_failed": last_failed,
        "alerts": selectors.alert_list(machine=machine)[:10], "chart": chart,
        "zh": lang.startswith("zh"), "status": 400 if request.method == "POST" else 200,
    }, status=400 if request.method == "POST" else 200)


@role_required(ROLE)
def prediction_detail(request, prediction_id):
    prediction = selectors.prediction_get(prediction_id=prediction_id)
    if prediction is None:
        raise Http404(_("No such prediction."))
    services.read_audit(request, action="view", obj=prediction)
    result = prediction.result or {}
    return render(request, "manufacturing/prediction_detail.html", {
        "prediction": prediction, "result": result, "anomaly": selectors.anomaly_reason(result),
        "drivers_view": selectors.drivers_view(result),
        "zh": (get_language() or "").startswith("zh"),
    })


@role_required(ROLE)
def prediction_status_partial(request, prediction_id):
    prediction = selectors.prediction_get(prediction_id=prediction_id)
    if prediction is None:
        raise Http404
    return job_status_response(request, job=prediction)


# --- alerts -----------------------------------------------------------------------------------------
@role_required(ROLE)
def alerts(request):
    wanted = request.GET.get("status") or ""
    if wanted and wanted not in Alert.Status.values:
        wanted = ""
    items = list(selectors.alert_list(status=wanted or None)[:500])
    return render(request, "manufacturing/alerts.html", {
        "alerts": items, "status": wanted, "statuses": Alert.Status.choices, "form": AlertActionForm(),
        "zh": (get_language() or "").startswith("zh"),
    })


@require_POST
@role_required(ROLE)
def alert_action(request, alert_id, action):
    alert = get_object_or_404(Alert, pk=alert_id)
    form = AlertActionForm(request.POST)
    note = form.cleaned_data["note"] if form.is_valid() else ""
    if action not in ("acknowledge", "resolve"):
        raise Http404
    try:
        if action == "resolve":
            services.alert_resolve(alert=alert, user=request.user, note=note, request=request)
            messages.success(request, _("Alert for %(m)s resolved.") % {"m": alert.machine.machine_id})
        else:
            services.alert_acknowledge(alert=alert, user=request.user, note=note, request=request)
            messages.success(request, _("Alert for %(m)s acknowledged.") % {"m": alert.machine.machine_id})
    except AlertAlreadyResolved:
        messages.error(request, _("That alert is already resolved."))
    nxt = request.POST.get("next") or ""
    safe = nxt.startswith("/") and not nxt.startswith("//")
    return redirect(nxt if safe else reverse("manufacturing:alerts"))


@role_required(ROLE)
def alerts_export(request, fmt):
    wanted = request.GET.get("status") or None
    if wanted not in (None, *Alert.Status.values):
        wanted = None
    services.read_audit(request, action="export", object_type="manufacturing.alert",
                         detail={"format": fmt, "status": wanted})
    rows = selectors.alert_rows(selectors.alert_list(status=wanted))
    return _export(fmt, "alerts", selectors.ALERT_COLUMNS, rows)


# --- models ------------------------------------------------------------------------------------------
@role_required(ROLE)
def models_page(request):
    is_admin = user_has_role(request.user, "admin")
    form = TrainingForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        d = form.cleaned_data
        run = services.training_create(owner=request.user, upload=d["file"], horizon=d["horizon"],
                                       data_format=d["data_format"], name=d["name"],
                                       activate=bool(d["activate"]) and is_admin, request=request)
        messages.success(request, _("Training queued."))
        return redirect(run.get_absolute_url())
    versions = list(selectors.model_versions())
    for v in versions:
        v.metric_rows = selectors.metric_rows(v.cv_metrics)
    return render(request, "manufacturing/models.html", {
        "versions": versions, "form": form, "is_admin": is_admin,
        "runs": TrainingRun.objects.order_by("-queued_at")[:10],
    }, status=400 if request.method == "POST" else 200)


@require_POST
@role_required("admin")
def model_activate(request, version_id):
    version = get_object_or_404(FailureModelVersion, pk=version_id)
    services.failure_model_activate(version=version, user=request.user, request=request)
    messages.success(request, _("Model %(v)s is now active.") % {"v": version.label})
    return redirect("manufacturing:models")


@role_required(ROLE)
def training_detail(request, training_id):
    run = get_object_or_404(TrainingRun, pk=training_id)
    return render(request, "manufacturing/training_detail.html", {
        "run": run, "job": run, "metrics": selectors.training_metrics(run.result or {}),
    })


@role_required(ROLE)
def training_status_partial(request, training_id):
    return job_status_response(request, job=get_object_or_404(TrainingRun, pk=training_id))
