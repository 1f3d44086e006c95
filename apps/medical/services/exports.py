"""The report's outputs: DICOM SR, PDF and FHIR DiagnosticReport (identified for the hospital's own
systems by default, or de-identified), and PNG rendering of one frame for the viewer."""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from apps.medical import deidentify as deid
from apps.medical.errors import ReportError
from apps.medical.imaging import render_png
from apps.medical.ingest import read_dataset
from apps.medical.models import Instance, Report, Study, StudyIdentity
from core.errors import ConflictError

from .config import organization_name
from .storage import local_path

#: the documents a study's report is offered as
DOCUMENT_KINDS = ("pdf", "sr", "fhir")


@dataclass(frozen=True)
class Document:
    """One downloadable document: its bytes, content type and file name."""

    body: bytes
    content_type: str
    filename: str


def study_document(*, study: Study, kind: str, identified: bool = True) -> Document:
    """The PDF, SR or FHIR document of a study's report (shared by the page and the API).

    Raises ``ValueError`` for an unknown kind and :class:`~core.errors.ConflictError` (409,
    ``output_failed``) when the report cannot be turned into that document.
    """
    from apps.medical.fhir import FHIRError
    from apps.medical.sr import SRError

    if kind not in DOCUMENT_KINDS:
        raise ValueError(f"unknown document kind {kind!r}")
    stem = f"report-{str(study.pk)[:8]}" + ("" if identified else "-deid")
    try:
        if kind == "pdf":
            return Document(study_pdf_bytes(study=study, identified=identified), "application/pdf",
                            f"{stem}.pdf")
        if kind == "sr":
            return Document(study_sr_bytes(study=study, identified=identified), "application/dicom",
                            f"{stem}-sr.dcm")
        doc = study_fhir(study=study, identified=identified)
        return Document(json.dumps(doc, ensure_ascii=False, indent=1).encode(), "application/fhir+json",
                        f"{stem}-fhir.json")
    except (SRError, FHIRError, ReportError) as exc:
        raise ConflictError(f"the {kind} document cannot be built: {exc}", code="output_failed") from None


def _signature(report: Report):
    from apps.medical.sr import Signature

    if not report.is_final:
        return None
    return Signature(name=report.signer_name, organization=report.signer_organization or organization_name(),
                     signed_at=report.signed_at)


def _version_uid(report: Report, kind: str, identified: bool) -> str:
    """A stable SOP Instance UID per report version (same content → same UID on every download)."""
    from pydicom.uid import generate_uid

    return str(generate_uid(entropy_srcs=[str(report.pk), kind, report.status, str(report.signed_at),
                                          str(report.addenda.count()), str(identified),
                                          report.updated_at.isoformat()]))


def _sr_series_uid(report: Report) -> str:
    if not report.sr_series_instance_uid:
        from pydicom.uid import generate_uid

        uid = str(generate_uid())
        Report.objects.filter(pk=report.pk, sr_series_instance_uid="").update(sr_series_instance_uid=uid)
        report.refresh_from_db(fields=["sr_series_instance_uid"])
    return report.sr_series_instance_uid


def _headers(study: Study, identified: bool) -> list:
    identity = StudyIdentity.objects.filter(study=study).first()
    out = []
    for inst in study.instances.filter(status=Instance.Status.OK).order_by("series__order", "order"):
        with local_path(inst.file.name) as path:
            ds = read_dataset(inst.file_name, path, stop_before_pixels=True)
        if identified and identity is not None:
            ds = deid.reidentify_header(ds, identity.identifiers)
        out.append(ds)
    return out


def _uid_back(identity: StudyIdentity | None, uid: str, identified: bool) -> str:
    if not identified or identity is None:
        return uid
    reverse = {new: old for old, new in identity.identifiers.get("uid_map", {}).items()}
    return reverse.get(uid, uid)


def study_sr_bytes(*, study: Study, identified: bool = True) -> bytes:
    """DICOM Comprehensive SR: PARTIAL/UNVERIFIED for a draft, COMPLETE/VERIFIED once signed.

    ``identified`` (the default, for the hospital's PACS) references the original study, series and
    instance UIDs and carries the patient module; otherwise the de-identified ones.
    """
    from apps.medical.sr import build_sr

    report = study.report
    identity = StudyIdentity.objects.filter(study=study).first()
    headers = _headers(study, identified)
    keys = [_uid_back(identity, k.sop_instance_uid, identified) for k in study.key_images.all()]
    keys = list(dict.fromkeys(keys))
    return build_sr(report.sections, headers, signature=_signature(report), key_image_uids=keys,
                    addenda=[a.as_dict() for a in report.addenda.all()],
                    series_instance_uid=_sr_series_uid(report),
                    sop_instance_uid=_version_uid(report, "sr", identified),
                    model_name=study.model_name or None,
                    institution_name=(identity.institution_name or None) if identified and identity else None)


def study_pdf_bytes(*, study: Study, identified: bool = True) -> bytes:
    """The printable report: the patient line (or the study UID and pseudonym), key images, addenda."""
    from apps.medical.report_pdf import render_pdf

    report = study.report
    identity = StudyIdentity.objects.filter(study=study).first()
    if identified and identity is not None:
        parts = [f"Patient: {identity.patient_name or '-'}", f"ID: {identity.patient_id or '-'}",
                 f"Birth date: {identity.patient_birth_date or '-'}",
                 f"Accession: {identity.accession_number or '-'}",
                 f"Study date: {identity.study_date or '-'}"]
    else:
        parts = [f"Study {study.study_instance_uid}", f"Pseudonym: {identity.pseudonym if identity else '-'}"]
    parts.append(" ".join(x for x in (study.modality, study.body_part, study.description) if x))
    images = [(bytes(k.png), f"series {k.series.order + 1}, image {k.index + 1}") for k in
              study.key_images.select_related("series")[:6]]
    return render_pdf(report.sections, signature=_signature(report), key_images=images,
                      addenda=[a.as_dict() for a in report.addenda.all()],
                      title="Radiology report" if report.language != "zh-hans" else "影像诊断报告",
                      study_label=" · ".join(p for p in parts if p), review_notes=report.postcheck_warnings,
                      language=report.language, images_withheld=_images_withheld(study))


def _images_withheld(study: Study) -> int:
    """Series whose key images were left out (burned-in annotation: never shown as de-identified)."""
    return sum(1 for features in study.series.values_list("features", flat=True)
               if (features or {}).get("key_images_withheld"))


def study_fhir(*, study: Study, identified: bool = True) -> dict[str, Any]:
    """A FHIR R4 DiagnosticReport (``preliminary`` for a draft, ``final`` once signed)."""
    from apps.medical.fhir import build_diagnostic_report

    report = study.report
    identity = StudyIdentity.objects.filter(study=study).first()
    study_uid = study.study_instance_uid
    subject = None
    if identified and identity is not None:
        study_uid = identity.original_study_instance_uid or study_uid
        if identity.patient_id or identity.patient_name:
            subject = {"display": identity.patient_name or identity.patient_id}
            if identity.patient_id:
                subject["identifier"] = {"value": identity.patient_id}
    return build_diagnostic_report(report.sections, study_instance_uid=study_uid,
                                   signature=_signature(report), issued=report.updated_at,
                                   report_id=str(report.study_id), subject=subject, language=report.language,
                                   sr_sop_instance_uid=_version_uid(report, "sr", identified))


def instance_png(*, instance: Instance, frame: int = 0, preset: str = "auto", max_size: int = 768) -> bytes:
    """One frame of one de-identified instance as PNG, windowed with ``preset``."""
    with local_path(instance.file.name) as path:
        return render_png(path, frame=frame, preset=preset, max_size=max_size)
