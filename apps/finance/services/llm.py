"""The language model's two calls in an assessment, both through core's one LLM step (``core.llm.llm_step``):
field extraction from a report, and the risk judgment with label probabilities from its logprobs."""
from __future__ import annotations

from django.conf import settings

from apps.finance import fields as catalogue
from apps.finance import prompting
from apps.finance.models import RISK_LABELS, Assessment
from core.llm import LLMOutputInvalid, LLMStep, llm_step

JUDGMENT_TEMPLATE = prompting.JUDGMENT_TEMPLATE
EXTRACTION_TEMPLATE = prompting.EXTRACTION_TEMPLATE
# The longest answer the schema allows (rationale ≤ 200 characters, 3 factors ≤ 40) fits even at one
# token per character (Chinese), so a constrained answer is never cut off.
JUDGMENT_MAX_TOKENS = 360
EXTRACTION_MAX_TOKENS = 400  # the 18-key JSON needs about 350 tokens with this schema


def fields_extract(job: Assessment, applicant: dict) -> tuple[dict, dict]:
    """LLM extraction of the fields the applicant lacks. Returns (merged applicant, extraction info)."""
    step = llm_step(template=EXTRACTION_TEMPLATE, language=job.language, max_tokens=EXTRACTION_MAX_TOKENS,
                    variables=prompting.extraction_variables(job.report, language=job.language),
                    validate=_extraction_valid, final_attempt=job.attempts >= settings.JOB_MAX_ATTEMPTS)
    extracted, warnings = step.value if step.ok else ({}, [])
    merged = dict(applicant)
    filled = []
    for name, value in extracted.items():
        if value is not None and merged.get(name) in (None, ""):
            merged[name] = value
            filled.append(name)
    not_stated = sorted(n for n in catalogue.MODEL_INPUTS
                        if extracted.get(n) is None and merged.get(n) in (None, ""))
    info = {
        **step.meta(),
        "fields": {name: extracted.get(name) for name in filled},
        "not_stated": not_stated,
        "warnings": warnings,
    }
    return merged, info


def risk_judge(job: Assessment, applicant: dict) -> tuple[dict, LLMStep]:
    """LLM risk judgment with label probabilities. Returns (llm block, the step)."""
    step = llm_step(template=JUDGMENT_TEMPLATE, language=job.language, max_tokens=JUDGMENT_MAX_TOKENS,
                    variables=prompting.judgment_variables(applicant, job.report, language=job.language),
                    validate=_judgment_valid, top_logprobs=5,
                    final_attempt=job.attempts >= settings.JOB_MAX_ATTEMPTS)
    parsed = step.value or {}
    level = parsed.get("risk_level")
    logprobs = step.answer.logprobs if step.ok and step.answer else None
    raw_probs = (prompting.label_probs_from_logprobs(logprobs) if logprobs is not None else None) or {}
    probs = {str(k): round(float(v), 4) for k, v in sorted(raw_probs.items())}
    block = {
        **step.meta(),
        "risk_level": level,
        "risk_label": RISK_LABELS.get(level, ""),
        "rationale": str(parsed.get("rationale") or "")[:2000],
        "key_factors": [str(k)[:200] for k in (parsed.get("key_factors") or [])][:8],
        "label_probs": probs,
        "calibrated": False,
    }
    return block, step


def _extraction_valid(parsed) -> tuple[dict, list[str]]:
    if not isinstance(parsed, dict):
        raise LLMOutputInvalid(f"expected a JSON object, got {type(parsed).__name__}")
    return prompting.extraction_result_to_applicant(parsed)


def _judgment_valid(parsed) -> dict:
    if not isinstance(parsed, dict):
        raise LLMOutputInvalid(f"expected a JSON object, got {type(parsed).__name__}")
    try:
        level = int(parsed.get("risk_level"))
    except (TypeError, ValueError):
        level = None
    if level not in (1, 2, 3):
        raise LLMOutputInvalid(f"risk_level must be 1, 2 or 3, got {parsed.get('risk_level')!r}")
    return {**parsed, "risk_level": level}
