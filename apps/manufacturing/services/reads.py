"""Audit of reads: who viewed a machine or a prediction, who exported manufacturing data.

Writes (uploads, pushed readings, alert reviews, thresholds, training, model activation) are audited
inside the services that do them; reads are recorded by the views through :func:`read_audit`, the one
helper the HTML pages and the REST API share, so each read request writes exactly one event.
"""
from __future__ import annotations

from core.audit import audit_record
from core.models import AuditEvent

READ_ACTIONS = ("view", "export")


def read_audit(request, *, action: str, obj=None, object_type: str = "", object_id: str = "",
               detail: dict | None = None) -> AuditEvent | None:
    """Record that ``request.user`` read ``obj`` (``view``) or exported it (``export``): once per request.

    A second call for the same action and object within one request records nothing (returns None).
    """
    if action not in READ_ACTIONS:
        raise ValueError(f"read_audit records reads ({', '.join(READ_ACTIONS)}), not {action!r}")
    if obj is not None:
        object_type = object_type or f"{obj._meta.app_label}.{obj._meta.model_name}"
        object_id = object_id or str(obj.pk)
    raw = getattr(request, "_request", request)  # the Django request under a DRF one
    seen = raw.__dict__.setdefault("_manufacturing_reads_audited", set())
    key = (action, object_type, str(object_id))
    if key in seen:
        return None
    seen.add(key)
    return audit_record(actor=request.user, action=action, object_type=object_type, object_id=str(object_id),
                        detail=detail, request=request)
