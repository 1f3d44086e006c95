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


# ------------------------------------------------------------------------------------------ gate

_NOT_ANATOMY = re.compile(r"(?i)lung[\s_-]*(?:density|range|fraction|voxels?)|肺密度")
_COUNT = re.compile(r"(?i)\b(\d+)\s+(?:[a-z-]+\s+)?(?:slices?|images?|frames?|sections?)\b|"
                    r"(\d+)\s*(?:幅|层图像|帧|张)")
_SERIES = re.compile(r"(?i)\b(\d+)\s+series\b|(\d+)\s*个?序列")
_THICKNESS = re.compile(
    r"(?i)(\d+(?:\.\d+)?)\s*(?:mm|毫米)\s*(?:thick|slices?|sections?)|(?:slice|section)\s+thickness\s+"
    r"(?:of\s+|is\s+|was\s+)?(\d+(?:\.\d+)?)\s*mm|层厚\s*(?:为\s*)?(\d+(?:\.\d+)?)")
_NO_CONTRAST = re.compile(r"(?i)\b(?:without|no|non)[\s-]*(?:iv\s+|intravenous\s+)?contrast\b|"
                          r"平扫|未(?:使用|注射)造影剂")
_WITH_CONTRAST = re.compile(r"(?i)\bwith\s+(?:iv\s+|intravenous\s+)?contrast\b|contrast[\s-]enhanced|"
                            r"\bpost[\s-]?contrast\b|增强扫描|注射造影剂")


_CLAIM = re.compile(
    r"(?i)\b(?:lesions?|mass(?:es)?|nodules?|tumou?rs?|cancer|malignan\w*|carcinoma|metasta\w*|fractures?|"
    r"haemorrhage|hemorrhage|bleed(?:ing)?|embol(?:ism|us)|infarct\w*|stroke|pneumonia|infection|"
    r"inflammation|effusion|abscess|cyst|wound|injur(?:y|ies)|disease|sclerosis|abnormalit(?:y|ies)|"
    r"pathology|damage|cavit(?:y|ies)|atroph\w*|fibros\w*|degenerat\w*|calcif\w*|stenos[ie]s|"
    r"enlarge\w*|positive)\b|病灶|肿块|结节|肿瘤|癌|转移|骨折|出血|栓塞|梗死|肺炎|感染|炎症|积液|脓肿|囊肿|损伤|病变|异常|"
    r"钙化|萎缩|狭窄|增大")
#: a change over time or a comparison needs a prior study, which the de-identified inputs never hold
_COMPARISON = re.compile(
    r"(?i)\b(?:previous(?:ly)?|prior|earlier|compared (?:with|to)|since (?:the )?last|over the past|"
    r"(?:de|in)creas\w*|reduc\w*|improv\w*|worsen\w*|progress\w*|regress\w*)\b|既往|前次|较前|以前|减少|增加|好转|加重")
_NEGATION = re.compile(r"(?i)\b(?:no|not|without|cannot|can't|none|neither|nor|rule[sd]? out|free of)\b|"
                       r"未见|无|没有|不能|无法|排除")


def claims_unsupported(text: str) -> list[str]:
    """A lesion, a disease or an abnormality stated as present, or a change or comparison over time: the
    pixel statistics and headers of one de-identified study cannot show either (a negated mention, "no
    focal lesion can be stated", "no prior study", is fine)."""
    problems = []
    for m in _COMPARISON.finditer(text):
        clause = re.split(r"[.;:!?。；：！？]", text[max(0, m.start() - 40):m.start()])[-1]
        if not _NEGATION.search(clause):
            problems.append(_gettext("states a change or comparison (“%(claim)s”) but there is no prior "
                                     "study") % {"claim": m.group(0)})
    for m in _CLAIM.finditer(text):
        before = text[max(0, m.start() - 40):m.start()]
        clause = re.split(r"[.;:!?。；：！？]", before)[-1]
        if not _NEGATION.search(clause):
            problems.append(_gettext("states “%(claim)s”, which the image statistics cannot show")
                            % {"claim": m.group(0)})
    return problems


def _gettext(message: str) -> str:
    from django.utils.translation import gettext

    return gettext(message)


def header_contradictions(text: str, facts: dict[str, Any]) -> list[str]:
    """Claims of ``text`` that the DICOM headers contradict (``facts``:
    :func:`apps.medical.grounding.study_facts`): another modality, a body region the headers do not
    name, an image or series count, a slice thickness, contrast given or not."""
    problems: list[str] = []
    modalities = set(facts.get("modalities") or [])
    groups = {_MODALITY_GROUP.get(m, m) for m in modalities}
    study_is = ", ".join(sorted(modalities)) or "?"
    for group, pats in _MODALITY_TERMS.items():
        if group in groups or (group == "XR" and "MG" in groups):
            continue
        match = next((m for m in (re.search(p, text) for p in pats) if m), None)
        if match:
            problems.append(_gettext("names the modality “%(said)s” but the study is %(is)s")
                            % {"said": match.group(0), "is": study_is})
    known = {_BODY_PART_REGION.get(re.sub(r"[^A-Z]", "", str(b).upper()))
             for b in facts.get("body_parts") or []}
    known |= _regions_of(str(facts.get("description") or ""))
    known.discard(None)
    if known:
        for region in sorted(_regions_of(_NOT_ANATOMY.sub(" ", text)) - known):
            problems.append(_gettext("names the %(region)s but the headers concern %(known)s")
                            % {"region": region, "known": ", ".join(sorted(known))})
    counts = {int(facts.get("images") or 0), *(int(n) for n in facts.get("series_images") or [])}
    for m in _COUNT.finditer(text):
        said = int(m.group(1) or m.group(2))
        if said not in counts:
            problems.append(_gettext("says %(said)d images but the study has %(has)s")
                            % {"said": said, "has": ", ".join(str(n) for n in sorted(counts))})
    for m in _SERIES.finditer(text):
        said = int(m.group(1) or m.group(2))
        if said != int(facts.get("series_count") or 0):
            problems.append(_gettext("says %(said)d series but the study has %(has)d")
                            % {"said": said, "has": int(facts.get("series_count") or 0)})
    thickness = facts.get("slice_thickness_mm") or []
    for m in _THICKNESS.finditer(text):
        said = float(next(g for g in m.groups() if g))
        if not any(abs(said - t) <= 0.05 for t in thickness):
            has = ", ".join(f"{t:g} mm" for t in thickness) or _gettext("none")
            problems.append(_gettext("says slices of %(said)s mm but the headers give %(has)s")
                            % {"said": f"{said:g}", "has": has})
    routes = facts.get("contrast_routes") or []
    if routes and _NO_CONTRAST.search(text):
        problems.append(_gettext("says no contrast but the headers record a contrast route (%(route)s)")
                        % {"route": ", ".join(routes)})
    if not routes and _WITH_CONTRAST.search(text):
        problems.append(_gettext("says contrast was given but the headers record none"))
    return problems


def _texts(answer: dict[str, Any]) -> list[tuple[str, str]]:
    """``(field path, text)`` of every text the model wrote, in either answer shape."""
    texts: list[tuple[str, str]] = []
    for i, item in enumerate(answer.get("findings") or [], 1):
        for key in ("text", "location", "description", "evidence"):
            if isinstance(item, dict) and item.get(key):
                texts.append((f"findings[{i}].{key}", str(item[key])))
    texts.append(("impression", str(answer.get("impression") or "")))
    texts += [(f"recommendations[{i}]", str(r)) for i, r in enumerate(answer.get("recommendations") or [], 1)]
    if "technique" in answer:
        texts += [(k, str(answer.get(k) or "")) for k in ("technique", "limitations")]
    return texts


def draft_text_problems(answer: dict[str, Any], *, indication: str = "", prompt: str = "") -> list[str]:
    """The language checks of a draft (:func:`core.quality.json_problems`: loops, JSON debris,
    placeholders, the clinical indication or the prompt's own instructions (``prompt``) copied; a
    sentence looping across fields; a field repeating another). A v1 answer is checked in every section
    but the comparison (v1 asks for "None available.")."""
    from core.quality import json_problems, loop_problems

    v2 = "technique" not in answer
    fields = ["findings", "impression", "recommendations"] if v2 else [
        "technique", "findings", "impression", "recommendations", "limitations"]
    sources = [t for t in (indication, prompt) if t]
    problems = json_problems(answer, sources=sources, fields=fields)
    texts = _texts(answer)
    problems += loop_problems(" \n".join(text for _path, text in texts if text))
    seen: dict[str, str] = {}
    for path, text in texts:
        key = " ".join(re.findall(r"\w+", text.lower()))
        if key and key in seen and path.split("[")[0] != seen[key].split("[")[0]:
            problems.append(_gettext("%(path)s repeats %(first)s") % {"path": path, "first": seen[key]})
        seen.setdefault(key, path)
    return problems


def draft_fact_problems(answer: dict[str, Any], *, summary: dict[str, Any], lang: str = "en") -> list[str]:
    """The fact checks of a draft against the DICOM headers and features: contradictions
    (:func:`header_contradictions`), lesions or diseases stated (:func:`claims_unsupported`) and, for a v2
    answer, a finding citing a feature the study does not offer, or numbers that are not the cited
    feature's (numbers in the impression and recommendations must be among the offered values)."""
    from apps.medical.grounding import offered_features, study_facts
    from core.quality import fact_problems

    facts = study_facts(summary)
    problems: list[str] = []
    texts = _texts(answer)
    for path, text in texts:
        problems += [f"{path}: {p}" for p in header_contradictions(text, facts) + claims_unsupported(text)]
    if "technique" in answer:
        return problems
    offered = {f["id"]: f for f in offered_features(summary, lang)}
    all_numbers = [n for f in offered.values() for n, _d, _p in _numbers(f["value"])]
    for i, item in enumerate(answer.get("findings") or [], 1):
        feature = offered.get(item.get("feature", ""))
        if feature is None:
            problems.append(_gettext("findings[%(i)d] cites “%(feature)s”, a feature this study does "
                                     "not have") % {"i": i, "feature": item.get("feature", "")})
            continue
        allowed = [n for n, _d, _p in _numbers(feature["value"] + " " + feature["label"])]
        problems += [f"findings[{i}].text: {p}"
                     for p in fact_problems(item.get("text", ""), facts={"numbers": allowed})]
    for path, text in texts:
        if path.startswith(("impression", "recommendations")):
            problems += [f"{path}: {p}" for p in fact_problems(text, facts={"numbers": all_numbers})]
    return problems


def draft_gate(answer: dict[str, Any], *, summary: dict[str, Any], indication: str = "",
               lang: str = "en", prompt: str = "") -> list[str]:
    """Why a draft must not be shown (empty: it passes): :func:`draft_text_problems` and
    :func:`draft_fact_problems`, for both answer shapes (v1 report sections, v2 findings citing
    features)."""
    problems = draft_text_problems(answer, indication=indication, prompt=prompt)
    problems += draft_fact_problems(answer, summary=summary, lang=lang)
    return list(dict.fromkeys(problems))


def _numbers(text: str):
    from core.quality import numbers_in

    return list(numbers_in(text))
