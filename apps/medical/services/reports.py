"""The report workflow: edit the draft, sign it (final, never edited again), add addenda. Each write is
audited here, once, whichever page or endpoint asked for it."""
from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from apps.medical.errors import ReportLocked, ReportNotFinal
from apps.medical.models import Addendum, Report
from apps.medical.prompting import REPORT_FIELDS, normalize_report
from core.audit import audit_record
from core.errors import InputError

from .config import organization_name


def report_edit(*, report: Report, user, sections: dict[str, Any], request=None) -> Report:
    """Replace the draft's sections (validated); record who changed which sections.

    Raises :class:`ReportLocked` (409) for a signed report, :class:`ReportError` (400) for sections
    without the draft's shape. An edit that changes nothing writes nothing (and audits nothing).
    """
    with transaction.atomic():
        report = Report.objects.select_for_update().get(pk=report.pk)
        if report.is_final:
            raise ReportLocked("this report is signed and final; add an addendum instead")
        merged = {**report.sections, **{k: v for k, v in sections.items() if k in REPORT_FIELDS}}
        clean = normalize_report(merged)
        changed = [k for k in REPORT_FIELDS if clean.get(k) != report.sections.get(k)]
        if not changed:
            return report
        now = timezone.now()
        report.sections = clean
        report.edits = [*report.edits, {"at": now.isoformat(timespec="seconds"), "by": user.get_username(),
                                        "sections": changed}][-200:]
        report.edited_by, report.edited_at, report.updated_at = user, now, now
        report.save()
        audit_record(actor=user, action="edit", obj=report, request=request, detail={"sections": changed})
    return report


def report_sign(*, report: Report, user, name: str, organization: str = "", request=None) -> Report:
    """Sign (name and time): the report becomes final and is never edited again.

    Raises :class:`InputError` without a name, :class:`ReportLocked` when already signed and
    :class:`ReportError` when the sections lack the draft's shape.
    """
    name = (name or "").strip()
    if not name:
        raise InputError("the signer's name is required", field="name")
    with transaction.atomic():
        report = Report.objects.select_for_update().get(pk=report.pk)
        if report.is_final:
            raise ReportLocked("this report is already signed")
        normalize_report(report.sections)
        now = timezone.now()
        report.status = Report.Status.FINAL
        report.signed_by, report.signer_name = user, name[:200]
        report.signer_organization = (organization or organization_name()).strip()[:200]
        report.signed_at = now
        report.updated_at = now
        report.save()
        audit_record(actor=user, action="sign", obj=report, request=request,
                     detail={"name": report.signer_name, "signed_at": report.signed_at.isoformat()})
    return report


def addendum_add(*, report: Report, user, text: str, name: str = "", request=None) -> Addendum:
    """An addendum to a signed report. Raises :class:`InputError` for empty text and
    :class:`ReportNotFinal` (409) for a draft (a draft is edited directly)."""
    text = (text or "").strip()
    if not text:
        raise InputError("the addendum text is empty", field="text")
    if not report.is_final:
        raise ReportNotFinal("a draft is edited directly; addenda are for signed reports")
    author = ((name or "").strip() or user.get_full_name() or user.get_username())[:200]
    with transaction.atomic():
        addendum = Addendum.objects.create(report=report, text=text[:20000], author=user, author_name=author)
        audit_record(actor=user, action="edit", obj=addendum, request=request,
                     detail={"addendum": True, "report": report.pk})
    return addendum
