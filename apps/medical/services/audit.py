"""Read events in the audit log (who looked at or downloaded what), one per request, shared by the
pages and the API. Write actions (upload, edit, sign, addendum) are audited by the service that does
them (:mod:`.uploads`, :mod:`.reports`)."""
from __future__ import annotations

from apps.medical.models import Study
from core.audit import audit_record
from core.models import Batch


def study_view_record(*, user, study: Study, via: str, identity: bool, request=None) -> None:
    """A study was shown; ``identity``: with the patient's original identifiers."""
    audit_record(actor=user, action="view", obj=study, request=request,
                 detail={"via": via, "identity": identity})


def study_export_record(*, user, study: Study, kind: str, identified: bool, via: str, request=None) -> None:
    """A report document (``pdf``, ``sr``, ``fhir``) was downloaded; ``identified``: with the originals."""
    audit_record(actor=user, action="export", obj=study, request=request,
                 detail={"format": kind, "identified": identified, "via": via})


def upload_results_export_record(*, user, batch: Batch, via: str, request=None) -> None:
    """An upload's per-file results were downloaded as CSV."""
    audit_record(actor=user, action="export", obj=batch, request=request,
                 detail={"format": "csv", "via": via})
