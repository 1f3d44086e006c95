"""Prompt variables for the radiology draft, the draft's shape, and honest post-checks.

* :func:`template_name_for` picks the prompt template per modality group.
* :func:`draft_variables` builds the template variables (≤ ~1,500 characters of features) ONLY from
  de-identified features; the free-text indication is scrubbed of dates, ID-like digit runs and any
  string of a given PHI set.
* :func:`normalize_report` checks a draft/report dict against the output schema (also used by the SR,
  FHIR and PDF builders).

What the draft is then judged by (:func:`~apps.medical.decisions.postcheck`, needs review or not) is in
:mod:`apps.medical.decisions`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from apps.medical.deidentify import redact, scrub_text
from apps.medical.errors import ReportError
from apps.medical.grounding import feature_list, offered_features

__all__ = [
    "REPORT_FIELDS",
    "ReportError",
    "draft_variables",
    "normalize_report",
    "scrub_descriptor",
    "scrub_indication",
    "template_name_for",
]

REPORT_FIELDS = ("technique", "comparison", "findings", "impression", "recommendations", "limitations")
MAX_FEATURE_CHARS = 1500
_XR = {"CR", "DX", "DR", "MG", "RF", "XA", "IO", "PX"}


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

def scrub_indication(text: str | None, phi: Iterable[str] = (), max_chars: int = 300) -> str:
    """The clinical indication through the free-text PHI filter (:func:`apps.medical.deidentify.redact`):
    the study's own identifiers, names after titles and cues, unknown capitalised name runs, phone
    numbers, IDs, record numbers, dates, e-mails, addresses and room numbers become ``[removed]``."""
    if not text:
        return ""
    out = redact(str(text)[: max_chars * 4], known=phi)
    return out[:max_chars].strip()


def scrub_descriptor(text: str | None, phi: Iterable[str] = ()) -> str:
    """A descriptor (study/series description, protocol, comments) through the free-text PHI filter with
    the allowlist on: every token that is not a clinical or common word is ``[removed]``."""
    return redact(str(text), known=phi, descriptor=True) if text else ""


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
    "KVP", "Exposure", "XRayTubeCurrent", "ConvolutionKernel", "CTDIvol", "MagneticFieldStrength",
    "RepetitionTime", "EchoTime", "InversionTime", "FlipAngle", "ScanningSequence", "MRAcquisitionType",
    "ViewPosition", "ImageLaterality", "Laterality", "ContrastBolusRoute", "PatientPosition",
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
    """Template variables: ``modality``, ``body_part``, ``study_description``, ``indication``, ``features``
    and ``feature_list`` (:func:`apps.medical.grounding.feature_list`, for the v2 templates).

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
    modalities = study_features.get("modalities") or sorted({s["modality"] for s in series
                                                             if s.get("modality")})
    body_parts = study_features.get("body_parts") or sorted({s["body_part"] for s in series
                                                             if s.get("body_part")})
    description = study_features.get("study_description") or next(
        (s.get("study_description") for s in series if s.get("study_description")), None
    )
    features = ""
    cleaned: dict[str, str] = {}
    for level in range(4):
        limit = (6, 4, 3, 1)[level]
        chosen = sorted(series, key=lambda s: -(s.get("frames") or 0))[:limit]
        payload = {"series_count": len(series), "series": [_compact_series(s, level) for s in chosen]}
        for item in payload["series"]:  # free text: through the filter with the allowlist
            if item.get("description"):
                text = str(item["description"])
                if text not in cleaned:
                    cleaned[text] = scrub_descriptor(text, phi)
                item["description"] = cleaned[text]
        features = json.dumps(_scrub_obj(payload, phi), ensure_ascii=False, separators=(",", ":"))
        if len(features) <= max_chars:
            break
    if len(features) > max_chars:
        features = features[: max_chars - 3] + "..."
    return {
        "modality": ", ".join(modalities) or none,
        "body_part": scrub_descriptor(", ".join(body_parts), phi) or none,
        "study_description": scrub_descriptor(description, phi) or none,
        "indication": scrub_indication(indication, phi) or none,
        "features": features,
        # v2 templates: the features a finding may cite, values computed from headers and pixels
        "feature_list": feature_list(offered_features(study_features, lang), lang),
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
