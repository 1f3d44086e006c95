"""LLM side of a credit assessment (Django-free): prompt variables, label probabilities parsed from
logprobs, and validation of extracted fields.

Templates (``apps/finance/prompts/``): ``finance.risk_judgment`` takes ``$report`` and ``$applicant``;
``finance.field_extraction`` takes ``$report`` and ``$fields_help``. Variables stay compact (about
1,200 characters in all) so a small model answers fast: long reports are cut with a marker.

Protected attributes (sex/marital status, foreign-worker status) never go into a prompt.

The rule that combines the scorecard with the LLM's judgment lives in :mod:`apps.finance.decisions`.
"""
from __future__ import annotations

import json
import math
import re
from typing import Any

from . import evidence as evidence_rules
from .fields import FIELD_NAMES, FIELDS_BY_NAME, MODEL_INPUTS
from .ingest import clean_value, is_missing

JUDGMENT_TEMPLATE = "finance.risk_judgment"
EXTRACTION_TEMPLATE = "finance.field_extraction"
VARIABLES_BUDGET = 1200  # characters for all variables of one prompt
MIN_REPORT_CHARS = 400
_TRUNCATED = {"en": " …[truncated]", "zh": " …[已截断]"}
_NO_REPORT = {"en": "(no report; application data only)", "zh": "（无报告，仅有申请数据）"}
_NO_DATA = {"en": "(none given)", "zh": "（未提供）"}
_RISK_KEY_RE = re.compile(r'"risk_level"\s*:\s*$')


def _lang(lang: str | None) -> str:
    return "zh" if (lang or "en").lower().startswith("zh") else "en"


def _shorten(text: str, limit: int, lang: str) -> str:
    text = re.sub(r"\s+", " ", text).strip()
    if len(text) <= limit:
        return text
    marker = _TRUNCATED[lang]
    return text[: max(0, limit - len(marker))].rstrip() + marker


def applicant_summary(applicant: dict | None, lang: str = "en") -> str:
    """Compact ``label: value; ...`` text of the known model-input fields (protected ones left out)."""
    lang = _lang(lang)
    parts = []
    for name in MODEL_INPUTS:
        value = (applicant or {}).get(name)
        if value is None or (isinstance(value, float) and math.isnan(value)):
            continue
        f = FIELDS_BY_NAME[name]
        shown = f.category_label(value, lang) if f.kind == "categorical" else f"{float(value):g}"
        parts.append(f"{f.label(lang)}{'：' if lang == 'zh' else ': '}{shown}")
    sep = "；" if lang == "zh" else "; "
    return sep.join(parts) if parts else _NO_DATA[lang]


def judgment_variables(applicant: dict | None, report: str | None, lang: str = "en", *,
                       language: str | None = None) -> dict[str, str]:
    """Variables ``report`` and ``applicant`` of the risk-judgment template (≤ about 1,200 characters).

    ``lang`` (or its alias ``language``) is "en" or "zh-hans".
    """
    lang = _lang(language or lang)
    summary = applicant_summary(applicant, lang)
    budget = max(MIN_REPORT_CHARS, VARIABLES_BUDGET - len(summary))
    text = _shorten(report, budget, lang) if report and report.strip() else _NO_REPORT[lang]
    return {"report": text, "applicant": summary}


def fields_help(lang: str = "en") -> str:
    """The short field guide of the extraction template."""
    lang = _lang(lang)
    labels = ("；" if lang == "zh" else "; ").join(FIELDS_BY_NAME[n].label(lang) for n in MODEL_INPUTS)
    if lang == "zh":
        return (f"字段：{labels}。金额以马克计，期限以月计；"
                "分期还款比例与居住年限为 1-4 档。报告未提及的字段填 null。")
    return (f"Fields: {labels}. Amounts in DM, durations in months; instalment rate and residence are "
            "classes 1-4. Use null for anything the report does not state.")


def extraction_variables(report: str, lang: str = "en", *, language: str | None = None) -> dict[str, str]:
    """Variables ``report`` and ``fields_help`` of the field-extraction template (``language`` = ``lang``)."""
    lang = _lang(language or lang)
    guide = fields_help(lang)
    budget = max(MIN_REPORT_CHARS, VARIABLES_BUDGET - len(guide))
    return {"report": _shorten(report or "", budget, lang), "fields_help": guide}


# --------------------------------------------------------------------------------------------------
# Label probabilities from logprobs
# --------------------------------------------------------------------------------------------------
def label_probs_from_logprobs(content: Any) -> dict[int, float] | None:
    """Renormalised probabilities of the labels 1, 2, 3 where the model wrote the risk-level digit.

    ``content`` is ``choices[0].logprobs.content`` of an OpenAI-style chat answer: a list of
    ``{"token", "logprob", "top_logprobs": [{"token", "logprob"}]}``. Token texts are accumulated until
    the digit that follows ``"risk_level":``; at that position the probabilities of the alternative
    tokens that spell 1, 2 or 3 (after the same leading text, whitespace ignored) are summed per label
    and renormalised. None when the digit or its alternatives cannot be found.
    """
    if not isinstance(content, list):
        return None
    text = ""
    for entry in content:
        if not isinstance(entry, dict) or not isinstance(entry.get("token"), str):
            return None
        token = entry["token"]
        for k, ch in enumerate(token):
            if ch in "123" and (k + 1 == len(token) or not token[k + 1].isdigit()) \
                    and _RISK_KEY_RE.search(text[-60:] + token[:k]):
                return _probs_at(entry, token[:k])
        text += token
    return None


def _probs_at(entry: dict, prefix: str) -> dict[int, float] | None:
    candidates = [a for a in (entry.get("top_logprobs") or []) if isinstance(a, dict)]
    if not candidates:
        return None
    candidates.append({"token": entry["token"], "logprob": entry.get("logprob")})
    probs = {1: 0.0, 2: 0.0, 3: 0.0}
    seen: set[str] = set()
    lead = prefix.strip()
    for alt in candidates:
        token, logprob = alt.get("token"), alt.get("logprob")
        if not isinstance(token, str) or token in seen or not isinstance(logprob, int | float):
            continue
        seen.add(token)
        stripped = token.strip()
        if not stripped.startswith(lead):
            continue
        rest = stripped[len(lead):].lstrip()
        if rest[:1] in ("1", "2", "3") and not rest[1:2].isdigit():
            probs[int(rest[0])] += math.exp(logprob) if math.isfinite(logprob) else 0.0
    total = sum(probs.values())
    if total <= 0:
        return None
    return {label: p / total for label, p in probs.items()}


# --------------------------------------------------------------------------------------------------
# Extraction results
# --------------------------------------------------------------------------------------------------
def extraction_result_to_applicant(obj: Any) -> tuple[dict, list[str]]:
    """Validate the LLM's extracted fields against the catalogue.

    Returns ``(applicant, warnings)``: ``applicant`` has all 20 fields, None where the report said
    nothing or the extracted value is invalid (an invalid value becomes missing, with a warning naming
    the field). ``obj`` may be the parsed JSON object or its text.
    """
    applicant: dict[str, Any] = dict.fromkeys(FIELD_NAMES)
    warnings: list[str] = []
    if isinstance(obj, str | bytes):
        try:
            obj = json.loads(obj)
        except ValueError as exc:
            return applicant, [f"extraction: the model's answer is not valid JSON ({exc})"]
    if not isinstance(obj, dict):
        return applicant, [f"extraction: expected a JSON object, got {type(obj).__name__}"]
    for key, value in obj.items():
        if key not in FIELDS_BY_NAME:
            warnings.append(f"extraction: ignored unknown field {key!r}")
            continue
        if is_missing(value):
            continue
        clean, problem = clean_value(FIELDS_BY_NAME[key], value)
        if problem:
            warnings.append(f"extraction: field {key!r}: {problem}; treated as missing")
        else:
            applicant[key] = clean
    return applicant, warnings


def extraction_with_evidence(obj: Any, report: str) -> tuple[dict, dict, dict, list[str]]:
    """Validate an extraction answer of a template with evidence (v2: each field ``{"quote", "value"}``
    or null) against the report: a value is kept only when it is valid for the field and its quote
    occurs in the report and supports it (:mod:`apps.finance.evidence`), or, when the quote is not the
    report's words, a sentence of the report states the value by the same rules (that sentence is then
    cited, ``located: True``).

    Returns ``(applicant, evidence, rejected, warnings)``: ``applicant`` has all 20 fields (None where
    missing); ``evidence`` maps each kept field to ``{"value", "quote"}``; ``rejected`` maps each field the
    model answered but that stays missing to ``{"value", "quote", "reason"}``. No value is taken without a
    span of the report that states it.
    """
    applicant: dict[str, Any] = dict.fromkeys(FIELD_NAMES)
    kept: dict[str, dict] = {}
    rejected: dict[str, dict] = {}
    warnings: list[str] = []
    if not isinstance(obj, dict):
        return applicant, kept, rejected, [f"extraction: expected a JSON object, got {type(obj).__name__}"]
    report_norm = evidence_rules.normalise(report or "")
    for key, item in obj.items():
        if key not in FIELDS_BY_NAME:
            warnings.append(f"extraction: ignored unknown field {key!r}")
            continue
        if is_missing(item):
            continue
        if isinstance(item, dict):
            raw, quote = item.get("value"), item.get("quote")
        else:
            raw, quote = item, None
        if is_missing(raw):
            continue
        clean, problem = clean_value(FIELDS_BY_NAME[key], raw)
        located = None
        if problem is None:
            problem = evidence_rules.evidence_problem(key, clean, quote, report_norm)
            if problem:
                # The model's quote is not the report's words: keep the value only where a sentence of
                # the report states it, and cite that sentence.
                located = evidence_rules.supporting_span(key, clean, report or "")
        if problem and located is None:
            rejected[key] = {"value": raw if isinstance(raw, int | float | str) else str(raw),
                             "quote": str(quote)[:200] if quote is not None else None, "reason": problem}
        else:
            applicant[key] = clean
            kept[key] = {"value": clean, "quote": (located or str(quote)).strip()[:200]}
            if located is not None:
                kept[key]["located"] = True
    return applicant, kept, rejected, warnings
