"""Helpers for the medical app's Django tests (not collected: no ``test_`` prefix)."""
from __future__ import annotations

import copy
import io
import warnings
import zipfile

import pydicom
from pydicom.data import get_testdata_file
from pydicom.uid import generate_uid

PLANTED = {
    "name": "Zhangsan^Wei",
    "id": "PID-77129-ALPHA",
    "birth": "19580317",
    "accession": "ACC99318877",
    "other_id": "MRN-55102934",
    "institution": "Saint Quimby Memorial Hospital",
    "physician": "Heartwell^Quentin",
}


def file_bytes(name: str) -> bytes:
    with open(get_testdata_file(name), "rb") as fh:
        return fh.read()


def to_bytes(ds) -> bytes:
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def planted_ct(*, study_uid: str | None = None, n: int = 1, name: str = "CT_small.dcm") -> list[bytes]:
    """``n`` CT slices of one series, with planted patient identifiers in many tags (and a private tag)."""
    base = pydicom.dcmread(get_testdata_file(name))
    study = study_uid or generate_uid()
    series = generate_uid()
    out = []
    for i in range(n):
        ds = copy.deepcopy(base)
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID = study, series, generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.InstanceNumber = i + 1
        if "ImagePositionPatient" in ds:
            pos = [float(v) for v in ds.ImagePositionPatient]
            ds.ImagePositionPatient = [pos[0], pos[1], pos[2] + 2.5 * i]
        ds.PatientName = PLANTED["name"]
        ds.PatientID = PLANTED["id"]
        ds.PatientBirthDate = PLANTED["birth"]
        ds.AccessionNumber = PLANTED["accession"]
        ds.OtherPatientIDs = PLANTED["other_id"]
        ds.InstitutionName = PLANTED["institution"]
        ds.ReferringPhysicianName = PLANTED["physician"]
        ds.StudyDescription = f"CT CHEST for {PLANTED['name'].replace('^', ' ')} {PLANTED['id']}"
        ds.BodyPartExamined = "CHEST"
        block = ds.private_block(0x0011, "ACME PRIVATE", create=True)
        block.add_new(0x01, "LO", f"{PLANTED['name']} {PLANTED['birth']}")
        out.append(to_bytes(ds))
    return out


def undecodable_bytes() -> bytes:
    return file_bytes("JPEG2000-embedded-sequence-delimiter.dcm")


def truncated_bytes() -> bytes:
    return file_bytes("CT_small.dcm")[:20000]


def zip_bytes(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def multipart_related(parts: list[tuple[str, bytes]],
                      boundary: str = "DICOMwebBoundary42") -> tuple[bytes, str]:
    body = b""
    for ctype, data in parts:
        body += f"--{boundary}\r\nContent-Type: {ctype}\r\n\r\n".encode() + data + b"\r\n"
    body += f"--{boundary}--\r\n".encode()
    return body, f'multipart/related; type="application/dicom"; boundary={boundary}'


def process_upload(batch_id) -> list:
    """Run the ingest and every study job in this process (what the worker does), LLM as configured."""
    from apps.medical import services
    from apps.medical.models import Study
    from core.services import job_run_inline

    services.upload_ingest(batch_id=batch_id)
    studies = list(Study.objects.filter(batch_id=batch_id))
    for s in studies:
        job_run_inline(model=Study, job_id=str(s.pk), handler=services.study_process)
    return [Study.objects.get(pk=s.pk) for s in studies]
