"""Alerts and the thresholds that raise them: an alert opened or updated by a finished prediction,
acknowledged and resolved by people (audited here, once per action), and a machine's own thresholds."""
from __future__ import annotations

from django.utils import timezone

from apps.manufacturing.decisions import alert_block
from apps.manufacturing.errors import AlertAlreadyResolved
from apps.manufacturing.models import Alert, Machine, Prediction
from core.audit import audit_record


def alert_raise(*, machine: Machine, prediction: Prediction, decision: dict | None,
                result: dict) -> Alert | None:
    """Open an alert, or update the machine's unresolved one, when the decision says so.

    One unresolved alert per machine: a later prediction that confirms it updates its numbers (and
    escalates a warning to critical) instead of raising another, so the list does not cry wolf.
    """
    block = alert_block(decision or {})
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
    alert = (Alert.objects.filter(machine=machine).exclude(status=Alert.Status.RESOLVED)
             .order_by("-created_at").first())
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


def _refuse_resolved(alert: Alert) -> None:
    if alert.status == Alert.Status.RESOLVED:
        raise AlertAlreadyResolved(f"alert {alert.pk}: the alert is already resolved")


def _audit_review(alert: Alert, user, action: str, request) -> None:
    audit_record(actor=user, action="review", obj=alert, request=request,
                 detail={"action": action, "machine_id": alert.machine.machine_id})


def alert_acknowledge(*, alert: Alert, user, note: str = "", request=None) -> Alert:
    """Mark an alert seen (audited: ``review``). Raises :class:`AlertAlreadyResolved` (409)."""
    _refuse_resolved(alert)
    Alert.objects.filter(pk=alert.pk).update(status=Alert.Status.ACKNOWLEDGED, acknowledged_by=user,
                                             acknowledged_at=timezone.now(), note=(note or alert.note)[:4000])
    alert.refresh_from_db()
    _audit_review(alert, user, "acknowledge", request)
    return alert


def alert_resolve(*, alert: Alert, user, note: str = "", request=None) -> Alert:
    """Close an alert (audited: ``review``). Raises :class:`AlertAlreadyResolved` (409)."""
    _refuse_resolved(alert)
    now = timezone.now()
    updates = {"status": Alert.Status.RESOLVED, "resolved_by": user, "resolved_at": now,
               "note": (note or alert.note)[:4000]}
    if alert.acknowledged_at is None:
        updates.update(acknowledged_by=user, acknowledged_at=now)
    Alert.objects.filter(pk=alert.pk).update(**updates)
    alert.refresh_from_db()
    _audit_review(alert, user, "resolve", request)
    return alert


def machine_thresholds_update(*, machine: Machine, probability_threshold: float | None,
                              rul_threshold: float | None, name: str | None = None,
                              location: str | None = None, user=None, request=None) -> Machine:
    """Set a machine's alert thresholds (None: the default) and, when given, its name and location
    (audited: ``edit``, once). The thresholds apply from the machine's next prediction."""
    updates: dict = {"probability_threshold": probability_threshold, "rul_threshold": rul_threshold}
    if name is not None:
        updates["name"] = name[:200]
    if location is not None:
        updates["location"] = location[:200]
    for key, value in updates.items():
        setattr(machine, key, value)
    machine.save(update_fields=[*updates, "updated_at"])
    machine.refresh_from_db()
    audit_record(actor=user, action="edit", obj=machine, request=request, detail=updates)
    return machine
