"""Finance decision rules (Django-free): the rule that combines the scorecard with the LLM's judgment and
decides whether a person must review, and the rule of an analyst's review (approve or override).

The combination rule (``RULE_ID``), documented in docs/finance_model.md:

1. The scorecard's risk level is the result's ``risk_level`` (it is calibrated and explainable).
2. The judgment counts only as far as it measured on validation data (:mod:`apps.finance.second_opinion`,
   stored with the scorecard version for the model and prompt that answered). Without a measurement,
   or when it measured uninformative, its disagreement is only noted and never sends to review.
3. ``needs_review`` is set when any of these holds:
   - an informative judgment's level differs from the scorecard's by two levels (1 vs 3);
   - an informative judgment is low-confidence: its top label probability < ``LOW_CONFIDENCE`` (0.5);
   - the application is incomplete: more than ``MAX_MISSING_SHARE`` (a third) of the model inputs
     were missing and imputed;
   - the application was scored mostly on fields nobody gave: fewer than ``MIN_GIVEN_SHARE`` (half) of
     the model inputs came from the applicant's structured input (the rest extracted from the report
     or missing).
4. Noted without review: a one-level difference, a missing LLM answer, an answer without label
   probabilities, an uninformative judgment's disagreement.

The review rule (:func:`review_final_level`): approving keeps the model's level; an override names
the final level (1, 2 or 3) and needs a comment saying why.
"""
from __future__ import annotations

import math
from typing import Any

from . import second_opinion
from .errors import FinanceInputError
from .fields import MODEL_INPUTS

LOW_CONFIDENCE = 0.5
MAX_MISSING_SHARE = 1 / 3
MIN_GIVEN_SHARE = 0.5
RULE_ID = "scorecard-authoritative/v2"
RULE_TEXT = ("The scorecard sets the risk level. The language model's judgment sends to review (a two-level "
             f"difference, or a top label probability below {LOW_CONFIDENCE}) only when it measured "
             "informative on validation data; otherwise its disagreement is only noted. Review also when "
             "more "
             "than a third of the model inputs were missing, or when fewer than half were given by the "
             "applicant (the rest extracted from the report or missing).")
RISK_LEVELS = (1, 2, 3)

MESSAGES = {
    "level_gap": ("The scorecard and the LLM disagree by two risk levels ({sc} vs {llm}).",
                  "评分卡与大模型的风险等级相差两级（{sc} 对 {llm}）。"),
    "low_confidence": ("The LLM's answer is uncertain (top label probability {conf:.2f} < {limit:.2f}).",
                       "大模型的判断置信度低（最高标签概率 {conf:.2f} < {limit:.2f}）。"),
    "incomplete": ("The application is incomplete: {n} of {total} model inputs were missing and imputed.",
                   "申请信息不完整：{total} 个模型字段中有 {n} 个缺失并被填补。"),
    "mostly_unverified": ("Scored mostly on fields the applicant did not give: {given} of {total} model "
                          "inputs "
                          "given, {extracted} extracted from the report, {missing} missing.",
                          "评分主要依据申请人未提供的字段：{total} 个模型字段中申请人提供 {given} 个，"
                          "从报告中提取 {extracted} 个，缺失 {missing} 个。"),
    "level_differs": ("The LLM's risk level differs by one level ({sc} vs {llm}).",
                      "大模型的风险等级相差一级（{sc} 对 {llm}）。"),
    "llm_missing": ("No LLM judgment was available; the scorecard result stands alone.",
                    "没有大模型判断；仅以评分卡结果为准。"),
    "no_label_probs": ("The LLM answer carried no label probabilities; its confidence is unknown.",
                       "大模型的回答没有标签概率，置信度未知。"),
    "judgment_uninformative": ("The LLM's judgment does not send applications to review: {why_en}.",
                               "大模型的判断不会把申请送交复核：{why_zh}。"),
    "disagreement_noted": ("Not sent to review for it: {what}", "未因此送交复核：{what}"),
}


def message(code: str, **kw) -> dict:
    """A review reason or note: ``{"code", "text_en", "text_zh"}``."""
    en, zh = MESSAGES[code]
    return {"code": code, "text_en": en.format(**kw), "text_zh": zh.format(**kw)}


def _normalise_probs(probs: Any) -> dict[int, float] | None:
    if not isinstance(probs, dict) or not probs:
        return None
    try:
        out = {int(k): float(v) for k, v in probs.items()}
    except (TypeError, ValueError):
        return None
    return out if all(k in RISK_LEVELS and math.isfinite(v) for k, v in out.items()) else None


def combine(scorecard_result: dict, llm: dict | None, *, calibration: dict | None = None,
            given_fields: int | None = None, extracted_fields: int = 0,
            low_confidence: float = LOW_CONFIDENCE, max_missing_share: float = MAX_MISSING_SHARE,
            min_given_share: float = MIN_GIVEN_SHARE) -> dict:
    """Combine a scorecard result with the LLM's judgment under rule ``RULE_ID`` (module docstring).

    ``llm`` is ``{"risk_level": 1|2|3, "label_probs": {1: p, 2: p, 3: p} | None}`` or None;
    ``calibration`` the judgment's measurement (:func:`apps.finance.second_opinion.calibration_for`; None
    counts as not measured); ``given_fields`` how many model inputs the applicant gave (None: not
    checked), ``extracted_fields`` how many came from the report. Returns ``{"risk_level",
    "needs_review", "review_reasons": [{"code", "text_en", "text_zh"}], "notes": [...], "rule",
    "llm_risk_level", "llm_confidence", "judgment": {informative, weight, ...}, "stacked_pd"}``.
    """
    level = int(scorecard_result["risk_level"])
    if level not in RISK_LEVELS:
        raise ValueError(f"scorecard risk_level must be 1, 2 or 3, got {level!r}")
    calibration = calibration or {"informative": False, "why": "not_measured", "weight": 0.0}
    informative = bool(calibration.get("informative") and calibration.get("review_on_disagreement", True))
    reasons: list[dict] = []
    notes: list[dict] = []
    quiet: list[dict] = []  # what an uninformative judgment would have sent to review
    llm_level: int | None = None
    confidence: float | None = None
    raw_level = (llm or {}).get("risk_level")
    if isinstance(raw_level, int | str) and str(raw_level).strip() in ("1", "2", "3"):
        llm_level = int(str(raw_level).strip())
    if llm_level is None:
        notes.append(message("llm_missing"))
    else:
        gap = abs(llm_level - level)
        if gap >= 2:
            (reasons if informative else quiet).append(message("level_gap", sc=level, llm=llm_level))
        elif gap == 1:
            notes.append(message("level_differs", sc=level, llm=llm_level))
        probs = _normalise_probs(llm.get("label_probs"))
        if probs is None:
            notes.append(message("no_label_probs"))
        else:
            confidence = max(probs.values()) / (sum(probs.values()) or 1)
            if confidence < low_confidence:
                (reasons if informative else quiet).append(
                    message("low_confidence", conf=confidence, limit=low_confidence))
    if llm_level is not None and not informative:
        why_en, why_zh = second_opinion.why_text(calibration.get("why") or "not_measured", calibration)
        notes.append(message("judgment_uninformative", why_en=why_en, why_zh=why_zh))
        for item in quiet:
            notes.append({"code": "disagreement_noted",
                          "text_en": MESSAGES["disagreement_noted"][0].format(what=item["text_en"]),
                          "text_zh": MESSAGES["disagreement_noted"][1].format(what=item["text_zh"])})
    missing = [m for m in scorecard_result.get("missing_fields") or [] if m in MODEL_INPUTS]
    if len(missing) > max_missing_share * len(MODEL_INPUTS):
        reasons.append(message("incomplete", n=len(missing), total=len(MODEL_INPUTS)))
    if given_fields is not None and given_fields < min_given_share * len(MODEL_INPUTS):
        reasons.append(message("mostly_unverified", given=given_fields, total=len(MODEL_INPUTS),
                               extracted=extracted_fields, missing=len(missing)))
    pd = scorecard_result.get("probability_of_default")
    score = None
    if llm_level is not None:
        probs = _normalise_probs(llm.get("label_probs"))
        score = (sum(k * v for k, v in probs.items()) / (sum(probs.values()) or 1)) if probs else llm_level
    return {
        "risk_level": level, "needs_review": bool(reasons), "review_reasons": reasons, "notes": notes,
        "rule": RULE_ID, "llm_risk_level": llm_level,
        "llm_confidence": None if confidence is None else round(confidence, 4),
        "judgment": {k: calibration.get(k) for k in ("informative", "why", "weight", "auc", "n", "margin",
                                                     "review_rate", "model", "prompt")},
        "stacked_pd": (second_opinion.stacked_pd(float(pd), score, calibration)
                       if isinstance(pd, int | float) else None),
    }


# --------------------------------------------------------------------------------------------------
# An analyst's review
# --------------------------------------------------------------------------------------------------
APPROVE = "approve"  # the values of models.Review.Decision
OVERRIDE = "override"
REVIEW_DECISIONS = (APPROVE, OVERRIDE)
COMMENT_MAX_CHARS = 4000


def review_final_level(*, decision: str, model_level: int, final_risk_level: Any = None,
                       comment: str = "") -> int:
    """The final risk level a review decides; raises :class:`FinanceInputError` naming the field.

    ``approve`` keeps ``model_level`` (a different ``final_risk_level`` is refused: that is an override);
    ``override`` needs ``final_risk_level`` 1, 2 or 3 and a comment. Comments are at most
    ``COMMENT_MAX_CHARS`` characters.
    """
    comment = (comment or "").strip()
    if decision not in REVIEW_DECISIONS:
        raise FinanceInputError(f"decision: must be one of {', '.join(REVIEW_DECISIONS)}", field="decision")
    if decision == APPROVE:
        final = model_level
        if final_risk_level not in (None, "", final):
            raise FinanceInputError("final_risk_level: approving keeps the model's level; choose override to "
                                    "change it", field="final_risk_level")
    else:
        try:
            final = int(final_risk_level)
        except (TypeError, ValueError):
            final = None
        if final not in RISK_LEVELS:
            raise FinanceInputError("final_risk_level: an override needs the final risk level 1, 2 or 3",
                                    field="final_risk_level")
        if not comment:
            raise FinanceInputError("comment: say why you override the model", field="comment")
    if len(comment) > COMMENT_MAX_CHARS:
        raise FinanceInputError(f"comment: at most {COMMENT_MAX_CHARS} characters", field="comment")
    return final
