"""De-identification of DICOM data sets: PS3.15 Annex E Basic Application Level Confidentiality Profile.

Our own implementation over the basic-profile table in :mod:`apps.medical.deid_profile`.

* Attributes are removed (X), emptied (Z), given dummy values (D) or new UIDs (U) as the table says,
  at every nesting level. Ambiguous actions are resolved conservatively: ``Z/D`` -> D (a dummy keeps
  Type 1 attributes valid), ``X/Z`` -> Z, ``X/D`` -> X, ``X/Z/D`` -> Z, ``X/Z/U*`` -> the sequence is
  kept and its items de-identified (so its instance UIDs are replaced).
* UIDs are replaced consistently: ``new = 2.25.<UUIDv8 from HMAC-SHA256(salt, old)>``, so the same
  original UID always maps to the same new UID for one installation's secret salt, across uploads.
  Any other UI attribute whose value is not a DICOM-registered UID (``1.2.840.10008.*``) and that does
  not name a class or a transfer syntax is replaced the same way.
* All private attributes are removed; curves (50xx) and overlay groups (60xx) are removed (the profile
  requires overlay data and comments to go; the rest of the overlay group is removed with them).
* Options (default on): Clean Descriptors (113105): Study/Series Description, Protocol Name and a few
  procedure descriptions are kept but cleaned of the data set's own identifying strings, dates and long
  digit runs; a pseudonymous Patient ID/Name derived from the salt so one patient's studies still
  group. Option (default off): Retain Patient Characteristics (113108): sex, age, size, weight.
* ``PatientIdentityRemoved`` = YES, ``DeidentificationMethod``, ``DeidentificationMethodCodeSequence``
  (113100 and the options used), ``LongitudinalTemporalInformationModified`` = REMOVED.
* ``BurnedInAnnotation`` is kept (pixel data is not cleaned) and reported in :attr:`DeidResult.flags`.

The original identifiers are returned as a JSON-serialisable dict for the platform's database only.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from pydicom.datadict import dictionary_VR
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence
from pydicom.valuerep import PersonName

from apps.medical.deid_profile import BASIC_PROFILE, CLEAN_DESCRIPTORS, KEEP_UIDS, PATIENT_CHARACTERISTICS

__all__ = [
    "DeidOptions",
    "DeidResult",
    "deidentify",
    "deidentify_file",
    "find_phi",
    "new_uid",
    "phi_pattern",
    "phi_strings",
    "reidentify_header",
    "scrub_text",
]

_TEXT_VRS = {"AE", "AS", "CS", "DA", "DS", "DT", "IS", "LO", "LT", "PN", "SH", "ST", "TM", "UC", "UR", "UT", "UI"}
_DICOM_ROOT = "1.2.840.10008."
_FILE_META_REMOVE = (0x00020016, 0x00020017, 0x00020018, 0x00020026, 0x00020027, 0x00020028, 0x00020100, 0x00020102)
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


def _salt_bytes(salt: str | bytes) -> bytes:
    raw = salt.encode("utf-8") if isinstance(salt, str) else bytes(salt)
    if not raw:
        raise ValueError("de-identification salt must be a non-empty per-installation secret")
    return raw


def new_uid(original: str, salt: str | bytes) -> str:
    """Deterministic replacement UID: ``2.25.<int>`` of a version-8 UUID from HMAC-SHA256(salt, uid)."""
    digest = hmac.new(_salt_bytes(salt), str(original).strip().encode("ascii", "replace"), hashlib.sha256).digest()
    n = int.from_bytes(digest[:16], "big")
    n = (n & ~(0xF << 76)) | (0x8 << 76)  # UUID version 8 (custom)
    n = (n & ~(0x3 << 62)) | (0x2 << 62)  # RFC 4122 variant
    return f"2.25.{n}"


def _pseudonym(identity: str, salt: str | bytes) -> str:
    digest = hmac.new(_salt_bytes(salt), ("patient:" + identity).encode("utf-8", "replace"), hashlib.sha256)
    return "ANON" + digest.hexdigest()[:12].upper()


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


_DATE_RE = re.compile(
    r"\b(19|20)\d{2}[-./]?(0[1-9]|1[0-2])[-./]?(0[1-9]|[12]\d|3[01])\b"
    r"|\b\d{1,2}[-./]\d{1,2}[-./]\d{2,4}\b"
    r"|\d{2,4}\s*年\s*\d{1,2}\s*月(\s*\d{1,2}\s*日)?"
)
_LONG_DIGITS = re.compile(r"\d{5,}")


def scrub_text(text: str, phi: Iterable[str]) -> str:
    """Remove identifying strings, dates and long digit runs (IDs) from free text."""
    pattern = phi_pattern(phi)
    out = pattern.sub("[removed]", text) if pattern is not None else text
    out = _DATE_RE.sub("[date]", out)
    out = _LONG_DIGITS.sub("[number]", out)
    return re.sub(r"\s+", " ", out).strip()


class _Walker:
    def __init__(self, salt: str | bytes, options: DeidOptions, phi: set[str]) -> None:
        self.salt = salt
        self.options = options
        self.phi = phi
        self.uid_map: dict[str, str] = {}
        self.removed: dict[str, list[str]] = {}
        self.private_removed = 0

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
            elem.value = Sequence([]) if vr == "SQ" else (b"" if vr in ("OB", "OW", "OD", "OF", "OL", "OV", "UN") else None)
        elif action == "D":
            if vr == "SQ":
                elem.value = Sequence([])
            elif vr == "UI":
                elem.value = self.uid(elem.value or "dummy")
            elif vr in ("OB", "OW", "OD", "OF", "OL", "OV", "UN"):
                elem.value = b"\x00\x00"
            else:
                elem.value = _dummy(vr)
        elif action == "C":
            text = _text(elem.value)
            if text is None:
                return
            cleaned = scrub_text(" ".join(text) if isinstance(text, list) else text, self.phi)
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
    if value == "YES":
        flags.append("burned_in_annotation: the pixel data carries burned-in text that may identify the patient")
    elif value is None and (modality in _BURNED_IN_MODALITIES or "1.2.840.10008.5.1.4.1.1.7" in str(ds.get("SOPClassUID", ""))):
        flags.append(f"burned_in_annotation_unknown: {modality or 'this'} images often carry burned-in text; check before sharing")
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
    _salt_bytes(salt)
    out = ds if in_place else copy.deepcopy(ds)
    identifiers = _named_identifiers(out)
    burned, flags = _burned_in(out)
    walker = _Walker(salt, options, phi_strings(identifiers))
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
        pseudo = _pseudonym(original_patient, salt)
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
    if burned is not None:
        identifiers["burned_in_annotation"] = burned
    return DeidResult(out, identifiers, burned, flags)


def deidentify_file(
    src: str | os.PathLike[str], dst: str | os.PathLike[str], salt: str | bytes, *, options: DeidOptions | None = None
) -> DeidResult:
    """Read ``src`` (via :func:`apps.medical.ingest.read_dataset`), de-identify, write ``dst``."""
    from apps.medical.ingest import read_dataset

    ds = read_dataset(os.fspath(src), src)
    result = deidentify(ds, salt, options=options, in_place=True)
    result.dataset.save_as(dst, enforce_file_format=False)
    return result


# -------------------------------------------------------------------------------------- PHI checks

_PHI_SKIP_KEYS = {
    "uid_map",
    "pseudonym",
    "private_attributes_removed",
    "burned_in_annotation",
    "removed",
    "patient_sex",
    "patient_age",
    "patient_size",
    "patient_weight",
    "study_time",
    "series_time",
    "acquisition_time",
    "content_time",
    "patient_birth_time",
    "study_description",
    "series_description",
    "protocol_name",
    "station_name",  # a device label, often equal to the manufacturer's name
}
# Of the other removed attributes: every person name, date and UID, and the texts whose keyword says
# they identify someone or something (IDs, numbers, addresses, telephones, institutions).
_PHI_VRS = {"PN", "DA", "DT", "UI"}
_IDENTITY_KEYWORD = re.compile(
    r"(ID|IDs|Number|Numbers|Address|Telephone|Telecom|Information|InstitutionName|Issuer|Residence|Locator)$"
)
_PLACEHOLDERS = {"ANON", "ANONYMOUS", "ANONYMIZED", "ANONYMISED", "UNKNOWN", "NONE", "NULL", "N/A", "NA", "TEST", "DUMMY"}


def _removed_is_phi(keyword: str) -> bool:
    try:
        vr = dictionary_VR(keyword)
    except KeyError:
        return False
    if vr in _PHI_VRS:
        return True
    return vr in {"LO", "SH", "ST", "LT", "UT", "UC"} and bool(_IDENTITY_KEYWORD.search(keyword)) and (
        "Description" not in keyword
    )


def _name_parts(value: str) -> set[str]:
    parts = {value}
    comps = [c.strip() for c in re.split(r"[\^=]", value) if c.strip()]
    parts.update(comps)
    if len(comps) >= 2:
        parts.add(f"{comps[1]} {comps[0]}")
        parts.add(f"{comps[0]} {comps[1]}")
        parts.add(f"{comps[0]}, {comps[1]}")
    return parts


def _date_forms(value: str) -> set[str]:
    m = re.fullmatch(r"(\d{4})(\d{2})(\d{2})", value.strip())
    if not m:
        return {value}
    y, mo, d = m.groups()
    return {value, f"{y}-{mo}-{d}", f"{y}/{mo}/{d}", f"{d}/{mo}/{y}", f"{mo}/{d}/{y}", f"{d}.{mo}.{y}"}


def _keep_phi(s: str) -> bool:
    s = s.strip()
    if not s or s.upper() in _PLACEHOLDERS:
        return False
    alnum = {ch for ch in s.upper() if ch.isalnum()}
    if len(alnum) < 2:  # "00000", "----", "0.000"
        return False
    if any(ord(ch) > 127 for ch in s):
        return len(s) >= 2
    return len(s) >= 3


def phi_strings(original_identifiers: dict[str, Any]) -> set[str]:
    """Every identifying string in an identifiers dict (names split into parts, dates in common forms).

    Used to check that nothing leaked into a de-identified data set, a prompt or a log line, and to
    scrub free text. Covers the patient's and staff names, IDs, dates, institution and original UIDs
    (and of the other removed attributes: names, dates, UIDs and identifier-like texts); very short
    strings, placeholders ("ANON") and strings of one repeated character are left out.
    """
    found: set[str] = set()

    def add(key: str, value: Any) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                add(k, v)
            return
        if isinstance(value, (list, tuple, set)):
            for v in value:
                add(key, v)
            return
        if value is None or isinstance(value, (bool, int, float)):
            return
        s = str(value).strip()
        lowered = key.lower()
        if "name" in lowered or lowered in {"physicians_of_record", "requesting_physician"}:
            candidates = _name_parts(s)
        elif "date" in lowered or (re.fullmatch(r"\d{8}", s) is not None):
            candidates = _date_forms(s)
        else:
            candidates = {s}
        found.update(c.strip() for c in candidates if _keep_phi(c))

    for key, value in original_identifiers.items():
        if key not in _PHI_SKIP_KEYS:
            add(key, value)
    for keyword, values in (original_identifiers.get("removed") or {}).items():
        if _removed_is_phi(keyword):
            add(keyword, values)
    found.update(k for k in original_identifiers.get("uid_map", {}) if _keep_phi(k))
    return found


def phi_pattern(phi: Iterable[str]) -> re.Pattern[str] | None:
    """One case-insensitive regex matching any PHI string as a whole token (not inside a longer
    word or number: '134' does not match inside '2.25.1345'). None for an empty set."""
    needles = sorted({p.strip() for p in phi if p and p.strip()}, key=len, reverse=True)
    if not needles:
        return None
    alternation = "|".join(re.escape(n) for n in needles)
    return re.compile(rf"(?<![A-Za-z0-9])(?:{alternation})(?![A-Za-z0-9])", re.IGNORECASE)


def _iter_strings(obj: Any, path: str = "") -> Iterable[tuple[str, str]]:
    if isinstance(obj, Dataset):
        meta = getattr(obj, "file_meta", None)
        if meta is not None and meta is not obj:
            yield from _iter_strings(meta, path + "file_meta.")
        for elem in obj:
            where = f"{path}{elem.keyword or elem.tag}"
            if elem.VR == "SQ":
                for i, item in enumerate(elem.value or []):
                    yield from _iter_strings(item, f"{where}[{i}].")
            elif isinstance(elem.value, (bytes, bytearray)):
                if elem.keyword not in ("PixelData", "FloatPixelData", "DoubleFloatPixelData"):
                    yield where, bytes(elem.value[:4096]).decode("latin-1")
            elif elem.value is not None:
                yield where, str(elem.value)
    elif isinstance(obj, dict):
        for k, v in obj.items():
            yield from _iter_strings(v, f"{path}{k}.")
    elif isinstance(obj, (list, tuple, set)):
        for i, v in enumerate(obj):
            yield from _iter_strings(v, f"{path}[{i}].")
    elif isinstance(obj, (str, PersonName)):
        yield path.rstrip("."), str(obj)
    elif isinstance(obj, (bytes, bytearray)):
        yield path.rstrip("."), bytes(obj).decode("latin-1")


def find_phi(obj: Any, phi: Iterable[str]) -> list[str]:
    """Where any PHI string occurs as a whole token (case-insensitive) in a Dataset, dict, list or
    string; [] if none."""
    pattern = phi_pattern(phi)
    if pattern is None:
        return []
    hits = []
    for where, text in _iter_strings(obj):
        for m in pattern.finditer(text):
            hits.append(f"{where}: contains {m.group(0)!r}")
    return hits


def reidentify_header(ds: Dataset, identifiers: dict[str, Any]) -> Dataset:
    """A copy of a de-identified (header-only) data set with the patient, study and UIDs restored.

    For outputs that go back to the hospital's own PACS or EHR (an SR that must reference the
    original study). Never use its result for anything that leaves for the model service.
    """
    out = copy.deepcopy(ds)
    reverse = {new: old for old, new in identifiers.get("uid_map", {}).items()}

    def fix(d: Dataset) -> None:
        for elem in d:
            if elem.VR == "SQ":
                for item in elem.value or []:
                    fix(item)
            elif elem.VR == "UI" and elem.value:
                if isinstance(elem.value, (MultiValue, list)):
                    elem.value = [reverse.get(str(v), str(v)) for v in elem.value]
                else:
                    elem.value = reverse.get(str(elem.value), str(elem.value))

    fix(out)
    if getattr(out, "file_meta", None) is not None and "SOPInstanceUID" in out:
        out.file_meta.MediaStorageSOPInstanceUID = out.SOPInstanceUID
    for key, kw in (
        ("patient_name", "PatientName"),
        ("patient_id", "PatientID"),
        ("patient_birth_date", "PatientBirthDate"),
        ("patient_sex", "PatientSex"),
        ("accession_number", "AccessionNumber"),
        ("study_id", "StudyID"),
        ("study_date", "StudyDate"),
        ("study_time", "StudyTime"),
        ("referring_physician_name", "ReferringPhysicianName"),
        ("study_description", "StudyDescription"),
    ):
        value = identifiers.get(key)
        if isinstance(value, str):
            setattr(out, kw, value)
    out.PatientIdentityRemoved = "NO"
    for kw in ("DeidentificationMethod", "DeidentificationMethodCodeSequence", "LongitudinalTemporalInformationModified"):
        if kw in out:
            delattr(out, kw)
    return out
