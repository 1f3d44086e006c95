"""Prompt variables for the radiology draft, the draft's shape, and honest post-checks.

* :func:`template_name_for` picks the prompt template per modality group.
* :func:`draft_variables` builds the template variables (≤ ~1,500 characters of features) ONLY from
  de-identified features; the free-text indication is scrubbed of dates, ID-like digit runs and any
  string of a given PHI set.
* :func:`normalize_report` checks a draft/report dict against the output schema (also used by the SR,
  FHIR and PDF builders); :func:`postcheck` lists statements the inputs cannot support.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

from apps.medical.deidentify import scrub_text

__all__ = [
    "REPORT_FIELDS",
    "ReportError",
    "draft_variables",
    "normalize_report",
    "postcheck",
    "scrub_indication",
    "template_name_for",
]

REPORT_FIELDS = ("technique", "comparison", "findings", "impression", "recommendations", "limitations")
MAX_FEATURE_CHARS = 1500
_XR = {"CR", "DX", "DR", "MG", "RF", "XA", "IO", "PX"}


class ReportError(ValueError):
    """A report dict that does not have the draft's shape; names the field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"report field {field!r}: {message}")
        self.field = field


def template_name_for(modality: str | Iterable[str] | None) -> str:
    """Prompt template name for a modality (or the study's modalities, first imaging one wins)."""
    mods = [modality] if isinstance(modality, str) or modality is None else list(modality)
    for m in mods:
        m = (m or "").upper()
        if m == "CT":
            return "radiology_draft_ct"
        if m == "MR":
            return "radiology_draft_mr"
        if m in _XR:
            return "radiology_draft_xr"
    return "radiology_draft_other"


# ------------------------------------------------------------------------------------- scrubbing

_ID_TOKEN = re.compile(r"\b[\w-]*\d[\w-]*\b")
_EMAIL = re.compile(r"\b[\w.+-]+@[\w-]+\.[\w.]+\b")


def scrub_indication(text: str | None, phi: Iterable[str] = (), max_chars: int = 300) -> str:
    """The clinical indication without PHI strings, dates, e-mails and ID-like tokens (≥ 4 digits)."""
    if not text:
        return ""
    out = _EMAIL.sub("[removed]", str(text))
    out = scrub_text(out, phi)

    def id_like(m: re.Match[str]) -> str:
        token = m.group(0)
        return "[id]" if sum(ch.isdigit() for ch in token) >= 4 else token

    out = _ID_TOKEN.sub(id_like, out)
    return out[:max_chars].strip()


def _scrub_obj(obj: Any, phi: Iterable[str]) -> Any:
    if isinstance(obj, str):
        return scrub_text(obj, phi)
    if isinstance(obj, dict):
        return {k: _scrub_obj(v, phi) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_scrub_obj(v, phi) for v in obj]
    return obj


# ------------------------------------------------------------------------------------- variables

_ACQ_KEEP = (
    "KVP", "Exposure", "XRayTubeCurrent", "ConvolutionKernel", "CTDIvol", "MagneticFieldStrength", "RepetitionTime",
    "EchoTime", "InversionTime", "FlipAngle", "ScanningSequence", "MRAcquisitionType", "ViewPosition",
    "ImageLaterality", "Laterality", "ContrastBolusRoute", "PatientPosition",
)


def _compact_series(f: dict[str, Any], level: int) -> dict[str, Any]:
    """One series' features, smaller as ``level`` grows (0 = richest)."""
    inten = f.get("intensity") or {}
    out: dict[str, Any] = {
        "modality": f.get("modality"),
        "body_part": f.get("body_part"),
        "description": f.get("series_description"),
        "orientation": f.get("orientation"),
        "frames": f.get("frames"),
        "matrix": [f.get("rows"), f.get("columns")],
    }
    if f.get("pixel_spacing_mm"):
        out["pixel_mm"] = f["pixel_spacing_mm"][0]
    if f.get("slice_thickness_mm"):
        out["slice_mm"] = f["slice_thickness_mm"]
    if f.get("spacing_between_slices_mm"):
        out["spacing_mm"] = f["spacing_between_slices_mm"]
    if f.get("extent_mm"):
        out["extent_mm"] = f["extent_mm"]
    unit = "HU" if f.get("units") == "HU" else "value"
    keys = ("mean", "std", "p5", "p50", "p95") if level < 2 else ("mean", "p50")
    out[f"intensity_{unit}"] = {k: round(inten[k], 1) for k in keys if inten.get(k) is not None}
    if f.get("hu_classes"):
        out["tissue_fractions"] = {k: round(v, 3) for k, v in f["hu_classes"].items()}
    if level < 1:
        acq = f.get("acquisition") or {}
        out["acquisition"] = {k: acq[k] for k in _ACQ_KEEP if k in acq}
    if f.get("burned_in_annotation") == "YES":
        out["burned_in_text"] = True
    return {k: v for k, v in out.items() if v not in (None, [], {}, [None, None])}


def draft_variables(
    study_features: dict[str, Any],
    indication: str | None,
    lang: str = "en",
    *,
    phi: Iterable[str] = (),
    max_chars: int = MAX_FEATURE_CHARS,
) -> dict[str, str]:
    """Template variables: ``modality``, ``body_part``, ``study_description``, ``indication``, ``features``.

    ``study_features`` is :func:`apps.medical.imaging.study_summary` output (or one series' features)
    computed from DE-IDENTIFIED data. Every string is scrubbed again with ``phi``; ``features`` is a
    compact JSON of at most ``max_chars`` characters (fewer series and fields when needed).
    """
    if lang not in ("en", "zh-hans"):
        raise ValueError(f"unsupported language {lang!r}; use 'en' or 'zh-hans'")
    phi = {p for p in phi if p}
    series = study_features.get("series")
    if series is None:
        series = [study_features]
    none = "none given" if lang == "en" else "未提供"
    modalities = study_features.get("modalities") or sorted({s.get("modality") for s in series if s.get("modality")})
    body_parts = study_features.get("body_parts") or sorted({s.get("body_part") for s in series if s.get("body_part")})
    description = study_features.get("study_description") or next(
        (s.get("study_description") for s in series if s.get("study_description")), None
    )
    features = ""
    for level in range(4):
        limit = (6, 4, 3, 1)[level]
        chosen = sorted(series, key=lambda s: -(s.get("frames") or 0))[:limit]
        payload = {"series_count": len(series), "series": [_compact_series(s, level) for s in chosen]}
        features = json.dumps(_scrub_obj(payload, phi), ensure_ascii=False, separators=(",", ":"))
        if len(features) <= max_chars:
            break
    if len(features) > max_chars:
        features = features[: max_chars - 3] + "..."
    return {
        "modality": ", ".join(modalities) or none,
        "body_part": scrub_text(", ".join(body_parts), phi) or none,
        "study_description": scrub_text(str(description), phi) if description else none,
        "indication": scrub_indication(indication, phi) or none,
        "features": features,
    }


# ---------------------------------------------------------------------------------------- report


def normalize_report(report: dict[str, Any]) -> dict[str, Any]:
    """Check a draft/report dict against the output schema; return a clean copy (strings stripped)."""
    if not isinstance(report, dict):
        raise ReportError("report", f"expected an object, got {type(report).__name__}")
    out: dict[str, Any] = {}
    for key in ("technique", "comparison", "impression", "limitations"):
        value = report.get(key, "")
        if value is None:
            value = ""
        if not isinstance(value, str):
            raise ReportError(key, f"expected a string, got {type(value).__name__}")
        out[key] = value.strip()
    findings = report.get("findings", [])
    if not isinstance(findings, list):
        raise ReportError("findings", "expected a list")
    out["findings"] = []
    for i, f in enumerate(findings):
        if not isinstance(f, dict):
            raise ReportError(f"findings[{i}]", "expected an object with location, description, evidence")
        item = {}
        for k in ("location", "description", "evidence"):
            v = f.get(k, "")
            if v is None:
                v = ""
            if not isinstance(v, str):
                raise ReportError(f"findings[{i}].{k}", "expected a string")
            item[k] = v.strip()
        out["findings"].append(item)
    recs = report.get("recommendations", [])
    if isinstance(recs, str):
        recs = [recs] if recs.strip() else []
    if not isinstance(recs, list) or not all(isinstance(r, str) for r in recs):
        raise ReportError("recommendations", "expected a list of strings")
    out["recommendations"] = [r.strip() for r in recs if r.strip()]
    if not out["impression"] and not out["findings"]:
        raise ReportError("impression", "a report needs an impression or at least one finding")
    return out


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
    "abdomen": [r"abdom", r"\bliver\b", r"hepat", r"\bkidneys?\b", r"renal", r"pancrea", r"spleen", "腹", "肝", "肾", "胰", "脾"],
    "pelvis": [r"pelvi", r"bladder", r"prostat", r"uter", r"ovar", "盆腔", "膀胱", "前列腺", "子宫"],
    "spine": [r"\bspine\b", r"spinal", r"vertebra", r"lumbar", "脊柱", "椎"],
    "extremity": [r"\bknee\b", r"\bhip\b", r"shoulder", r"\bankle\b", r"wrist", r"\bhand\b", r"\bfoot\b", r"elbow", "膝", "髋", "肩", "踝", "腕"],
    "breast": [r"\bbreast", "乳腺", "乳房"],
}
_BODY_PART_REGION = {
    "HEAD": "head", "BRAIN": "head", "SKULL": "head", "NECK": "neck", "CSPINE": "spine", "TSPINE": "spine",
    "LSPINE": "spine", "SPINE": "spine", "CHEST": "chest", "THORAX": "chest", "LUNG": "chest", "ABDOMEN": "abdomen",
    "LIVER": "abdomen", "KIDNEY": "abdomen", "PELVIS": "pelvis", "ABDOMENPELVIS": "abdomen", "KNEE": "extremity",
    "HIP": "extremity", "SHOULDER": "extremity", "ANKLE": "extremity", "HAND": "extremity", "FOOT": "extremity",
    "BREAST": "breast", "EXTREMITY": "extremity",
}
_MEASURE = re.compile(r"(-?\d+(?:\.\d+)?)\s*(mm|cm|ml|cc|HU|mSv|mGy|kVp?|%|毫米|厘米)", re.IGNORECASE)
_DATE_IN_TEXT = re.compile(r"\b(19|20)\d{2}[-/.](0?[1-9]|1[0-2])[-/.]\d{1,2}\b|\b\d{1,2}/\d{1,2}/\d{2,4}\b|\d{4}年\d{1,2}月")


def _draft_text(draft: dict[str, Any]) -> str:
    parts = [str(draft.get(k, "") or "") for k in ("technique", "comparison", "impression", "limitations")]
    for f in draft.get("findings") or []:
        if isinstance(f, dict):
            parts.extend(str(f.get(k, "") or "") for k in ("location", "description", "evidence"))
    parts.extend(str(r) for r in draft.get("recommendations") or [])
    return "\n".join(parts)


_NOT_MEASUREMENTS = {"histogram", "key_images", "errors", "transfer_syntaxes", "series_instance_uid", "bits_stored"}


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
    modalities = {str(m).upper() for m in (features.get("modalities") or [s.get("modality") for s in series]) if m}
    groups = {_MODALITY_GROUP.get(m, m) for m in modalities}
    for group, pats in _MODALITY_TERMS.items():
        if group in groups or (group == "XR" and "MG" in groups):
            continue
        for p in pats:
            m = re.search(p, text)
            if m:
                warnings.append(
                    f"draft mentions modality '{m.group(0)}' but the study is {', '.join(sorted(modalities)) or 'unknown'}"
                )
                break
    context = " ".join(
        str(x)
        for s in series
        for x in (s.get("body_part"), s.get("study_description"), s.get("series_description"), s.get("protocol_name"))
        if x
    )
    context += " " + " ".join(str(b) for b in features.get("body_parts") or [])
    context += " " + str(features.get("study_description") or "") + " " + (indication or "")
    known = {_BODY_PART_REGION.get(re.sub(r"[^A-Z]", "", str(b).upper())) for b in (features.get("body_parts") or [])}
    known |= {_BODY_PART_REGION.get(re.sub(r"[^A-Z]", "", str(s.get("body_part") or "").upper())) for s in series}
    known |= _regions_of(context)
    known.discard(None)
    if known:
        for region in sorted(_regions_of(text) - known):
            warnings.append(f"draft mentions the {region} but the study metadata and indication concern {', '.join(sorted(known))}")
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
