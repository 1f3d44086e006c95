"""Outputs: DICOM SR (draft and signed) round trip, FHIR DiagnosticReport validation, PDF rendering."""

from __future__ import annotations

import base64
import datetime as dt
import io
import re
import zlib

import pydicom
import pytest
from fhir.resources.R4B.diagnosticreport import DiagnosticReport
from pydicom.data import get_testdata_file

from apps.medical.deidentify import deidentify, find_phi, phi_strings, reidentify_header
from apps.medical.fhir import FHIRError, build_diagnostic_report
from apps.medical.imaging import render_png
from apps.medical.report_pdf import render_pdf
from apps.medical.sr import DRAFT_NOTICE, Signature, SRError, build_sr

REPORT = {
    "technique": "CT of the chest, 5 mm slices.",
    "comparison": "None available.",
    "findings": [
        {"location": "lungs", "description": "Aerated lung fraction 0.23.",
         "evidence": "tissue_fractions.lung"},
        {"location": "mediastinum", "description": "胸部软组织密度正常。", "evidence": "mean HU 40"},
    ],
    "impression": "No acute abnormality can be stated from the features.",
    "recommendations": ["Radiologist review."],
    "limitations": "Summary statistics only.",
}
SIGNED = Signature("Jane Smith", "General Hospital Radiology",
                   dt.datetime(2024, 5, 6, 7, 8, 9, tzinfo=dt.UTC))


def _study(salt: str):
    base = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    base.PatientName = "Zzyzx^Quintavius"
    second = base.copy()
    second = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    second.PatientName = "Zzyzx^Quintavius"
    second.SOPInstanceUID = base.SOPInstanceUID + ".2"
    return [deidentify(base, salt), deidentify(second, salt)]


def _content_texts(ds) -> list[str]:
    out = []
    for item in ds.get("ContentSequence", []):
        if "TextValue" in item:
            out.append(item.TextValue)
        out.extend(_content_texts(item))
    return out


def test_sr_draft_round_trip(salt: str) -> None:
    results = _study(salt)
    datasets = [r.dataset for r in results]
    data = build_sr(REPORT, datasets, key_image_uids=[datasets[0].SOPInstanceUID], model_name="SmolLM2-135M")
    sr = pydicom.dcmread(io.BytesIO(data))
    flags = (sr.CompletionFlag, sr.VerificationFlag, sr.PreliminaryFlag)
    assert flags == ("PARTIAL", "UNVERIFIED", "PRELIMINARY")
    assert sr.StudyInstanceUID == datasets[0].StudyInstanceUID
    evidence = sr.CurrentRequestedProcedureEvidenceSequence[0]
    assert evidence.StudyInstanceUID == datasets[0].StudyInstanceUID
    series = evidence.ReferencedSeriesSequence[0]
    assert series.SeriesInstanceUID == datasets[0].SeriesInstanceUID
    referenced = {i.ReferencedSOPInstanceUID for i in series.ReferencedSOPSequence}
    assert referenced == {d.SOPInstanceUID for d in datasets}
    texts = _content_texts(sr)
    assert DRAFT_NOTICE in texts
    assert any("胸部软组织密度正常" in t for t in texts)  # UTF-8 survives
    assert any("Radiologist review." == t for t in texts)
    assert sr.ConceptNameCodeSequence[0].CodeValue == "18748-4"
    phi = set().union(*(phi_strings(r.identifiers) for r in results))
    assert find_phi(sr, phi) == []


def test_sr_signed_round_trip_and_reidentified_copy(salt: str) -> None:
    results = _study(salt)
    headers = [reidentify_header(r.dataset, r.identifiers) for r in results]
    data = build_sr(REPORT, headers, signature=SIGNED, addenda=[{"text": "Addendum text", "author": "Dr A"}])
    sr = pydicom.dcmread(io.BytesIO(data))
    assert (sr.CompletionFlag, sr.VerificationFlag, sr.PreliminaryFlag) == ("COMPLETE", "VERIFIED", "FINAL")
    observer = sr.VerifyingObserverSequence[0]
    assert observer.VerifyingObserverName == "Smith^Jane"
    assert observer.VerifyingOrganization == "General Hospital Radiology"
    assert observer.VerificationDateTime == "20240506070809"
    assert sr.StudyInstanceUID == pydicom.dcmread(get_testdata_file("CT_small.dcm")).StudyInstanceUID
    assert str(sr.PatientName) == "Zzyzx^Quintavius"
    texts = _content_texts(sr)
    assert DRAFT_NOTICE not in texts and any("Addendum text" in t for t in texts)


def test_sr_rejects_bad_input(salt: str) -> None:
    ds = _study(salt)[0].dataset
    with pytest.raises(SRError, match="key image"):
        build_sr(REPORT, [ds], key_image_uids=["1.2.3"])
    other = pydicom.dcmread(get_testdata_file("MR_small.dcm"))
    with pytest.raises(SRError, match="exactly one study"):
        build_sr(REPORT, [ds, other])
    with pytest.raises(ValueError, match="findings"):
        build_sr(dict(REPORT, findings="x"), [ds])


def test_fhir_draft_and_final_validate(salt: str) -> None:
    uid = _study(salt)[0].dataset.StudyInstanceUID
    draft = build_diagnostic_report(REPORT, study_instance_uid=uid, pdf=b"%PDF-1.4 x", report_id="report-1")
    DiagnosticReport.model_validate(draft)
    assert draft["status"] == "preliminary" and "resultsInterpreter" not in draft
    assert draft["imagingStudy"][0]["identifier"] == {"system": "urn:dicom:uid", "value": f"urn:oid:{uid}"}
    assert draft["conclusion"] == REPORT["impression"]
    forms = {f["contentType"]: f for f in draft["presentedForm"]}
    assert base64.b64decode(forms["application/pdf"]["data"]) == b"%PDF-1.4 x"
    assert "NOT VERIFIED" in base64.b64decode(forms["text/plain; charset=utf-8"]["data"]).decode()
    assert draft["meta"]["security"][0]["code"] == "AIAST"
    final = build_diagnostic_report(REPORT, study_instance_uid=uid, signature=SIGNED)
    DiagnosticReport.model_validate(final)
    assert final["status"] == "final"
    assert final["issued"] in ("2024-05-06T07:08:09Z", "2024-05-06T07:08:09+00:00")
    assert final["resultsInterpreter"][0]["display"].startswith("Jane Smith")
    with pytest.raises(FHIRError, match="not a DICOM UID"):
        build_diagnostic_report(REPORT, study_instance_uid="not-a-uid")
    with pytest.raises(FHIRError, match="does not validate"):
        build_diagnostic_report(REPORT, study_instance_uid=uid, subject={"reference": 12})


def _pdf_text(pdf: bytes) -> str:
    """The PDF's objects plus every compressed stream decoded (ASCII85 and Flate; page text lives there)."""
    parts = [pdf.decode("latin-1")]
    for m in re.finditer(rb"/Filter \[?([^\]>]*)\]?[^>]*>>\s*stream\r?\n(.*?)endstream", pdf, re.S):
        filters, data = m.group(1), m.group(2).strip()
        try:
            if b"ASCII85Decode" in filters:
                data = base64.a85decode(data.removesuffix(b"~>"))
            if b"FlateDecode" in filters:
                data = zlib.decompress(data)
        except (ValueError, zlib.error):
            continue
        parts.append(data.decode("latin-1"))
    return "\n".join(parts)


def test_pdf_draft_and_signed() -> None:
    pngs = [render_png(get_testdata_file("CT_small.dcm"), preset=p) for p in ("lung", "bone", "brain")]
    draft = render_pdf(REPORT, key_images=[(pngs[0], "slice 1 (lung)"), pngs[1], pngs[2]],
                       review_notes=["measurement '5 mm' check"], study_label="CT · series 1",
                       language="zh-hans")
    assert draft.startswith(b"%PDF")
    text = _pdf_text(draft)
    assert "not verified by a radiologist" in text
    assert "1 0 0 rg" in text  # the banner is drawn in red
    assert "STSong-Light" in text  # CJK text uses the CID font
    assert len(re.findall(r"/Subtype /Image", text)) == 3
    assert "Tj" in text and "Findings" not in text and "所见" not in text  # zh-hans labels (CID-encoded)
    signed = _pdf_text(render_pdf(REPORT, signature=SIGNED, addenda=["Later note"]))
    assert "Signed by Jane Smith" in signed and "not verified by a radiologist" not in signed
    assert "Later note" in signed and "Findings" in signed
