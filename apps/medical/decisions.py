"""The rules that judge an AI draft, in one place (plain Python, no Django).

* :func:`postcheck` lists statements in a draft that the study's inputs cannot support: a modality the
  study does not have, a body region neither the metadata nor the indication mention, a measurement
  or a date found nowhere in the inputs, a finding without evidence.
* :func:`draft_status` decides the study job's final status: ``needs_review`` when the post-check
  warned, when anything went wrong while reading the study (``problems``) or when there is no AI
  draft at all (the model is off, unavailable or its answer was unusable); ``succeeded`` otherwise.

How the prompt is built and how a report is checked for shape is in :mod:`apps.medical.prompting`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

__all__ = ["NEEDS_REVIEW", "SUCCEEDED", "draft_needs_review", "draft_status", "postcheck"]

#: the job statuses :func:`draft_status` chooses between (``core.models.JobStatus`` values)
SUCCEEDED = "succeeded"
NEEDS_REVIEW = "needs_review"


def draft_needs_review(*, postcheck_warnings: Sequence[str], problems: Sequence[str],
                       ai_generated: bool) -> bool:
    """True when a radiologist must look before the draft counts: the post-check warned, a series or
    the model step had a problem, or there is no AI draft (a fallback text stands in for it)."""
    return bool(postcheck_warnings) or bool(problems) or not ai_generated


def draft_status(*, postcheck_warnings: Sequence[str], problems: Sequence[str], ai_generated: bool) -> str:
    """The study job's status once its draft is written: :data:`NEEDS_REVIEW` or :data:`SUCCEEDED`."""
    review = draft_needs_review(postcheck_warnings=postcheck_warnings, problems=problems,
                                ai_generated=ai_generated)
    return NEEDS_REVIEW if review else SUCCEEDED


# ------------------------------------------------------------------------------------ post-check

def _acr(word: str) -> str:
    """An acronym as a whole ASCII word (CJK neighbours allowed: 'CT扫描')."""
    return rf"(?<![A-Za-z]){word}(?![A-Za-z])"


_MODALITY_TERMS: dict[str, list[str]] = {
    "CT": [_acr("CT"), r"(?i)computed tomograph", _acr("CTA"), "计算机断层"],
    "MR": [_acr("MRI?"), r"(?i)magnetic resonance", "磁共振", "核磁"],
    "XR": [r"(?i)\bx-?rays?\b", r"(?i)radiograph", _acr("CR"), _acr("DX"), "X线", "X光", "平片"],
    "MG": [r"(?i)mammogra", "钼靶", "乳腺X线"],
    "US": [r"(?i)ultrasound", r"(?i)sonograph", _acr("US"), "超声", "彩超", "B超"],
    "PT": [_acr("PET"), r"(?i)positron"],
    "NM": [r"(?i)scintigra", _acr("SPECT"), r"(?i)nuclear medicine", "核医学"],
}
_MODALITY_GROUP = {"CR": "XR", "DX": "XR", "DR": "XR", "RF": "XR", "XA": "XR", "PX": "XR", "IO": "XR"}

_REGIONS: dict[str, list[str]] = {
    "head": [r"\bhead\b", r"\bbrain\b", r"\bskull\b", r"cerebr", r"intracranial", "头颅", "颅脑", "脑"],
    "neck": [r"\bneck\b", r"cervical", r"thyroid", "颈"],
    "chest": [r"\bchest\b", r"thora", r"\blungs?\b", r"pulmonary", r"mediastin", "胸", "肺", "纵隔"],
    "abdomen": [r"abdom", r"\bliver\b", r"hepat", r"\bkidneys?\b", r"renal", r"pancrea", r"spleen",
                "腹", "肝", "肾", "胰", "脾"],
    "pelvis": [r"pelvi", r"bladder", r"prostat", r"uter", r"ovar", "盆腔", "膀胱", "前列腺", "子宫"],
    "spine": [r"\bspine\b", r"spinal", r"vertebra", r"lumbar", "脊柱", "椎"],
    "extremity": [r"\bknee\b", r"\bhip\b", r"shoulder", r"\bankle\b", r"wrist", r"\bhand\b", r"\bfoot\b",
                  r"elbow", "膝", "髋", "肩", "踝", "腕"],
    "breast": [r"\bbreast", "乳腺", "乳房"],
}
_BODY_PART_REGION = {
    "HEAD": "head", "BRAIN": "head", "SKULL": "head", "NECK": "neck",
    "CSPINE": "spine", "TSPINE": "spine", "LSPINE": "spine", "SPINE": "spine",
    "CHEST": "chest", "THORAX": "chest", "LUNG": "chest",
    "ABDOMEN": "abdomen", "LIVER": "abdomen", "KIDNEY": "abdomen", "ABDOMENPELVIS": "abdomen",
    "PELVIS": "pelvis", "BREAST": "breast",
    "KNEE": "extremity", "HIP": "extremity", "SHOULDER": "extremity", "ANKLE": "extremity",
    "HAND": "extremity", "FOOT": "extremity", "EXTREMITY": "extremity",
}
_MEASURE = re.compile(r"(-?\d+(?:\.\d+)?)\s*(mm|cm|ml|cc|HU|mSv|mGy|kVp?|%|毫米|厘米)", re.IGNORECASE)
_DATE_IN_TEXT = re.compile(
    r"\b(19|20)\d{2}[-/.](0?[1-9]|1[0-2])[-/.]\d{1,2}\b|\b\d{1,2}/\d{1,2}/\d{2,4}\b|\d{4}年\d{1,2}月")


def _draft_text(draft: dict[str, Any]) -> str:
    parts = [str(draft.get(k, "") or "") for k in ("technique", "comparison", "impression", "limitations")]
    for f in draft.get("findings") or []:
        if isinstance(f, dict):
            parts.extend(str(f.get(k, "") or "") for k in ("location", "description", "evidence"))
    parts.extend(str(r) for r in draft.get("recommendations") or [])
    return "\n".join(parts)


_NOT_MEASUREMENTS = {"histogram", "key_images", "errors", "transfer_syntaxes", "series_instance_uid",
                     "bits_stored"}


def _numbers_in(obj: Any, out: list[float]) -> None:
    if isinstance(obj, bool):
        return
    if isinstance(obj, (int, float)):
        out.append(float(obj))
    elif isinstance(obj, str):
        out.extend(float(m) for m in re.findall(r"-?\d+(?:\.\d+)?", obj))
    elif isinstance(obj, dict):
        for k, v in obj.items():
            if k not in _NOT_MEASUREMENTS:
                _numbers_in(v, out)
    elif isinstance(obj, list):
        for v in obj:
            _numbers_in(v, out)


def _regions_of(text: str) -> set[str]:
    return {r for r, pats in _REGIONS.items() if any(re.search(p, text, re.IGNORECASE) for p in pats)}


def postcheck(draft: dict[str, Any], features: dict[str, Any], indication: str | None = None) -> list[str]:
    """Warnings for statements the inputs cannot support (simple, explainable rules).

    * a modality named in the draft that the study does not have;
    * a body region named in the draft that neither the metadata nor the indication mention
      (only when the metadata names a body part or description);
    * a measurement (number with a unit) that appears nowhere in the features or the indication;
    * a date (the inputs hold none: prior comparisons cannot be dated);
    * a finding without evidence.
    """
    warnings: list[str] = []
    text = _draft_text(draft)
    series = features.get("series") or [features]
    named = features.get("modalities") or [s.get("modality") for s in series]
    modalities = {str(m).upper() for m in named if m}
    groups = {_MODALITY_GROUP.get(m, m) for m in modalities}
    for group, pats in _MODALITY_TERMS.items():
        if group in groups or (group == "XR" and "MG" in groups):
            continue
        for p in pats:
            m = re.search(p, text)
            if m:
                study_is = ", ".join(sorted(modalities)) or "unknown"
                warnings.append(f"draft mentions modality '{m.group(0)}' but the study is {study_is}")
                break
    context = " ".join(
        str(x)
        for s in series
        for x in (s.get("body_part"), s.get("study_description"), s.get("series_description"),
                  s.get("protocol_name"))
        if x
    )
    context += " " + " ".join(str(b) for b in features.get("body_parts") or [])
    context += " " + str(features.get("study_description") or "") + " " + (indication or "")
    body_parts = [*(features.get("body_parts") or []), *(s.get("body_part") or "" for s in series)]
    known = {_BODY_PART_REGION.get(re.sub(r"[^A-Z]", "", str(b).upper())) for b in body_parts}
    known |= _regions_of(context)
    known.discard(None)
    if known:
        for region in sorted(_regions_of(text) - known):
            concern = ", ".join(sorted(known))
            warnings.append(f"draft mentions the {region} but the study metadata and indication "
                            f"concern {concern}")
    numbers: list[float] = []
    _numbers_in(features, numbers)
    if indication:
        _numbers_in(indication, numbers)
    for m in _MEASURE.finditer(text):
        value, unit = float(m.group(1)), m.group(2).lower()
        candidates = {value}
        if unit in ("cm", "厘米"):
            candidates.add(value * 10)
        if unit in ("mm", "毫米"):
            candidates.add(value / 10)
        if not any(abs(c - n) <= max(0.02 * abs(n), 0.05) for c in candidates for n in numbers):
            warnings.append(f"measurement '{m.group(0)}' is not present in the inputs")
    for m in _DATE_IN_TEXT.finditer(text):
        warnings.append(f"draft states a date '{m.group(0)}' that the de-identified inputs do not contain")
    for i, f in enumerate(draft.get("findings") or []):
        if isinstance(f, dict) and not str(f.get("evidence") or "").strip():
            warnings.append(f"finding {i + 1} ({f.get('location') or 'no location'}) gives no evidence")
    return warnings
