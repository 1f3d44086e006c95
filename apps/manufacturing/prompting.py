"""LLM side of failure prediction: the prompt's variables and the series summary they are built from.

Prompt: ``apps/manufacturing/prompts/failure_explanation`` (registry name
``manufacturing.failure_explanation``), variables ``$machine``, ``$horizon``, ``$sensor_summary``
and ``$model_outputs`` from :func:`explanation_variables`.

How ``$sensor_summary`` lists the sensors is a per-version knob: ``"sensor_listing"`` in
``v<N>.meta.json`` (:func:`sensor_listing`). Without it (v1, v2) every scored sensor is listed, drivers
first, within :data:`MAX_VARIABLE_CHARS`; with it (v3) only the drivers and the sensors that moved, at
most ``max_sensors`` lines, then one line counting the others (:func:`listed_sensors`). The schema's
driver enum is cut to the same sensors (``services.llm``), so a driver is always a listed sensor.

What the answer may change is decided elsewhere: the combination, alert and review rules are in
:mod:`apps.manufacturing.decisions`.
"""

from __future__ import annotations

import json
import math
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from apps.manufacturing import cmapss

PROMPT_NAME = "manufacturing.failure_explanation"
MAX_VARIABLE_CHARS = 1200
PROMPT_DIR = Path(__file__).resolve().parent / "prompts" / "failure_explanation"


@lru_cache(maxsize=16)
def sensor_listing(version: int | None) -> dict[str, Any] | None:
    """The ``"sensor_listing"`` knob of ``v<version>.meta.json`` (``{"max_sensors": N,
    "min_deviation_sigma": x}``), or None: every scored sensor is listed (v1, v2, an unknown version)."""
    if version is None:
        return None
    path = PROMPT_DIR / f"v{int(version)}.meta.json"
    if not path.exists():
        return None
    listing = json.loads(path.read_text(encoding="utf-8")).get("sensor_listing")
    if not listing:
        return None
    return {"max_sensors": int(listing.get("max_sensors", 6)),
            "min_deviation_sigma": float(listing.get("min_deviation_sigma", 2.0))}


def listed_sensors(summary: dict[str, Any], prediction: dict[str, Any],
                   listing: dict[str, Any] | None = None) -> list[str]:
    """The sensors the prompt lists, in order: the model's drivers first, then the others by absolute
    deviation. With a ``listing`` (:func:`sensor_listing`), only the drivers (always) and the sensors that
    moved (``|deviation| >= min_deviation_sigma`` or a trend that is not flat), at most ``max_sensors``
    in all (more only if there are more drivers)."""
    sensors = summary.get("sensors", {})
    drivers = list(dict.fromkeys(d["sensor"] for d in prediction.get("drivers") or []
                                 if d.get("sensor") in sensors))
    rest = sorted((s for s in sensors if s not in drivers), key=lambda s: -abs(sensors[s]["deviation_sigma"]))
    if listing is None:
        return drivers + rest
    moved = [s for s in rest if abs(sensors[s]["deviation_sigma"]) >= listing["min_deviation_sigma"]
             or sensors[s]["trend"] != "flat"]
    return (drivers + moved)[:max(listing["max_sensors"], len(drivers))]


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
                          lang: str = "en", version: int | None = None) -> dict[str, str]:
    """Variables for the ``failure_explanation`` prompt v``version`` (≤ ~1,200 characters together).

    Sensors are listed drivers first, then by absolute deviation, and cut to fit the budget; a version
    with a ``sensor_listing`` knob lists only the sensors that moved (:func:`listed_sensors`) and ends
    with one line counting the others. ``machine_label`` should be the plant's machine name or id (no
    personal data). ``version`` None: listed as v1 and v2 list.
    """
    zh = lang.startswith("zh")
    sensors = summary.get("sensors", {})
    listing = sensor_listing(version)
    if listing is not None:
        return _compact_variables(machine_label, summary, prediction, lang, listing)
    driver_names = [d["sensor"] for d in prediction.get("drivers") or [] if d.get("sensor") in sensors]
    rest = sorted((s for s in sensors if s not in driver_names),
                  key=lambda s: -abs(sensors[s]["deviation_sigma"]))
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


def _sensor_line(s: str, info: dict[str, Any], zh: bool) -> str:
    name = f"{s} ({info['symbol']})" if info.get("symbol") else s
    unit = f" {info['unit']}" if info.get("unit") and info["unit"] != "-" else ""
    trend = _TREND_ZH[info["trend"]] if zh else info["trend"]
    return f"- {name}: {_fmt(info['last'], 6)}{unit}, {info['deviation_sigma']:+.1f}σ, {trend}"


def _compact_variables(machine_label: str, summary: dict[str, Any], prediction: dict[str, Any], lang: str,
                       listing: dict[str, Any]) -> dict[str, str]:
    """:func:`explanation_variables` for a version with a ``sensor_listing`` knob (v3)."""
    zh = lang.startswith("zh")
    sensors = summary.get("sensors", {})
    model_outputs = _model_outputs(prediction, zh)
    machine = str(machine_label)[:60]
    horizon = horizon_text(prediction, lang)
    budget = MAX_VARIABLE_CHARS - len(model_outputs) - len(machine) - len(horizon) - 40
    lines: list[str] = []
    used = 0
    for s in listed_sensors(summary, prediction, listing):
        line = _sensor_line(s, sensors[s], zh)
        if used + len(line) + 1 > budget:
            break
        lines.append(line)
        used += len(line) + 1
    left = len(sensors) - len(lines)
    if left > 0:
        lines.append(f"- （其余{left}个传感器变化较小，未列出）" if zh
                     else f"- ({left} other sensors moved less; not listed)")
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
