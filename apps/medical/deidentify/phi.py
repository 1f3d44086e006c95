"""PHI checks: which strings identify a patient (or staff, institution, original UIDs), and where
any of them occurs in a data set, a prompt or any JSON-like value."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from pydicom.datadict import dictionary_VR
from pydicom.dataset import Dataset
from pydicom.valuerep import PersonName

from .text import phi_pattern

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
    "indication",  # the indication as entered: filtered as free text, not matched as one string
}
# Of the other removed attributes: every person name, date and UID, and the texts whose keyword says
# they identify someone or something (IDs, numbers, addresses, telephones, institutions).
_PHI_VRS = {"PN", "DA", "DT", "UI"}
_IDENTITY_KEYWORD = re.compile(
    r"(ID|IDs|Number|Numbers|Address|Telephone|Telecom|Information|InstitutionName|Issuer|Residence|Locator)$"
)
_PLACEHOLDERS = {"ANON", "ANONYMOUS", "ANONYMIZED", "ANONYMISED", "UNKNOWN", "NONE", "NULL", "N/A", "NA",
                 "TEST", "DUMMY"}


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
