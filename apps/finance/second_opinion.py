"""How much the language model's judgment is worth, measured on validation data (Django-free).

The judgment is a second model in a stack: it earns a weight, and the right to send an application to
review when it disagrees with the scorecard, only by what it measured on labelled applications it
never saw (``apps/finance/evaluation_data/judgment_<lang>.jsonl``: 80 held-out German Credit rows, 40
that defaulted, written as reports). The measurement is stored with the scorecard version
(``CreditModelVersion.judgment_calibration[language]``) for one model and one prompt version.

- ``auc``: the judgment's expected risk level (under its label probabilities) against default.
- **Informative** when it is not constant (more than one level given) and ``auc - 0.5`` exceeds the
  margin ``max(0.05, 1.96 × SE)`` (Hanley-McNeil standard error): otherwise its weight is 0 and its
  disagreement never sends an application to review (it is only noted).
- ``weight``: the coefficient of the centred judgment score added to the scorecard's log-odds,
  fitted by maximum likelihood with the scorecard as offset (clipped to [0, 3]): what it adds to the
  scorecard. Only an informative judgment gets one.
- ``review_rate``: the share of validation applications its disagreement would send to review (a
  two-level gap, or a top label probability below the confidence limit), 0 when not informative.

Without a measurement for the model and prompt that answered, the judgment counts as not informative.
"""
from __future__ import annotations

import math
from typing import Any

MARGIN_MIN = 0.05
MAX_WEIGHT = 3.0  # log-odds per risk level: a cap for a judgment that separates the set perfectly
MIN_ANSWERED_SHARE = 0.8

WHY = {
    "not_measured": ("it has not been measured on validation data for this model and prompt",
                     "尚未在验证数据上针对此模型和提示词测量"),
    "constant": ("on validation data it gave the same answer to every application ({n} applications)",
                 "在验证数据上它对每份申请都给出相同答案（{n} 份申请）"),
    "near_chance": ("on validation data its AUC was {auc:.3f} ({n} applications), within {margin:.3f} of "
                    "chance (0.5)",
                    "在验证数据上其 AUC 为 {auc:.3f}（{n} 份申请），"
                    "与随机水平 0.5 的差距不超过 {margin:.3f}"),
    "few_answers": ("on validation data it answered only {answered:.0%} of the applications",
                    "在验证数据上它只回答了 {answered:.0%} 的申请"),
}


def why_text(code: str, calibration: dict | None = None) -> tuple[str, str]:
    """English and Chinese text of why a judgment counts as not informative."""
    en, zh = WHY[code]
    values = {"n": 0, "auc": 0.5, "margin": MARGIN_MIN, "answered": 0.0, **(calibration or {})}
    values = {k: (v if v is not None else 0.5) for k, v in values.items()}
    return en.format(**values), zh.format(**values)


def auc_standard_error(auc: float, n_pos: int, n_neg: int) -> float:
    """Hanley & McNeil (1982) standard error of an AUC."""
    if n_pos < 1 or n_neg < 1:
        return float("inf")
    q1, q2 = auc / (2 - auc), 2 * auc * auc / (1 + auc)
    var = (auc * (1 - auc) + (n_pos - 1) * (q1 - auc * auc)
           + (n_neg - 1) * (q2 - auc * auc)) / (n_pos * n_neg)
    return math.sqrt(max(var, 0.0))


def _logit(p: float) -> float:
    p = min(max(p, 1e-4), 1 - 1e-4)
    return math.log(p / (1 - p))


def stack_weight(y: list[int], pds: list[float], scores: list[float], center: float) -> float:
    """Maximum-likelihood w of P(bad) = σ(logit(pd) + w·(score − center)) (Newton's method), ≥ 0."""
    w = 0.0
    xs = [s - center for s in scores]
    offsets = [_logit(p) for p in pds]
    for _ in range(50):
        grad = hess = 0.0
        for yi, xi, oi in zip(y, xs, offsets, strict=True):
            p = 1 / (1 + math.exp(-(oi + w * xi)))
            grad += (yi - p) * xi
            hess += p * (1 - p) * xi * xi
        if hess <= 1e-12:
            break
        step = grad / hess
        w += step
        if abs(step) < 1e-8:
            break
    return min(MAX_WEIGHT, max(0.0, w)) if math.isfinite(w) else 0.0


def calibration_measure(*, runs: list[dict], pds: list[float], scorecard_levels: list[int], model: str,
                        prompt: str, language: str, low_confidence: float) -> dict:
    """The stored measurement from judgment runs (``{"bad", "score", "level", "label_probs"}`` each) and
    the scorecard's PD and level on the same applications."""
    from apps.finance import metrics

    rows = [(r, p, lv) for r, p, lv in zip(runs, pds, scorecard_levels, strict=True)
            if r["score"] is not None]
    n, answered_share = len(runs), (len(rows) / len(runs) if runs else 0.0)
    y = [1 if r["bad"] else 0 for r, _p, _lv in rows]
    scores = [float(r["score"]) for r, _p, _lv in rows]
    levels = sorted({r["level"] for r, _p, _lv in rows})
    auc = metrics.auc(y, scores) if rows else None
    n_pos, n_neg = sum(y), len(y) - sum(y)
    se = auc_standard_error(auc, n_pos, n_neg) if auc is not None else float("inf")
    margin = max(MARGIN_MIN, 1.96 * se) if math.isfinite(se) else 1.0
    constant = len(levels) <= 1 or (max(scores) - min(scores) < 1e-6 if scores else True)
    if constant:
        why = "constant"
    elif answered_share < MIN_ANSWERED_SHARE:
        why = "few_answers"
    elif auc is None or auc - 0.5 <= margin:
        why = "near_chance"
    else:
        why = ""
    informative = not why
    center = sum(scores) / len(scores) if scores else 2.0
    weight = stack_weight(y, [p for _r, p, _lv in rows], scores, center) if informative else 0.0
    disagree = 0
    for r, _p, sc_level in rows:
        probs = [float(v) for v in (r.get("label_probs") or {}).values()]
        top = max(probs) / (sum(probs) or 1) if probs else None
        if abs(int(r["level"]) - int(sc_level)) >= 2 or (top is not None and top < low_confidence):
            disagree += 1
    disagreement_rate = disagree / len(rows) if rows else 0.0
    return {
        "model": model, "prompt": prompt, "language": language, "n": n, "n_bad": n_pos, "n_good": n_neg,
        "answered": round(answered_share, 4), "auc": None if auc is None else round(auc, 4),
        "auc_se": round(se, 4) if math.isfinite(se) else None, "margin": round(margin, 4),
        "constant": constant, "levels": levels, "informative": informative, "why": why,
        "weight": round(weight, 4), "center": round(center, 4),
        "review_on_disagreement": informative, "disagreement_rate": round(disagreement_rate, 4),
        "review_rate": round(disagreement_rate if informative else 0.0, 4),
        "scorecard_auc": (None if not rows else round(metrics.auc(y, [p for _r, p, _lv in rows]) or 0.5, 4)),
        "low_confidence": low_confidence,
    }


def calibration_for(calibrations: Any, *, language: str, model: str, prompt: str) -> dict:
    """The measurement that applies to a judgment by ``model`` with ``prompt`` (``name vN``) in
    ``language``; a not-informative stub (``why`` ``not_measured``) when there is none."""
    found = (calibrations or {}).get(language) if isinstance(calibrations, dict) else None
    if isinstance(found, dict) and found.get("model") == model and found.get("prompt") == prompt:
        return found
    return {"informative": False, "why": "not_measured", "weight": 0.0, "review_on_disagreement": False,
            "review_rate": 0.0, "model": model, "prompt": prompt, "language": language}


def stacked_pd(pd: float, score: float | None, calibration: dict) -> float | None:
    """The stack's PD: the scorecard's log-odds plus the judgment's weight (None when the weight is 0)."""
    weight = float(calibration.get("weight") or 0.0)
    if score is None or weight <= 0 or not calibration.get("informative"):
        return None
    z = _logit(pd) + weight * (float(score) - float(calibration.get("center") or 2.0))
    return round(1 / (1 + math.exp(-z)), 4)
