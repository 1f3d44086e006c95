"""FHIR R4 DiagnosticReport for a radiology report, validated with ``fhir.resources``.

``fhir.resources`` 8.x models FHIR R5 at its top level; its ``fhir.resources.R4B`` subpackage is
FHIR 4.3.0, whose DiagnosticReport has exactly R4's (4.0.1) elements, so it is the validator used
here. The study is referenced as ``imagingStudy.identifier`` = ``urn:dicom:uid`` /
``urn:oid:<StudyInstanceUID>``; AI involvement is labelled with the HL7 security label ``AIAST``
(Artificial Intelligence asserted).
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import json
import re
from typing import Any

from fhir.resources.R4B.diagnosticreport import DiagnosticReport
from pydantic import ValidationError

from apps.medical.prompting import normalize_report
from apps.medical.sr import DRAFT_NOTICE, Signature

__all__ = ["FHIRError", "build_diagnostic_report", "report_text"]

_UID = re.compile(r"^[0-9]+(\.[0-9]+)*$")


class FHIRError(ValueError):
    """The DiagnosticReport cannot be built or does not validate (names the cause)."""


def _instant(value: dt.datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.isoformat(timespec="seconds")


def report_text(report: dict[str, Any], *, signature: Signature | None = None) -> str:
    """Plain-text rendering of the report (used as a presentedForm and in notifications)."""
    r = normalize_report(report)
    lines = [DRAFT_NOTICE.upper()] if signature is None else [
        f"Signed by {signature.name} ({signature.organization}) at {_instant(signature.signed_at)}"
    ]
    for title, key in (("Technique", "technique"), ("Comparison", "comparison")):
        if r[key]:
            lines += ["", f"{title}:", r[key]]
    if r["findings"]:
        lines += ["", "Findings:"]
        for f in r["findings"]:
            text = ": ".join(x for x in (f["location"], f["description"]) if x)
            lines.append(f"- {text}" + (f" (evidence: {f['evidence']})" if f["evidence"] else ""))
    if r["impression"]:
        lines += ["", "Impression:", r["impression"]]
    if r["recommendations"]:
        lines += ["", "Recommendations:"] + [f"- {x}" for x in r["recommendations"]]
    if r["limitations"]:
        lines += ["", "Limitations:", r["limitations"]]
    return "\n".join(lines)


def build_diagnostic_report(
    report: dict[str, Any],
    *,
    study_instance_uid: str,
    signature: Signature | None = None,
    issued: dt.datetime | None = None,
    effective: dt.datetime | None = None,
    pdf: bytes | None = None,
    report_id: str | None = None,
    sr_sop_instance_uid: str | None = None,
    subject: dict[str, Any] | None = None,
    language: str = "en",
) -> dict[str, Any]:
    """A validated FHIR R4 DiagnosticReport as a JSON-serialisable dict.

    Draft (no ``signature``): status ``preliminary``. Signed: status ``final`` with
    ``resultsInterpreter`` and ``issued`` = the signing time. ``subject`` is an optional FHIR
    Reference dict (the platform fills it from its own patient records; de-identified exports omit it).
    Naive datetimes are taken as UTC.
    """
    if not _UID.match(study_instance_uid or "") or len(study_instance_uid) > 64:
        raise FHIRError(f"study_instance_uid {study_instance_uid!r} is not a DICOM UID")
    r = normalize_report(report)
    text = report_text(r, signature=signature)
    issued_at = signature.signed_at if signature else (issued or dt.datetime.now(dt.UTC))
    resource: dict[str, Any] = {
        "resourceType": "DiagnosticReport",
        "meta": {
            "security": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
                    "code": "AIAST",
                    "display": "Artificial Intelligence asserted",
                }
            ]
        },
        "text": {
            "status": "generated",
            "div": '<div xmlns="http://www.w3.org/1999/xhtml"><pre>' + html.escape(text) + "</pre></div>",
        },
        "status": "final" if signature else "preliminary",
        "category": [
            {
                "coding": [
                    {"system": "http://terminology.hl7.org/CodeSystem/v2-0074", "code": "RAD",
                     "display": "Radiology"}
                ]
            }
        ],
        "code": {
            "coding": [{"system": "http://loinc.org", "code": "18748-4",
                        "display": "Diagnostic imaging study"}],
            "text": ("Radiology report" if signature
                     else "Radiology report (AI-generated draft, not verified)"),
        },
        "issued": _instant(issued_at),
        "imagingStudy": [
            {
                "identifier": {"system": "urn:dicom:uid", "value": f"urn:oid:{study_instance_uid}"},
                "display": "Imaging study",
            }
        ],
        "presentedForm": [
            {
                "contentType": "text/plain; charset=utf-8",
                "language": language,
                "title": "Radiology report" if signature else "AI-generated draft report",
                "data": base64.b64encode(text.encode("utf-8")).decode("ascii"),
            }
        ],
    }
    if report_id:
        resource["id"] = report_id
    if sr_sop_instance_uid:
        resource["identifier"] = [{"system": "urn:dicom:uid", "value": f"urn:oid:{sr_sop_instance_uid}"}]
    if r["impression"]:
        resource["conclusion"] = r["impression"]
    if effective is not None:
        resource["effectiveDateTime"] = _instant(effective)
    if subject:
        resource["subject"] = subject
    if signature is not None:
        resource["resultsInterpreter"] = [{"display": f"{signature.name} ({signature.organization})"}]
    if pdf:
        resource["presentedForm"].append(
            {
                "contentType": "application/pdf",
                "language": language,
                "title": "Radiology report (PDF)",
                "data": base64.b64encode(pdf).decode("ascii"),
            }
        )
    try:
        model = DiagnosticReport.model_validate(resource)
    except ValidationError as exc:
        raise FHIRError(f"DiagnosticReport does not validate: {exc}")
    return json.loads(model.model_dump_json())
