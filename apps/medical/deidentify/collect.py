"""Identifying strings collected from every nesting level of a data set, before it is de-identified.

The descriptor cleaning and the last check before a prompt is sent use them as exact matches: a
physician's name that appears only inside ``RequestAttributesSequence``, a name in a private tag or
an address in ``PatientAddress`` is then also removed where it is repeated in ``SeriesDescription``.
"""

from __future__ import annotations

import re

from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence

from . import vocabulary
from .phi import _date_forms, _keep_phi, _name_parts
from .profile import BASIC_PROFILE, CLEAN_DESCRIPTORS

_TEXT_VRS = {"LO", "SH", "LT", "ST", "UT", "UC", "PN", "DA", "DT", "AE", "UR"}
_CJK_RUN = re.compile(r"[\u4e00-\u9fff]{2,}")
_WORD = re.compile(r"[A-Za-z][A-Za-z'\-]{2,}")
_REMOVING = frozenset({"X", "Z", "D", "X/Z", "X/D", "X/Z/D", "Z/D"})
#: keep at most this many strings per data set (a hostile file cannot make the matcher huge)
MAX_COLLECTED = 2000


def _values(value) -> list[str]:
    if isinstance(value, (MultiValue, list, tuple)):
        return [str(v) for v in value if v not in (None, "")]
    if value is None or isinstance(value, (bytes, bytearray, Sequence)):
        return []
    s = str(value).strip()
    return [s] if s else []


def _expand(vr: str, text: str, kept_words: set[str]) -> set[str]:
    """The string itself, name parts or date forms, and its rarer words (not in the vocabulary nor in
    the attributes the de-identification keeps, such as the manufacturer)."""
    if vr == "PN":
        out = _name_parts(text)
    elif vr in ("DA", "DT"):
        out = _date_forms(text[:8])
    else:
        out = {text}
    for word in _WORD.findall(text):
        if not vocabulary.english_known(word) and word.lower() not in kept_words:
            out.add(word)
    out.update(run for run in _CJK_RUN.findall(text) if vocabulary.chinese_segments(run) != [(run, True)])
    return {s.strip() for s in out if _keep_phi(s)}


def collect_identifiers(ds: Dataset) -> set[str]:
    """Every identifying string of ``ds`` at every nesting level: person names, the values of the
    attributes the basic profile removes or replaces (IDs, dates, addresses, phone numbers,
    comments...), and every private text value; names split into parts, dates in common forms."""
    found: set[str] = set()
    kept_words: set[str] = set()
    kept_values: set[str] = set()  # what the de-identified copy keeps anyway (a model name) is no identifier
    wanted_elems = []

    def walk(item: Dataset, removed: bool) -> None:
        for elem in item:
            if len(wanted_elems) >= MAX_COLLECTED:
                return
            tag = int(elem.tag)
            action = BASIC_PROFILE.get(tag)
            if elem.VR == "SQ":
                # everything inside a sequence the profile removes or empties is removed data
                inside = removed or elem.tag.is_private or action in _REMOVING
                for sub in elem.value or []:
                    walk(sub, inside)
                continue
            if elem.VR not in _TEXT_VRS and elem.VR != "CS":  # coded strings: only what the copy keeps
                continue
            wanted = elem.VR != "CS" and (removed or elem.tag.is_private or elem.VR == "PN" or (
                action not in (None, "K") and tag not in CLEAN_DESCRIPTORS and elem.VR != "UI"))
            if elem.tag.is_private and elem.tag.is_private_creator:
                continue  # a private block's name ("GEMS_IMAG_01"), not data
            if not wanted:
                if not removed and action in (None, "K") and elem.VR not in ("DA", "DT"):
                    values = _values(elem.value)
                    kept_values.update(v.strip().lower() for v in values)
                    kept_words.update(w.lower() for v in values for w in _WORD.findall(v[:256]))
                continue
            wanted_elems.append((elem.VR, _values(elem.value)))

    walk(ds, False)
    for vr, values in wanted_elems:
        for text in values:
            if text.strip().lower() in kept_values:
                continue
            found.update(_expand(vr, text[:1024], kept_words))
            if len(found) >= MAX_COLLECTED:
                break
    return set(sorted(found)[:MAX_COLLECTED])
