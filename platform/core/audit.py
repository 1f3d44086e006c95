"""Writing to the append-only audit log.

Writes (submit, review, train, edit, sign, …) are recorded inside the service that does them, once per
action; reads are recorded by the views through :func:`read_audit`, the one helper the HTML pages and
the REST API share, so each read request writes exactly one event."""
from __future__ import annotations

import logging

from core.models import AuditEvent

logger = logging.getLogger(__name__)


def client_ip(request) -> str | None:
    if request is None:
        return None
    return request.META.get("REMOTE_ADDR") or None


def audit_record(*, actor, action: str, obj=None, object_type: str = "", object_id: str = "",
                 detail: dict | None = None, request=None) -> AuditEvent:
    """Append one event. ``obj`` may be any model instance (its type and pk are recorded)."""
    if obj is not None:
        object_type = object_type or f"{obj._meta.app_label}.{obj._meta.model_name}"
        object_id = object_id or str(obj.pk)
    user = actor if getattr(actor, "is_authenticated", False) else None
    label = getattr(actor, "username", "") if user is not None else (str(actor) if actor else "anonymous")
    return AuditEvent.objects.create(
        actor=user, actor_label=label[:150], action=action, object_type=object_type[:64],
        object_id=str(object_id)[:64], detail=detail or {}, ip_address=client_ip(request),
    )


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
    seen = raw.__dict__.setdefault("_reads_audited", set())
    key = (action, object_type, str(object_id))
    if key in seen:
        return None
    seen.add(key)
    return audit_record(actor=request.user, action=action, object_type=object_type, object_id=str(object_id),
                        detail=detail, request=request)
