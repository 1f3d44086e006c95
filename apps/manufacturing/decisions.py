"""The decision rules of a manufacturing prediction: how the language model's number is combined with
the calibrated one, when an alert fires, and when a result goes to a person for review. Pure
functions of the prediction's facts (no Django), so each rule is testable alone.

Combination rule (:func:`combine`): the calibrated classifier's probability is authoritative and is
the result's ``failure_probability``; the LLM's number is kept beside it as
``llm_failure_probability``; an absolute gap above 0.3 sets ``disagreement`` (shown to the user,
who may ask for review). Without a classifier probability (anomaly-only mode) the result has no
``failure_probability``: an uncalibrated LLM guess is shown, never used as the number.

Alert rule (:func:`alert_decision`), to avoid crying wolf: with probability threshold *P* and
remaining-life threshold *R*, an alert fires when p ≥ P **and** it is confirmed — the previous
evaluation was also ≥ P, or p ≥ P + 0.2 (a clear margin), or the RUL estimate is ≤ R — or when
RUL ≤ R and p ≥ P/2 (the remaining-life model, corroborated by the classifier). A first,
marginal crossing is reported as ``pending``. The level is ``critical`` when p ≥ max(0.8, (1 + P)/2)
(confirmed by the previous evaluation or a low RUL) or RUL ≤ R/2 with p ≥ P; otherwise ``warning``.
In anomaly-only mode an anomaly alert (warning) needs at least 3 of the last 5 steps above the
anomaly threshold.

Review rule (:func:`review_decision`): see its docstring. It reads only calibrated facts and the
input's own problems, never the language model.
"""

from __future__ import annotations

import math
import re
from typing import Any

DISAGREEMENT_GAP = 0.3
COMBINE_RULE = (
    "calibrated classifier probability is authoritative; the LLM's probability is shown beside it; "
    f"|gap| > {DISAGREEMENT_GAP} flags disagreement"
)
DEFAULT_THRESHOLDS = {"probability": 0.5, "rul": 30.0, "margin": 0.2, "critical_probability": 0.8}
REVIEW_RULE = (
    "review when the calibrated model fell back to anomaly detection, an alert is pending confirmation, "
    "readings of the machine were rejected, or the series is shorter than the model's early-life baseline; "
    "the language model never sends a result to review"
)


def _valid_probability(x: Any) -> float | None:
    if isinstance(x, bool) or x is None:
        return None
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    if not math.isfinite(v) or v < 0 or v > 1:
        return None
    return v


def combine(prediction: dict[str, Any], llm: dict[str, Any] | None) -> dict[str, Any]:
    """Combine the classifier's probability with the LLM's (see the module docstring for the rule).

    Returns ``failure_probability`` (the classifier's, or None in anomaly-only mode),
    ``llm_failure_probability`` (None if absent or not a number in [0, 1]), ``gap``,
    ``disagreement`` and ``rule``.
    """
    p = _valid_probability(prediction.get("failure_probability"))
    llm_raw = llm.get("failure_probability") if isinstance(llm, dict) else None
    q = _valid_probability(llm_raw)
    notes = []
    if llm_raw is not None and q is None:
        notes.append(f"LLM probability {llm_raw!r} is not a number in [0, 1]; ignored")
    gap = round(q - p, 4) if p is not None and q is not None else None
    rule = COMBINE_RULE if p is not None else (
        "no calibrated probability (anomaly-only mode): the LLM's number is shown, not used"
    )
    return {
        "failure_probability": p,
        "llm_failure_probability": q,
        "gap": gap,
        "disagreement": bool(gap is not None and abs(gap) > DISAGREEMENT_GAP),
        "rule": rule,
        "notes": notes,
    }


def _lead_time(rul: float | None, unit: str) -> dict[str, Any] | None:
    if rul is None:
        return None
    value = round(float(rul), 1)
    zh_unit = "个周期" if unit == "cycles" else "小时"
    return {"value": value, "unit": unit, "text_en": f"about {value:g} {unit} before predicted failure",
            "text_zh": f"预计约{value:g}{zh_unit}后发生故障"}


def alert_decision(prediction: dict[str, Any], previous_probabilities: list[float | None] | None = None,
                   thresholds: dict[str, float] | None = None) -> dict[str, Any]:
    """Decide whether this evaluation raises an alert (see the module docstring for the rule).

    ``previous_probabilities`` are the machine's earlier evaluations, oldest first, excluding this
    one. Returns ``alert``, ``level`` ("warning", "critical" or None), ``pending`` (threshold
    crossed once, awaiting confirmation), ``reasons`` (en), ``lead_time`` and the
    ``recommendation_en``/``recommendation_zh``.
    """
    th = {**DEFAULT_THRESHOLDS, **(thresholds or {})}
    P, R = float(th["probability"]), float(th["rul"])
    margin = float(th["margin"])
    crit_p = max(float(th["critical_probability"]), (1.0 + P) / 2)
    prev = [x for x in (previous_probabilities or []) if x is not None]
    p = _valid_probability(prediction.get("failure_probability"))
    rul = prediction.get("rul_estimate")
    unit = prediction.get("horizon_unit") or "cycles"
    reasons: list[str] = []
    level: str | None = None
    pending = False
    drivers = [d.get("sensor") for d in prediction.get("drivers") or [] if d.get("sensor")][:3]
    if p is None:
        hist = [h.get("anomaly_score") for h in prediction.get("history") or []][-5:]
        thr = prediction.get("anomaly_threshold")
        n_high = sum(1 for a in hist if a is not None and thr is not None and a > thr)
        if n_high >= 3:
            level = "warning"
            reasons.append(f"anomaly score above threshold on {n_high} of the last {len(hist)} steps")
        elif prediction.get("is_anomalous"):
            pending = True
            reasons.append("anomaly score above threshold, not yet persistent")
    else:
        high = p >= P
        confirmed = bool(prev) and prev[-1] >= P
        strong = p >= P + margin
        rul_low = rul is not None and rul <= R
        consecutive = 1 if high else 0
        if high:
            for x in reversed(prev):
                if x < P:
                    break
                consecutive += 1
        if high and (confirmed or strong or rul_low):
            level = "warning"
            why = [f"failure probability {p:.2f} ≥ {P:.2f}"]
            if confirmed:
                why.append(f"{consecutive} consecutive evaluations above the threshold")
            if strong:
                why.append(f"above the threshold by ≥ {margin:.2f}")
            if rul_low:
                why.append(f"remaining life {rul:.0f} {unit} ≤ {R:g}")
            reasons.append("; ".join(why))
        elif rul_low and p >= P / 2:
            level = "warning"
            reasons.append(f"remaining life {rul:.0f} {unit} ≤ {R:g}, corroborated by probability "
                           f"{p:.2f} ≥ {P / 2:.2f}")
        elif high:
            pending = True
            reasons.append(f"failure probability {p:.2f} ≥ {P:.2f} for the first time; awaiting confirmation")
        very_low_rul = rul is not None and rul <= R / 2 and p >= P
        if level is not None and ((p >= crit_p and (confirmed or rul_low)) or very_low_rul):
            level = "critical"
            reasons.append("critical: " + (f"probability {p:.2f} ≥ {crit_p:.2f}" if p >= crit_p
                                           else f"remaining life ≤ {R / 2:g} {unit}"))
    rec_en, rec_zh = _recommendation(level, rul, unit, drivers, pending)
    return {
        "alert": level is not None,
        "level": level,
        "pending": pending,
        "reasons": reasons,
        "probability": p,
        "thresholds": {"probability": P, "rul": R},
        "lead_time": _lead_time(rul, unit) if level is not None else None,
        "recommendation_en": rec_en,
        "recommendation_zh": rec_zh,
    }


def _recommendation(level: str | None, rul: float | None, unit: str, drivers: list[str],
                    pending: bool) -> tuple[str, str]:
    zh_unit = "个周期" if unit == "cycles" else "小时"
    names = ", ".join(drivers)
    names_zh = "、".join(drivers)
    within = f" within {rul:.0f} {unit}" if rul is not None else ""
    within_zh = f"在{rul:.0f}{zh_unit}内" if rul is not None else ""
    if level == "critical":
        en = (f"Schedule maintenance now{within}: inspect {names or 'the flagged sensors'} and consider "
              "taking the machine out of service.")
        when_zh = f"（{within_zh}）" if within_zh else ""
        zh = f"立即安排维护{when_zh}：检查{names_zh or '报警传感器'}，并考虑停机检修。"
    elif level == "warning":
        en = (f"Plan maintenance{within}; watch {names or 'the flagged sensors'} closely and prepare "
              "spare parts.")
        zh = f"计划{within_zh}进行维护；密切关注{names_zh or '报警传感器'}，并准备备件。"
    elif pending:
        en = "Risk rising: re-evaluate at the next readings before acting."
        zh = "风险上升：在下一批读数到来后复核，再决定是否处理。"
    else:
        en = "No action needed; keep monitoring."
        zh = "无需处理，继续监测。"
    return en, zh


def alert_block(decision: dict[str, Any]) -> dict[str, Any] | None:
    """The result's ``alert``: None when no alert fires (a first marginal crossing stays
    ``alert_pending``)."""
    if not decision.get("level"):
        return None
    lead = decision.get("lead_time") or {}
    return {
        "level": decision["level"], "reasons": decision.get("reasons") or [],
        "lead_time": lead.get("value"), "lead_time_unit": lead.get("unit") or "",
        "lead_time_text": lead.get("text_en") or "", "lead_time_text_zh": lead.get("text_zh") or "",
        "recommendation": decision.get("recommendation_en") or "",
        "recommendation_zh": decision.get("recommendation_zh") or "",
        "thresholds": decision.get("thresholds") or {},
    }


def review_decision(prediction: dict[str, Any], decision: dict[str, Any], *,
                    input_issues: list[dict[str, Any]] | None = None,
                    min_steps: int | None = None) -> dict[str, Any]:
    """Whether a finished prediction needs a person's review, and why.

    ``prediction`` is the failure model's output, ``decision`` the :func:`alert_decision` for it,
    ``input_issues`` the problems found reading this machine's data (``level`` "error" or "warning")
    and ``min_steps`` the model's early-life baseline length. A result needs review when:

    * ``model_fallback``: the calibrated model could not score the machine (``fallback_reason``: its
      sensors do not match the model's, or the model has no failure labels). The result then has no
      calibrated failure probability and no remaining life, only an anomaly score that nothing
      calibrated: the numbers this prediction exists for are missing, so a person judges.
    * ``alert_pending``: the alert rule saw a first, marginal threshold crossing (or a
      not-yet-persistent anomaly) and held the alert back to avoid crying wolf. Held back silently, a
      machine whose next readings are late would stay unseen while its risk rose; review makes a
      person decide whether to wait for the confirmation.
    * ``readings_dropped``: readings of this machine were rejected (error-level issues: values that are
      not numbers, unreadable times, items without a sensor). The series was repaired by interpolation
      before scoring, so the numbers rest on data other than what was sent.
    * ``short_series``: fewer steps than the model's early-life baseline (``min_steps``): the
      deviation features compare with an incomplete baseline, which the model itself notes as "treat
      the numbers with caution".

    Not reasons, on purpose: the language model's view, including its ``disagreement`` with the
    calibrated probability (its power to send work to review must first be measured on validation
    data, which we do not have); a fired alert (it has its own acknowledge/resolve workflow); ingestion
    warnings (duplicates, order, gaps, outliers): documented deterministic repairs of readable data.

    Returns ``{"needs_review": bool, "review_reasons": [{"code", "text_en", "text_zh"}], "rule"}``.
    """
    reasons: list[dict[str, str]] = []
    fallback = prediction.get("fallback_reason")
    if fallback:
        reasons.append({
            "code": "model_fallback",
            "text_en": f"the calibrated failure model could not score this machine ({fallback}); "
                       "only an uncalibrated anomaly score is available",
            "text_zh": f"校准故障模型无法评估该设备（{fallback}），只有未经校准的异常分数",
        })
    if decision.get("pending"):
        why = "; ".join(str(r) for r in decision.get("reasons") or []) or "threshold crossed once"
        reasons.append({
            "code": "alert_pending",
            "text_en": f"an alert is pending confirmation: {why}",
            "text_zh": "风险首次越过报警阈值，报警等待下一次评估确认",
        })
    dropped = [i for i in input_issues or [] if i.get("level") == "error"]
    if dropped:
        first = str(dropped[0].get("message") or dropped[0].get("code") or "")
        more = f" and {len(dropped) - 1} more" if len(dropped) > 1 else ""
        reasons.append({
            "code": "readings_dropped",
            "text_en": f"readings of this machine were rejected ({first}{more}); the series was repaired "
                       "before scoring",
            "text_zh": f"该设备有{len(dropped)}处读数无法使用（已丢弃），评分前已修补序列",
        })
    steps = prediction.get("steps")
    if min_steps and steps is not None and steps < min_steps:
        reasons.append({
            "code": "short_series",
            "text_en": f"short series ({steps} steps < {min_steps}): the early-life baseline is incomplete",
            "text_zh": f"序列过短（{steps}步，少于{min_steps}步）：早期基线不完整",
        })
    return {"needs_review": bool(reasons), "review_reasons": reasons, "rule": REVIEW_RULE}


# --------------------------------------------------------------------------- the explanation's gate

_SENSOR_WORD = re.compile(r"(?i)\bsensor[\s_-]?(\d+)\b")
_TEXT_FIELDS = ("horizon", "drivers", "recommended_action", "rationale")


def _sensor_name_pattern(symbols: dict[str, str]) -> str:
    """Names a text may use for a sensor: ``sensor_N`` and the C-MAPSS symbols (T24, Ps30...)."""
    names = sorted({s for s in symbols.values() if s}, key=len, reverse=True)
    alternatives = [r"sensor_\d+"] + [re.escape(n) for n in names]
    return r"(?<![\w.])(?:" + "|".join(alternatives) + r")(?![\w])"


def explanation_facts(prediction: dict[str, Any], summary: dict[str, Any],
                      symbols: dict[str, str], machine: str = "") -> dict[str, Any]:
    """What an explanation may quote (for :func:`core.quality.fact_problems`): the names of the sensors
    the model scored (and their symbols) and every number of the prompt: each sensor's last value,
    baseline, deviation and slope, the calibrated probability, remaining life, anomaly score and
    threshold, the horizon, the drivers' numbers. ``symbols`` maps every known sensor to its symbol;
    ``machine`` (the machine's label, which may hold digits) is a name too."""
    sensors = summary.get("sensors") or {}
    names = [*sensors, *(symbols.get(s, "") for s in sensors), machine]
    numbers: list[float] = []
    for info in sensors.values():
        numbers += [info.get(k) for k in ("last", "baseline", "deviation_sigma", "slope_per_step")]
    numbers += [prediction.get(k) for k in ("failure_probability", "rul_estimate", "anomaly_score",
                                            "anomaly_threshold", "horizon", "steps")]
    for d in prediction.get("drivers") or []:
        numbers += [d.get(k) for k in ("contribution", "deviation_sigma", "slope_sigma_per_step",
                                       "rul_effect")]
    return {"names": [n for n in names if n], "name_pattern": _sensor_name_pattern(symbols),
            "numbers": [float(x) for x in numbers if isinstance(x, int | float) and math.isfinite(x)],
            "exempt_numbers": [0, 1, 2, 3]}


def explanation_texts(answer: dict[str, Any]) -> list[tuple[str, str]]:
    """``(field, text)`` of every text of an explanation (v1: drivers are strings; v2: objects with
    ``sensor`` and ``evidence``), sensor names written ``sensor_N``."""
    out: list[tuple[str, str]] = []
    for key in _TEXT_FIELDS:
        value = answer.get(key)
        items = value if isinstance(value, list) else [value] if value is not None else []
        for i, item in enumerate(items, 1):
            path = f"{key}[{i}]" if isinstance(value, list) else key
            if isinstance(item, dict):
                item = " ".join(str(item.get(k) or "") for k in ("sensor", "evidence"))
            out.append((path, _SENSOR_WORD.sub(lambda m: f"sensor_{m.group(1)}", str(item))))
    return out


def explanation_gate(answer: dict[str, Any], *, prediction: dict[str, Any], summary: dict[str, Any],
                     symbols: dict[str, str], machine: str = "") -> list[str]:
    """Why an explanation must not be shown (empty: it passes): loops, JSON debris and placeholders in
    any text (:func:`core.quality.json_problems`), a sensor name that does not exist in the scored
    data, a number that matches none of the prompt's numbers (within the rounding it is quoted with;
    a time in the recommended action may be any whole number up to the horizon or the remaining life),
    the same driver named twice, a driver that names no scored sensor."""
    from core.quality import fact_problems, json_problems

    problems = json_problems({k: answer.get(k) for k in _TEXT_FIELDS if answer.get(k) is not None})
    facts = explanation_facts(prediction, summary, symbols, machine)
    longest = max([float(prediction.get(k) or 0) for k in ("horizon", "rul_estimate")] + [0])
    for path, text in explanation_texts(answer):
        own = facts
        if path == "recommended_action":
            own = {**facts, "exempt_numbers": [*facts["exempt_numbers"], *range(0, int(longest) + 1)]}
        problems += [f"{path}: {p}" for p in fact_problems(text, facts=own)]
    named = [d.get("sensor") for d in answer.get("drivers") or [] if isinstance(d, dict)]
    if len(named) != len(set(named)):
        problems.append(_gettext("a driver is named twice"))
    scored = {n.lower() for n in facts["names"]} - {machine.lower()}
    for path, text in explanation_texts(answer):
        found = {m.group(0).lower() for m in re.finditer(facts["name_pattern"], text, re.IGNORECASE)}
        if path.startswith("drivers") and not found & scored:
            problems.append(_gettext("%(path)s names no scored sensor") % {"path": path})
    return list(dict.fromkeys(problems))


def explanation_drivers(answer: dict[str, Any], symbols: dict[str, str]) -> list[str]:
    """The sensors an explanation names as drivers, in order (``sensor_N``; symbols mapped back)."""
    by_symbol = {v.lower(): k for k, v in symbols.items() if v}
    out: list[str] = []
    for _path, text in [t for t in explanation_texts(answer) if t[0].startswith("drivers")]:
        for m in re.finditer(_sensor_name_pattern(symbols), text, re.IGNORECASE):
            name = m.group(0).lower()
            sensor = name if name.startswith("sensor_") else by_symbol.get(name)
            if sensor and sensor not in out:
                out.append(sensor)
            break
    return out


def _gettext(message: str) -> str:
    from django.utils.translation import gettext

    return gettext(message)
