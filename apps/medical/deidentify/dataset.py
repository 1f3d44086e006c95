"""A DICOM data set de-identified with the Annex E basic profile, at every nesting level."""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass, field
from typing import Any

from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence

from .collect import collect_identifiers
from .freetext import redact
from .phi import phi_strings
from .profile import BASIC_PROFILE, CLEAN_DESCRIPTORS, KEEP_UIDS, PATIENT_CHARACTERISTICS
from .uids import new_uid, pseudonym, salt_bytes

_DICOM_ROOT = "1.2.840.10008."
_FILE_META_REMOVE = (0x00020016, 0x00020017, 0x00020018, 0x00020026, 0x00020027, 0x00020028, 0x00020100,
                     0x00020102)
_BINARY_VRS = ("OB", "OW", "OD", "OF", "OL", "OV", "UN")
_BURNED_IN_MODALITIES = {"US", "XA", "RF", "ES", "XC", "SC", "OT", "DOC", "GM", "SM", "OP", "IVUS"}

# Named identifiers captured from the top level before anything is changed.
_NAMED = {
    "patient_name": "PatientName",
    "patient_id": "PatientID",
    "issuer_of_patient_id": "IssuerOfPatientID",
    "patient_birth_date": "PatientBirthDate",
    "patient_birth_time": "PatientBirthTime",
    "patient_sex": "PatientSex",
    "patient_age": "PatientAge",
    "patient_size": "PatientSize",
    "patient_weight": "PatientWeight",
    "patient_address": "PatientAddress",
    "patient_telephone_numbers": "PatientTelephoneNumbers",
    "other_patient_ids": "OtherPatientIDs",
    "other_patient_names": "OtherPatientNames",
    "patient_birth_name": "PatientBirthName",
    "patient_mother_birth_name": "PatientMotherBirthName",
    "medical_record_locator": "MedicalRecordLocator",
    "accession_number": "AccessionNumber",
    "study_id": "StudyID",
    "study_date": "StudyDate",
    "study_time": "StudyTime",
    "series_date": "SeriesDate",
    "series_time": "SeriesTime",
    "acquisition_date": "AcquisitionDate",
    "acquisition_time": "AcquisitionTime",
    "content_date": "ContentDate",
    "content_time": "ContentTime",
    "institution_name": "InstitutionName",
    "institution_address": "InstitutionAddress",
    "institutional_department_name": "InstitutionalDepartmentName",
    "referring_physician_name": "ReferringPhysicianName",
    "performing_physician_name": "PerformingPhysicianName",
    "physicians_of_record": "PhysiciansOfRecord",
    "name_of_physicians_reading_study": "NameOfPhysiciansReadingStudy",
    "operators_name": "OperatorsName",
    "requesting_physician": "RequestingPhysician",
    "station_name": "StationName",
    "device_serial_number": "DeviceSerialNumber",
    "study_description": "StudyDescription",
    "series_description": "SeriesDescription",
    "protocol_name": "ProtocolName",
    "study_instance_uid": "StudyInstanceUID",
    "series_instance_uid": "SeriesInstanceUID",
    "sop_instance_uid": "SOPInstanceUID",
    "frame_of_reference_uid": "FrameOfReferenceUID",
}


@dataclass(frozen=True)
class DeidOptions:
    """Profile options. The defaults are what the platform uses before anything reaches a prompt."""

    clean_descriptors: bool = True
    retain_patient_characteristics: bool = False
    pseudonymize_patient: bool = True


@dataclass
class DeidResult:
    """A de-identified data set, the originals it replaced (for the DB only) and review flags."""

    dataset: Dataset
    identifiers: dict[str, Any]
    burned_in_annotation: str | None
    flags: list[str] = field(default_factory=list)


def _text(value: Any) -> str | list[str] | None:
    """A JSON-friendly text form of an element value (None for binary or empty values)."""
    if value is None or isinstance(value, (bytes, bytearray, Sequence)):
        return None
    if isinstance(value, (MultiValue, list, tuple)):
        items = [str(v) for v in value if v not in (None, "")]
        return items or None
    s = str(value)
    return s[:256] if s.strip() else None


def _dummy(vr: str) -> Any:
    return {
        "PN": "ANONYMIZED",
        "DA": "19000101",
        "TM": "000000",
        "DT": "19000101000000",
        "AS": "000Y",
        "DS": "0",
        "IS": "0",
        "UR": "urn:anonymized",
        "US": 0,
        "SS": 0,
        "UL": 0,
        "SL": 0,
        "FL": 0.0,
        "FD": 0.0,
        "UV": 0,
        "SV": 0,
    }.get(vr, "ANONYMIZED")


class _Walker:
    def __init__(self, salt: str | bytes, options: DeidOptions, phi: set[str]) -> None:
        self.salt = salt
        self.options = options
        self.phi = phi
        self.uid_map: dict[str, str] = {}
        self.removed: dict[str, list[str]] = {}
        self.private_removed = 0
        self.cleaned: dict[str, str] = {}

    def clean(self, text: str) -> str:
        """A descriptor through the free-text filter (allowlist on, the data set's identifiers known)."""
        out = self.cleaned.get(text)
        if out is None:
            out = self.cleaned[text] = redact(text, known=self.phi, descriptor=True)
        return out

    def uid(self, value: Any) -> Any:
        if isinstance(value, (MultiValue, list, tuple)):
            return [self.uid(v) for v in value]
        old = str(value).strip()
        if not old:
            return value
        new = self.uid_map.get(old)
        if new is None:
            new = new_uid(old, self.salt)
            self.uid_map[old] = new
        return new

    def record(self, keyword: str, value: Any) -> None:
        text = _text(value)
        if text is None:
            return
        bucket = self.removed.setdefault(keyword or "unknown", [])
        for t in text if isinstance(text, list) else [text]:
            if t not in bucket and len(bucket) < 20:
                bucket.append(t[:256])

    def replace_foreign_uids(self, elem: Any) -> None:
        """Replace values of an unlisted UI attribute that are not DICOM-registered UIDs."""
        values = list(elem.value) if isinstance(elem.value, (MultiValue, list)) else [elem.value]
        if all(str(v).startswith(_DICOM_ROOT) for v in values):
            return
        self.record(elem.keyword, elem.value)
        new = [v if str(v).startswith(_DICOM_ROOT) else self.uid(v) for v in values]
        elem.value = new if len(new) > 1 else new[0]

    def walk(self, ds: Dataset) -> None:
        for tag in list(ds.keys()):
            elem = ds[tag]
            itag = int(tag)
            group = itag >> 16
            if tag.is_private:
                del ds[tag]
                self.private_removed += 1
                continue
            if (0x5000 <= group <= 0x50FF or 0x6000 <= group <= 0x60FF) and group % 2 == 0:
                del ds[tag]
                continue
            action = BASIC_PROFILE.get(itag)
            if self.options.retain_patient_characteristics and itag in PATIENT_CHARACTERISTICS:
                action = "K"
            elif self.options.clean_descriptors and itag in CLEAN_DESCRIPTORS:
                action = "C"
            self.apply(ds, elem, itag, action)

    def apply(self, ds: Dataset, elem: Any, itag: int, action: str | None) -> None:
        vr = elem.VR
        if action in ("Z/D",):
            action = "D"
        elif action in ("X/Z", "X/Z/D"):
            action = "Z"
        elif action == "X/D":
            action = "X"
        if action in (None, "K", "X/Z/U*"):
            if vr == "SQ":
                for item in elem.value or []:
                    self.walk(item)
            elif vr == "UI" and action is None and itag not in KEEP_UIDS and elem.value:
                self.replace_foreign_uids(elem)
            return
        self.record(elem.keyword, elem.value)
        if action == "X":
            del ds[itag]
        elif action == "U":
            if vr == "SQ":
                for item in elem.value or []:
                    self.walk(item)
            elif elem.value:
                elem.value = self.uid(elem.value)
        elif action == "Z":
            elem.value = Sequence([]) if vr == "SQ" else (b"" if vr in _BINARY_VRS else None)
        elif action == "D":
            if vr == "SQ":
                elem.value = Sequence([])
            elif vr == "UI":
                elem.value = self.uid(elem.value or "dummy")
            elif vr in _BINARY_VRS:
                elem.value = b"\x00\x00"
            else:
                elem.value = _dummy(vr)
        elif action == "C":
            text = _text(elem.value)
            if text is None:
                return
            cleaned = self.clean(" ".join(text) if isinstance(text, list) else text)
            limit = {"SH": 16, "CS": 16, "LO": 64, "ST": 1024}.get(vr)
            elem.value = cleaned[:limit] if limit else cleaned
        else:  # pragma: no cover - the table only holds the actions above
            raise ValueError(f"unknown de-identification action {action!r}")


def _named_identifiers(ds: Dataset) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, kw in _NAMED.items():
        if kw in ds:
            text = _text(ds[kw].value)
            if text is not None:
                out[key] = text
    return out


def _burned_in(ds: Dataset) -> tuple[str | None, list[str]]:
    value = str(ds.get("BurnedInAnnotation", "") or "").strip().upper() or None
    flags: list[str] = []
    modality = str(ds.get("Modality", "") or "").upper()
    secondary_capture = "1.2.840.10008.5.1.4.1.1.7" in str(ds.get("SOPClassUID", ""))
    if value == "YES":
        flags.append("burned_in_annotation: the pixel data carries burned-in text that may identify "
                     "the patient")
    elif value is None and (modality in _BURNED_IN_MODALITIES or secondary_capture):
        flags.append(f"burned_in_annotation_unknown: {modality or 'this'} images often carry burned-in text; "
                     "check before sharing")
    return value, flags


def deidentify(
    ds: Dataset,
    salt: str | bytes,
    *,
    options: DeidOptions | None = None,
    in_place: bool = False,
) -> DeidResult:
    """De-identify a data set with the Annex E basic profile; return it with the original identifiers.

    ``salt`` is the per-installation secret that makes replacement UIDs and pseudonyms deterministic.
    The input is copied unless ``in_place``. The pixel data is not changed.
    """
    options = options or DeidOptions()
    salt_bytes(salt)
    out = ds if in_place else copy.deepcopy(ds)
    identifiers = _named_identifiers(out)
    burned, flags = _burned_in(out)
    collected = collect_identifiers(out)
    walker = _Walker(salt, options, phi_strings(identifiers) | collected)
    original_patient = "|".join(
        str(out.get(k, "") or "") for k in ("PatientID", "IssuerOfPatientID")
    ).strip("|") or "|".join(str(out.get(k, "") or "") for k in ("PatientName", "PatientBirthDate"))
    walker.walk(out)
    meta = getattr(out, "file_meta", None)
    if meta is not None:
        for tag in _FILE_META_REMOVE:
            if tag in meta:
                walker.record(meta[tag].keyword, meta[tag].value)
                del meta[tag]
        if "SOPInstanceUID" in out:
            meta.MediaStorageSOPInstanceUID = out.SOPInstanceUID
    if options.pseudonymize_patient:
        pseudo = pseudonym(original_patient, salt)
        out.PatientID = pseudo
        out.PatientName = f"ANON^{pseudo[4:]}"
        identifiers["pseudonym"] = pseudo
    out.PatientIdentityRemoved = "YES"
    methods = ["DICOM PS3.15 Annex E Basic Profile"]
    codes = [("113100", "Basic Application Confidentiality Profile")]
    if options.clean_descriptors:
        methods.append("Clean Descriptors Option")
        codes.append(("113105", "Clean Descriptors Option"))
    if options.retain_patient_characteristics:
        methods.append("Retain Patient Characteristics Option")
        codes.append(("113108", "Retain Patient Characteristics Option"))
    methods.append("UIDs: HMAC-SHA256 of a site secret (2.25)")
    out.DeidentificationMethod = methods
    items = []
    for value, meaning in codes:
        item = Dataset()
        item.CodeValue = value
        item.CodingSchemeDesignator = "DCM"
        item.CodeMeaning = meaning
        items.append(item)
    out.DeidentificationMethodCodeSequence = Sequence(items)
    out.LongitudinalTemporalInformationModified = "REMOVED"
    identifiers["uid_map"] = dict(walker.uid_map)
    identifiers["removed"] = walker.removed
    identifiers["private_attributes_removed"] = walker.private_removed
    identifiers["collected"] = sorted(collected)
    if burned is not None:
        identifiers["burned_in_annotation"] = burned
    return DeidResult(out, identifiers, burned, flags)


def deidentify_file(
    src: str | os.PathLike[str], dst: str | os.PathLike[str], salt: str | bytes, *,
    options: DeidOptions | None = None,
) -> DeidResult:
    """Read ``src`` (via :func:`apps.medical.ingest.read_dataset`), de-identify, write ``dst``."""
    from apps.medical.ingest import read_dataset

    ds = read_dataset(os.fspath(src), src)
    result = deidentify(ds, salt, options=options, in_place=True)
    result.dataset.save_as(dst, enforce_file_format=False)
    return result
