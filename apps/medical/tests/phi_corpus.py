"""A test corpus that plants patient identity in many places of one study (not a test module).

Built by hand from CT_small.dcm: the planted strings are chosen here, never derived from what the
de-identifier returns, so a value it does not know about is still searched for. Two CT slices of one
study: one uploaded as a plain file whose name carries the patient's name, one inside a ZIP whose
member path carries another name; an indication in English and Chinese.
"""
from __future__ import annotations

import copy
import io
import re
import warnings
import zipfile
from dataclasses import dataclass, field

import pydicom
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import generate_uid

#: place → the strings planted there (each must never come out anywhere but the identity rows)
PLACES: dict[str, list[str]] = {
    "PatientName (top level)": ["Blathers", "Fenwick"],
    "RequestAttributesSequence[0] (level 1): scheduled performing physician": ["Pemberton", "Aldous"],
    "OperatorIdentificationSequence[0].PersonIdentificationCodeSequence[0] (level 2): name": [
        "Thaddeus", "Okonkwo"],
    "OperatorIdentificationSequence[0].PersonIdentificationCodeSequence[0] (level 2): ID": ["OP-77341-KAPPA"],
    "StudyDescription: third party without a title": ["Hannelore", "Fitzgibbon"],
    "SeriesDescription: 'Follow-up for Mr …' and a phone": ["Okonkwo", "555-867-5309"],
    "ProtocolName: a name repeated from level 2": ["Thaddeus"],
    "PerformedProcedureStepDescription: a Chinese name": ["王小明"],
    "PatientTelephoneNumbers": ["555-867-5309"],
    "PatientAddress": ["Wallaby"],
    "OtherPatientIDs: record number": ["55102934"],
    "ImageComments: address and room": ["Wallaby", "47B"],
    "private tag": ["Ignatius", "Vandersloot"],
    "ReferringPhysicianName, also nested": ["Heartwell", "Quentin"],
    "InstitutionName": ["Quimby"],
    "file name": ["Zebulon", "Marchetti"],
    "ZIP path": ["Ottoline", "Featherstonehaugh", "李建国"],
    "indication (English)": ["Blathers", "17 March 1958", "55102934", "867-5309", "Wallaby", "47B",
                             "Cordelia", "Ravenscroft"],
    "indication (Chinese)": ["王小明", "13812345678", "ZY20230045"],
}

INDICATION = ("Mr Fenwick Blathers, DOB 17 March 1958, MRN 55102934, call 555-867-5309, lives at "
              "42 Wallaby Way, Room 47B. Seen by Cordelia Ravenscroft. Persistent cough, known Hodgkin "
              "lymphoma; rule out mass. 患者王小明，电话13812345678，住院号ZY20230045，右肺上叶结节复查。")
#: clinical content that must still reach the model
CLINICAL = ["Persistent cough", "Hodgkin lymphoma", "rule out mass", "右肺上叶结节复查"]

FILE_NAME = "Marchetti_Zebulon_chest.dcm"
ZIP_NAME = "export.zip"
ZIP_MEMBER = "Featherstonehaugh_Ottoline/李建国/IMG0002.dcm"


def planted_strings() -> list[str]:
    """Every planted string (deduplicated), longest first."""
    return sorted({s for values in PLACES.values() for s in values}, key=len, reverse=True)


@dataclass
class Corpus:
    files: dict[str, bytes]
    indication: str
    originals: list[Dataset] = field(default_factory=list)


def _slice(base: Dataset, study: str, series: str, number: int) -> Dataset:
    ds = copy.deepcopy(base)
    ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID = study, series, generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.InstanceNumber = number
    ds.SpecificCharacterSet = "ISO_IR 192"  # UTF-8: the Chinese values are really in the file
    pos = [float(v) for v in ds.ImagePositionPatient]
    ds.ImagePositionPatient = [pos[0], pos[1], pos[2] + 2.5 * (number - 1)]
    ds.PatientName = "Blathers^Fenwick"
    ds.PatientID = "PX-31337"
    ds.PatientBirthDate = "19580317"
    ds.PatientTelephoneNumbers = "555-867-5309"
    ds.PatientAddress = "42 Wallaby Way, Sydney"
    ds.OtherPatientIDs = "MRN-55102934"
    ds.InstitutionName = "Saint Quimby Memorial Hospital"
    ds.ReferringPhysicianName = "Heartwell^Quentin"
    ds.StudyDescription = "CT CHEST follow-up Hannelore Fitzgibbon"
    ds.SeriesDescription = "Follow-up for Mr Okonkwo 555-867-5309"
    ds.ProtocolName = "CHEST ROUTINE Thaddeus"
    ds.PerformedProcedureStepDescription = "胸部CT 王小明"
    ds.ImageComments = "lives at 42 Wallaby Way, Room 47B"
    ds.BodyPartExamined = "CHEST"
    request = Dataset()
    request.RequestedProcedureID = "RQ-88123"
    request.ScheduledPerformingPhysicianName = "Pemberton^Aldous"
    request.RequestingPhysician = "Heartwell^Quentin"
    ds.RequestAttributesSequence = Sequence([request])
    code = Dataset()
    code.CodeValue = "OP-77341-KAPPA"
    code.CodingSchemeDesignator = "L"
    code.CodeMeaning = "Thaddeus Okonkwo"
    operator = Dataset()
    operator.PersonIdentificationCodeSequence = Sequence([code])
    ds.OperatorIdentificationSequence = Sequence([operator])
    block = ds.private_block(0x0011, "ACME PRIVATE", create=True)
    block.add_new(0x01, "LO", "Ignatius Vandersloot")
    return ds


def _bytes(ds: Dataset) -> bytes:
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def build_corpus() -> Corpus:
    """The upload: a plain file and a ZIP (two slices of one study) and the indication."""
    base = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    study, series = generate_uid(), generate_uid()
    slices = [_slice(base, study, series, n) for n in (1, 2)]
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(ZIP_MEMBER, _bytes(slices[1]))
    return Corpus(files={FILE_NAME: _bytes(slices[0]), ZIP_NAME: archive.getvalue()},
                  indication=INDICATION, originals=slices)


def leaks(text: str, planted: list[str] | None = None) -> list[str]:
    """The planted strings found in ``text`` (case-insensitive; whole tokens for Latin and digits)."""
    found = []
    for p in planted or planted_strings():
        if re.search(r"[\u4e00-\u9fff]", p):
            hit = p in text
        else:
            pattern = rf"(?<![A-Za-z0-9]){re.escape(p)}(?![A-Za-z0-9])"
            hit = re.search(pattern, text, re.IGNORECASE) is not None
        if hit:
            found.append(p)
    return found


def pdf_text(data: bytes) -> str:
    """The text drawn in a reportlab PDF: every content stream inflated, read as Latin-1 and (for the
    CID font's two-byte codes) as UTF-16BE."""
    import base64
    import zlib

    out = []
    for m in re.finditer(rb"stream\r?\n(.*?)\s*endstream", data, re.S):
        raw = m.group(1).strip()
        if raw.endswith(b"~>"):  # reportlab: /ASCII85Decode /FlateDecode
            raw = base64.a85decode(raw, adobe=True)
        try:
            raw = zlib.decompress(raw)
        except zlib.error:
            pass
        out.append(raw.decode("latin-1"))
        for literal in re.findall(rb"\(((?:\\.|[^\\)])*)\)\s*Tj", raw, re.S):
            data16 = _pdf_unescape(literal)
            if len(data16) % 2 == 0:  # the CID font's strings are UCS-2 (UniGB-UCS2-H)
                out.append(data16.decode("utf-16-be", "ignore"))
    return "\n".join(out)


def _pdf_unescape(literal: bytes) -> bytes:
    out = bytearray()
    i = 0
    while i < len(literal):
        ch = literal[i]
        if ch != 0x5C:  # backslash
            out.append(ch)
            i += 1
            continue
        octal = re.match(rb"[0-7]{1,3}", literal[i + 1 : i + 4])
        if octal:
            out.append(int(octal.group(0), 8) & 0xFF)
            i += 1 + len(octal.group(0))
            continue
        nxt = literal[i + 1 : i + 2]
        out.extend({b"n": b"\n", b"r": b"\r", b"t": b"\t", b"b": b"\b", b"f": b"\f"}.get(nxt, nxt))
        i += 2
    return bytes(out)
