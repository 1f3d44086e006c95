"""DICOM Structured Report (Comprehensive SR, TID 2000-style content) for a radiology report, via highdicom.

A draft is ``PARTIAL``/``UNVERIFIED``/``PRELIMINARY`` and carries an "AI-generated draft" comment and
a device observer (the model); a signed report is ``COMPLETE``/``VERIFIED``/``FINAL`` with the
verifying observer's name, organisation and the signing time, and a person observer. The document
references the source study: highdicom records every source instance (study, series and SOP
Instance UIDs) in the Current Requested Procedure Evidence Sequence, and key images appear as
IMAGE items under Findings.

Patient and study attributes are copied from the source data sets given: pass the de-identified
ones (the default, safe everywhere) or re-identified header copies
(:func:`apps.medical.deidentify.reidentify_header`) for a document meant for the hospital's PACS.
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import highdicom as hd
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes
from pydicom.valuerep import DT

from apps.medical.prompting import normalize_report

__all__ = ["DRAFT_NOTICE", "SRError", "Signature", "build_sr"]

DRAFT_NOTICE = "AI-generated draft — not verified by a radiologist"


class SRError(ValueError):
    """The SR cannot be built from what was given (names the cause)."""


@dataclass(frozen=True)
class Signature:
    """Who signed the report, for which organisation, and when."""

    name: str  # DICOM person name, e.g. "Smith^Jane" (a plain "Jane Smith" is converted)
    organization: str
    signed_at: dt.datetime


def _person_name(name: str) -> str:
    name = name.strip()
    if not name:
        raise SRError("the verifying observer's name is empty")
    if "^" in name:
        return name
    parts = name.split()
    return f"{parts[-1]}^{' '.join(parts[:-1])}" if len(parts) > 1 else parts[0]


def _text(name: Any, value: str, rel: str = "CONTAINS") -> hd.sr.TextContentItem:
    return hd.sr.TextContentItem(name=name, value=value, relationship_type=rel)


def _container(name: Any, children: list[Any]) -> hd.sr.ContainerContentItem:
    item = hd.sr.ContainerContentItem(name=name, relationship_type="CONTAINS")
    item.ContentSequence = hd.sr.ContentSequence(children)
    return item


def _addendum_text(a: Any) -> str:
    if isinstance(a, str):
        return a
    if isinstance(a, dict):
        head = " ".join(str(a.get(k)) for k in ("author", "datetime") if a.get(k))
        return f"{head}: {a.get('text', '')}" if head else str(a.get("text", ""))
    raise SRError(f"an addendum must be a string or a dict with text, got {type(a).__name__}")


def build_sr(
    report: dict[str, Any],
    source_datasets: Sequence[Dataset],
    *,
    signature: Signature | None = None,
    key_image_uids: Iterable[str] = (),
    addenda: Iterable[Any] = (),
    series_instance_uid: str | None = None,
    sop_instance_uid: str | None = None,
    series_number: int = 9901,
    instance_number: int = 1,
    institution_name: str | None = None,
    manufacturer: str = "Industry AI Suite",
    model_name: str | None = None,
    previous_versions: Sequence[Dataset] | None = None,
    content_datetime: dt.datetime | None = None,
) -> bytes:
    """Build the SR document and return its Part 10 bytes (``pydicom.dcmread`` reads them back).

    ``report`` has the draft's shape (technique, comparison, findings[{location, description,
    evidence}], impression, recommendations[str], limitations). ``source_datasets`` are the study's
    instances (headers suffice). ``signature`` makes it a verified, final report.
    """
    report = normalize_report(report)
    evidence = [ds for ds in source_datasets if "SOPInstanceUID" in ds and "SOPClassUID" in ds]
    if not evidence:
        raise SRError("no source instances with SOP Class/Instance UIDs to reference")
    studies = {str(ds.get("StudyInstanceUID", "")) for ds in evidence}
    if len(studies) != 1 or "" in studies:
        raise SRError(f"source instances must belong to exactly one study (found {len(studies)})")
    by_uid = {str(ds.SOPInstanceUID): ds for ds in evidence}

    children: list[Any] = []
    device = hd.sr.DeviceObserverIdentifyingAttributes(
        uid=hd.UID(), name=(model_name or "radiology draft model")[:64], manufacturer_name=manufacturer[:64]
    )
    children.extend(hd.sr.ObserverContext(observer_type=codes.DCM.Device,
                                          observer_identifying_attributes=device))
    if signature is not None:
        person = hd.sr.PersonObserverIdentifyingAttributes(
            name=_person_name(signature.name), organization_name=signature.organization[:64]
        )
        children.extend(hd.sr.ObserverContext(observer_type=codes.DCM.Person,
                                              observer_identifying_attributes=person))
    else:
        children.append(_text(codes.DCM.Comment, DRAFT_NOTICE))
    if report["technique"]:
        technique = _text(codes.DCM.ProcedureDescription, report["technique"])
        children.append(_container(codes.DCM.CurrentProcedureDescriptions, [technique]))
    if report["comparison"]:
        comparison = _text(codes.DCM.Comment, report["comparison"])
        children.append(_container(codes.DCM.PriorProcedureDescriptions, [comparison]))
    findings: list[Any] = []
    for f in report["findings"]:
        text = ": ".join(x for x in (f["location"], f["description"]) if x)
        if f["evidence"]:
            text += f" (evidence: {f['evidence']})"
        findings.append(_text(codes.DCM.Finding, text))
    for uid in key_image_uids:
        ds = by_uid.get(str(uid))
        if ds is None:
            raise SRError(f"key image {uid} is not among the source instances")
        findings.append(
            hd.sr.ImageContentItem(
                name=codes.DCM.KeyImages,
                referenced_sop_class_uid=str(ds.SOPClassUID),
                referenced_sop_instance_uid=str(ds.SOPInstanceUID),
                relationship_type="CONTAINS",
            )
        )
    if findings:
        children.append(_container(codes.DCM.Findings, findings))
    if report["impression"]:
        impression = _text(codes.DCM.Impression, report["impression"])
        children.append(_container(codes.DCM.Impressions, [impression]))
    if report["recommendations"]:
        recommendations = [_text(codes.DCM.Recommendation, r) for r in report["recommendations"]]
        children.append(_container(codes.DCM.Recommendations, recommendations))
    if report["limitations"]:
        children.append(_text(codes.DCM.Comment, f"Limitations: {report['limitations']}"))
    addenda_items = [_text(codes.DCM.Comment, _addendum_text(a)) for a in addenda]
    if addenda_items:
        children.append(_container(codes.DCM.Addendum, addenda_items))

    root = hd.sr.ContainerContentItem(name=codes.LN.DiagnosticImagingReport, template_id="2000")
    root.ContentSequence = hd.sr.ContentSequence(children)
    try:
        sr = hd.sr.ComprehensiveSR(
            evidence=evidence,
            content=root,
            series_instance_uid=series_instance_uid or hd.UID(),
            series_number=series_number,
            sop_instance_uid=sop_instance_uid or hd.UID(),
            instance_number=instance_number,
            manufacturer=manufacturer,
            is_complete=signature is not None,
            is_final=signature is not None,
            is_verified=signature is not None,
            institution_name=institution_name,
            verifying_observer_name=_person_name(signature.name) if signature else None,
            verifying_organization=signature.organization[:64] if signature else None,
            previous_versions=previous_versions,
        )
    except (ValueError, TypeError, AttributeError) as exc:
        raise SRError(f"cannot build the SR: {exc}")
    when = content_datetime or (signature.signed_at if signature else dt.datetime.now(dt.UTC))
    sr.ContentDate = when.strftime("%Y%m%d")
    sr.ContentTime = when.strftime("%H%M%S")
    if signature is not None:
        verified_at = DT(signature.signed_at.strftime("%Y%m%d%H%M%S"))
        sr.VerifyingObserverSequence[0].VerificationDateTime = verified_at
    sr.SeriesDescription = "Radiology report" if signature else "AI-generated draft report"
    sr.SpecificCharacterSet = "ISO_IR 192"  # UTF-8: reports may be Chinese; values are re-encoded on save
    buf = io.BytesIO()
    sr.save_as(buf, enforce_file_format=True)
    return buf.getvalue()
