"""Writing to the append-only audit log."""
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
