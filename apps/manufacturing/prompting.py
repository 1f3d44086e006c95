"""LLM side of failure prediction: prompt variables, the combination rule and the alert rule.

Prompt: ``apps/manufacturing/prompts/failure_explanation`` (registry name
``manufacturing.failure_explanation``), variables ``$machine``, ``$horizon``, ``$sensor_summary``
and ``$model_outputs`` from :func:`explanation_variables`.

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
(confirmed by the previous evaluation or a low RUL) or RUL ≤ R/2 with p ≥ P; otherwise ``warning``. In anomaly-only mode an anomaly alert (warning)
needs at least 3 of the last 5 steps above the anomaly threshold.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from apps.manufacturing import cmapss

PROMPT_NAME = "manufacturing.failure_explanation"
MAX_VARIABLE_CHARS = 1200
DISAGREEMENT_GAP = 0.3
COMBINE_RULE = (
    "calibrated classifier probability is authoritative; the LLM's probability is shown beside it; "
    f"|gap| > {DISAGREEMENT_GAP} flags disagreement"
)
DEFAULT_THRESHOLDS = {"probability": 0.5, "rul": 30.0, "margin": 0.2, "critical_probability": 0.8}


def summarize_series(
    series: pd.DataFrame,
    *,
    sensors: list[str] | None = None,
    window: int = 30,
    baseline_steps: int = 20,
    units: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A compact per-sensor summary: last value, early-life baseline, deviation in σ and trend.

    ``series`` is one machine's frame indexed by time. Deviation = (mean of the last 5 steps −
    mean of the first ``baseline_steps``) / early-life σ; trend compares the least-squares drift
    over the last ``window`` steps with that σ (``rising``/``falling`` if the drift exceeds 1 σ).
    """
    df = series.sort_index()
    cols = sensors or [c for c in df.columns if pd.api.types.is_numeric_dtype(df[c].dtype)]
    units = units or {}
    out: dict[str, dict[str, Any]] = {}
    for c in cols:
        if c not in df.columns:
            continue
        x = pd.to_numeric(df[c], errors="coerce").dropna().to_numpy(dtype=float)
        if len(x) == 0:
            continue
        head = x[: max(baseline_steps, 2)]
        base = float(head.mean())
        sd = float(head.std()) if len(head) > 2 else 0.0
        if sd <= 1e-12:
            sd = float(x.std()) or 1.0
        recent = x[-5:].mean()
        tail = x[-window:]
        slope = float(np.polyfit(np.arange(len(tail)), tail, 1)[0]) if len(tail) >= 3 else 0.0
        drift = slope * (len(tail) - 1) / sd
        trend = "rising" if drift > 1 else "falling" if drift < -1 else "flat"
        info = cmapss.CMAPSS_SENSORS.get(c)
        out[c] = {
            "last": float(x[-1]),
            "baseline": round(base, 6),
            "deviation_sigma": round(float((recent - base) / sd), 2),
            "trend": trend,
            "slope_per_step": slope,
            "unit": units.get(c) or (info.unit if info else ""),
            "symbol": info.symbol if info else "",
        }
    idx = df.index
    return {
        "steps": len(df),
        "time_axis": "timestamp" if isinstance(idx, pd.DatetimeIndex) else "cycle",
        "first_at": _label(idx[0]) if len(idx) else None,
        "last_at": _label(idx[-1]) if len(idx) else None,
        "sensors": out,
    }


def _label(t: Any) -> Any:
    if isinstance(t, pd.Timestamp):
        return t.isoformat()
    try:
        f = float(t)
        return int(f) if f.is_integer() else f
    except (TypeError, ValueError):
        return str(t)


def _fmt(x: float | None, digits: int = 4) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "n/a"
    return f"{x:.{digits}g}"


_TREND_ZH = {"rising": "上升", "falling": "下降", "flat": "平稳"}


def horizon_text(prediction: dict[str, Any], lang: str = "en") -> str:
    """The horizon as words, e.g. ``"30 cycles"`` / ``"30个周期"``."""
    h, unit = prediction.get("horizon"), prediction.get("horizon_unit")
    if h is None:
        return "未定" if lang.startswith("zh") else "not available"
    if lang.startswith("zh"):
        return f"{h}{'个周期' if unit == 'cycles' else '小时'}"
    return f"{h} {unit}"


def explanation_variables(machine_label: str, summary: dict[str, Any], prediction: dict[str, Any],
                          lang: str = "en") -> dict[str, str]:
    """Variables for the ``failure_explanation`` prompt (≤ ~1,200 characters together).

    Sensors are listed drivers first, then by absolute deviation, and cut to fit the budget.
    ``machine_label`` should be the plant's machine name or id (no personal data).
    """
    zh = lang.startswith("zh")
    sensors = summary.get("sensors", {})
    driver_names = [d["sensor"] for d in prediction.get("drivers") or [] if d.get("sensor") in sensors]
    rest = sorted((s for s in sensors if s not in driver_names), key=lambda s: -abs(sensors[s]["deviation_sigma"]))
    model_outputs = _model_outputs(prediction, zh)
    machine = str(machine_label)[:60]
    horizon = horizon_text(prediction, lang)
    budget = MAX_VARIABLE_CHARS - len(model_outputs) - len(machine) - len(horizon) - 40  # 40: the "more" line
    lines: list[str] = []
    used = 0
    for s in driver_names + rest:
        info = sensors[s]
        name = f"{s} ({info['symbol']})" if info.get("symbol") else s
        unit = f" {info['unit']}" if info.get("unit") and info["unit"] != "-" else ""
        trend = _TREND_ZH[info["trend"]] if zh else info["trend"]
        line = f"- {name}: {_fmt(info['last'], 6)}{unit}, {info['deviation_sigma']:+.1f}σ, {trend}"
        if used + len(line) + 1 > budget:
            left = len(driver_names) + len(rest) - len(lines)
            lines.append(f"- （另有{left}个传感器未列出）" if zh else f"- ({left} more sensors not listed)")
            break
        lines.append(line)
        used += len(line) + 1
    return {
        "machine": machine,
        "horizon": horizon,
        "sensor_summary": "\n".join(lines) if lines else ("（无传感器数据）" if zh else "(no sensor data)"),
        "model_outputs": model_outputs,
    }


def _model_outputs(prediction: dict[str, Any], zh: bool) -> str:
    p = prediction.get("failure_probability")
    rul = prediction.get("rul_estimate")
    unit = prediction.get("horizon_unit") or "cycles"
    an, thr = prediction.get("anomaly_score"), prediction.get("anomaly_threshold")
    h = horizon_text(prediction, "zh" if zh else "en")
    parts = []
    if zh:
        if p is not None:
            parts.append(f"校准分类器给出的{h}内故障概率 {p:.2f}")
        if rul is not None:
            parts.append(f"剩余寿命估计约 {rul:.0f}{'个周期' if unit == 'cycles' else '小时'}")
        if an is not None:
            flag = "，异常" if thr is not None and an > thr else ""
            parts.append(f"异常分数 {an:.2f}（阈值 {_fmt(thr, 2)}{flag}）")
        if p is None:
            parts.append("无校准概率（仅异常检测）")
        return "；".join(parts)
    if p is not None:
        parts.append(f"calibrated classifier P(failure within {h}) = {p:.2f}")
    if rul is not None:
        parts.append(f"remaining useful life ≈ {rul:.0f} {unit}")
    if an is not None:
        flag = ", anomalous" if thr is not None and an > thr else ""
        parts.append(f"anomaly score {an:.2f} (threshold {_fmt(thr, 2)}{flag})")
    if p is None:
        parts.append("no calibrated probability (anomaly detection only)")
    return "; ".join(parts)


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
            reasons.append(f"remaining life {rul:.0f} {unit} ≤ {R:g}, corroborated by probability {p:.2f} ≥ {P / 2:.2f}")
        elif high:
            pending = True
            reasons.append(f"failure probability {p:.2f} ≥ {P:.2f} for the first time; awaiting confirmation")
        if level is not None and ((p >= crit_p and (confirmed or rul_low)) or (rul is not None and rul <= R / 2 and p >= P)):
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
        en = f"Schedule maintenance now{within}: inspect {names or 'the flagged sensors'} and consider taking the machine out of service."
        zh = f"立即安排维护（{within_zh}）：检查{names_zh or '报警传感器'}，并考虑停机检修。" if within_zh else \
            f"立即安排维护：检查{names_zh or '报警传感器'}，并考虑停机检修。"
    elif level == "warning":
        en = f"Plan maintenance{within}; watch {names or 'the flagged sensors'} closely and prepare spare parts."
        zh = f"计划{within_zh}进行维护；密切关注{names_zh or '报警传感器'}，并准备备件。"
    elif pending:
        en = "Risk rising: re-evaluate at the next readings before acting."
        zh = "风险上升：在下一批读数到来后复核，再决定是否处理。"
    else:
        en = "No action needed; keep monitoring."
        zh = "无需处理，继续监测。"
    return en, zh
