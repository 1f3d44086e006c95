"""The language model's two calls in an assessment, both through core's one LLM step (``core.llm.llm_step``):
field extraction from a report (each value kept only with its quote from the report), and the risk
judgment with label probabilities from its logprobs (its free text through core's quality gate).

``extraction_step`` and ``judgment_step`` take plain inputs, so the prompt evaluation
(``apps.finance.evaluation``) and the judgment's calibration run exactly what an assessment runs."""
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
# The 18-key JSON needs about 350 tokens without quotes (v1); each stated field's quote adds up to 30.
EXTRACTION_MAX_TOKENS = 640


def extraction_step(*, report: str, language: str, version: int | None = None,
                    final_attempt: bool = True) -> LLMStep:
    """The extraction call; ``value`` is ``(applicant, evidence, rejected, warnings)`` from
    :func:`apps.finance.prompting.extraction_with_evidence` (nothing is kept without a quote)."""
    return llm_step(template=EXTRACTION_TEMPLATE, language=language, max_tokens=EXTRACTION_MAX_TOKENS,
                    variables=prompting.extraction_variables(report, language=language),
                    validate=lambda parsed: _extraction_valid(parsed, report),
                    final_attempt=final_attempt, version=version)


def fields_extract(job: Assessment, applicant: dict) -> tuple[dict, dict]:
    """LLM extraction of the fields the applicant lacks, kept only with evidence. Returns (merged
    applicant, extraction info): ``fields`` (kept values), ``evidence`` (each kept field's quote),
    ``rejected`` (answered but not supported by the report, with the reason), ``not_stated``."""
    step = extraction_step(report=job.report or "", language=job.language,
                           final_attempt=job.attempts >= settings.JOB_MAX_ATTEMPTS)
    extracted, kept, rejected, warnings = step.value if step.ok else ({}, {}, {}, [])
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
        "evidence": {name: kept[name]["quote"] for name in filled if name in kept},
        "rejected": {name: item for name, item in rejected.items() if merged.get(name) in (None, "")},
        "not_stated": not_stated,
        "warnings": warnings,
    }
    return merged, info


def judgment_step(*, applicant: dict, report: str, language: str, version: int | None = None,
                  final_attempt: bool = True) -> tuple[dict, LLMStep]:
    """The risk-judgment call. Returns (llm block, the step); the block's ``score`` is the expected
    risk level under the label probabilities (the level itself when there are none)."""
    variables = prompting.judgment_variables(applicant, report, language=language)
    step = llm_step(template=JUDGMENT_TEMPLATE, language=language, max_tokens=JUDGMENT_MAX_TOKENS,
                    variables=variables, validate=_judgment_valid, top_logprobs=5,
                    gate=lambda value: _judgment_gate(value, sources=list(variables.values())),
                    final_attempt=final_attempt, version=version)
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


def judgment_score(block: dict) -> float | None:
    """The judgment as one number for ranking (AUC, the stack): E[level] under the label probabilities,
    or the level when the answer has none; None without an answer."""
    probs = block.get("label_probs") or {}
    if probs:
        return round(sum(int(k) * float(p) for k, p in probs.items()) / (sum(probs.values()) or 1), 6)
    level = block.get("risk_level")
    return float(level) if level in (1, 2, 3) else None


def risk_judge(job: Assessment, applicant: dict) -> tuple[dict, LLMStep]:
    """LLM risk judgment with label probabilities. Returns (llm block, the step)."""
    return judgment_step(applicant=applicant, report=job.report, language=job.language,
                         final_attempt=job.attempts >= settings.JOB_MAX_ATTEMPTS)


def _extraction_valid(parsed, report: str) -> tuple[dict, dict, dict, list[str]]:
    if not isinstance(parsed, dict):
        raise LLMOutputInvalid(f"expected a JSON object, got {type(parsed).__name__}")
    return prompting.extraction_with_evidence(parsed, report)


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


def _judgment_gate(value: dict, *, sources: list[str]) -> list[str]:
    """Core's quality gate on the judgment's free text (loops, debris, placeholders, copied input)."""
    from core.quality import json_problems

    return json_problems({"rationale": value.get("rationale") or "",
                          "key_factors": list(value.get("key_factors") or [])}, sources=sources)
