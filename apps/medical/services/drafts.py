"""The AI draft of a study: one language-model step with its gate, and the report sections it gives.

* :func:`draft_step` runs the study's template (v1: the whole report; v2: findings citing features,
  impression, recommendation) through :func:`core.llm.llm_step` with the gate of
  :func:`apps.medical.decisions.draft_gate` (loops, debris, placeholders, the indication copied,
  claims the DICOM headers contradict, features the study does not have). A rejected answer is asked
  for once more with other settings (core's policy); if it fails again there is no draft.
* :func:`draft_sections_of` turns an accepted answer into report sections: for v2 the technique,
  comparison and every finding's evidence are written by code from the headers
  (:mod:`apps.medical.grounding`), so they are always right.
* :func:`no_draft_sections` is what the radiologist gets when no draft could be made: the technique
  and comparison from the headers and an impression saying why there is no draft.
* :func:`draft_quality` is the record the study's result keeps (shown by the page and the API).
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.conf import settings

from apps.medical.decisions import draft_gate, postcheck
from apps.medical.errors import ReportError
from apps.medical.grounding import (
    comparison_text,
    draft_sections,
    feature_list,
    offered_features,
    technique_text,
)
from apps.medical.prompting import normalize_report
from core.llm import LLMStep, llm_step

#: the draft must stay small: the embedded model runs on CPU
DRAFT_MAX_TOKENS = int(getattr(settings, "MEDICAL_DRAFT_MAX_TOKENS", 300))
#: discourages the small embedded model from repeating itself until max_tokens (measured: it then stops)
DRAFT_FREQUENCY_PENALTY = float(getattr(settings, "MEDICAL_DRAFT_FREQUENCY_PENALTY", 0.5))
V2_TEXT_MAX = {"text": 90, "impression": 120, "recommendation": 90}

_NO_DRAFT_REASON = {
    ("en", "disabled"): "the language model is disabled", ("zh-hans", "disabled"): "语言模型已关闭",
    ("en", "rejected"): "the model's answer failed the quality checks twice",
    ("zh-hans", "rejected"): "模型回答两次未通过质量检查",
    ("en", "unavailable"): "the model was unavailable", ("zh-hans", "unavailable"): "模型不可用",
}


def draft_validate(parsed: Any) -> dict[str, Any]:
    """The model's answer as the app keeps it (:class:`ReportError`, a ValueError, when it is not one):
    v1 report sections (normalised) or a v2 answer (findings ``{feature, text}``, impression,
    recommendations), strings stripped."""
    if not isinstance(parsed, dict):
        raise ReportError("report", "the answer is not a JSON object")
    if "technique" in parsed:
        return normalize_report(parsed)
    findings = parsed.get("findings")
    if not isinstance(findings, list) or not findings:
        raise ReportError("findings", "expected at least one finding")
    out_findings = []
    for i, item in enumerate(findings, 1):
        if not isinstance(item, dict) or not isinstance(item.get("feature"), str) \
                or not isinstance(item.get("text"), str):
            raise ReportError(f"findings[{i}]", "expected an object with feature and text")
        out_findings.append({"feature": item["feature"].strip(), "text": item["text"].strip()})
    impression = parsed.get("impression")
    if not isinstance(impression, str):
        raise ReportError("impression", "expected a string")
    recs = parsed.get("recommendations") or []
    if not isinstance(recs, list) or not all(isinstance(r, str) for r in recs):
        raise ReportError("recommendations", "expected a list of strings")
    return {"findings": out_findings, "impression": impression.strip(),
            "recommendations": [r.strip() for r in recs]}


def _narrow(offered: list[dict[str, str]]) -> Callable[[dict], dict]:
    """The v2 schema with the feature enum cut to what this study offers (v1: unchanged)."""
    ids = [f["id"] for f in offered]

    def narrow(schema: dict) -> dict:
        try:
            prop = schema["properties"]["findings"]["items"]["properties"]["feature"]
        except (KeyError, TypeError):
            return schema
        if "enum" in prop and ids:
            prop["enum"] = [i for i in prop["enum"] if i in ids] or prop["enum"]
        return schema

    return narrow


def draft_step(*, state: dict[str, Any], privacy: Callable[[list[dict]], list[str]] | None = None,
               final_attempt: bool = False, version: int | None = None, retry: bool = True) -> LLMStep:
    """The draft's language-model step for a study's ``state`` (``summary``, ``lang``, ``variables``,
    ``template``), gated; ``version`` and ``retry`` serve prompt evaluation."""
    from core.selectors import prompt_template_get

    summary, lang = state["summary"], state["lang"]
    indication = state["variables"].get("indication", "")
    # the template's own instructions: an answer that copies them is not a draft
    prompt = prompt_template_get(name=state["template"], language=lang, version=version).body
    offered = offered_features(summary, lang)
    variables = {"feature_list": feature_list(offered, lang), **state["variables"]}
    return llm_step(template=state["template"], language=lang, variables=variables,
                    max_tokens=DRAFT_MAX_TOKENS, validate=draft_validate,
                    gate=lambda value: draft_gate(value, summary=summary, indication=indication, lang=lang,
                                                  prompt=prompt),
                    privacy=privacy, frequency_penalty=DRAFT_FREQUENCY_PENALTY, final_attempt=final_attempt,
                    version=version, retry=retry, narrow_schema=_narrow(offered))


def draft_sections_of(value: dict[str, Any], *, summary: dict[str, Any], lang: str) -> dict[str, Any]:
    """Report sections from an accepted answer (v2: technique, comparison and evidence from code)."""
    if "technique" in value:
        return dict(value)
    return draft_sections(value, summary=summary, lang=lang)


def draft_warnings(value: dict[str, Any], *, sections: dict[str, Any], summary: dict[str, Any],
                   indication: str) -> list[str]:
    """The post-check's warnings on what the model wrote (:func:`apps.medical.decisions.postcheck`):
    v1 the whole report; v2 only its findings' texts, impression and recommendations (technique,
    comparison, evidence and limitations are computed from the headers)."""
    if "technique" in value:
        return postcheck(sections, summary, indication)
    findings = [{"location": "", "description": f.get("text", ""), "evidence": f.get("feature", "")}
                for f in value.get("findings") or []]
    written = {"technique": "", "comparison": "", "limitations": "", "findings": findings,
               "impression": value.get("impression", ""),
               "recommendations": value.get("recommendations") or []}
    return postcheck(written, summary, indication)


def no_draft_sections(summary: dict[str, Any], why: str, lang: str) -> dict[str, Any]:
    """The sections when there is no usable draft: technique and comparison from the headers, an
    impression saying why, for the radiologist to replace."""
    reason = _NO_DRAFT_REASON.get((lang, why)) or _NO_DRAFT_REASON["en", why]
    impression = (f"无 AI 草稿：{reason}。请根据图像书写报告。" if lang == "zh-hans"
                  else f"No AI draft: {reason}. Write the report from the images.")
    return {"technique": technique_text(summary, lang), "comparison": comparison_text(lang), "findings": [],
            "impression": impression, "recommendations": [], "limitations": ""}


def draft_quality(step: LLMStep | None, *, summary: dict[str, Any], lang: str) -> dict[str, Any]:
    """What the study's result keeps about the draft: usable or not, why, how many tries, and the
    structured facts (technique, features) that stand whatever the model did."""
    status = "disabled" if step is None else step.status
    return {
        "usable": bool(step is not None and step.ok),
        "status": status,
        "reasons": [] if step is None or step.ok else list(step.problems),
        "tries": len(step.tries) if step is not None else 0,
        "technique": technique_text(summary, lang),
        "features": offered_features(summary, lang),
    }
