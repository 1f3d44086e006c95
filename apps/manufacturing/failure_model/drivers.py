"""One-line English and Chinese explanations of the sensors driving a prediction."""

from __future__ import annotations

from typing import Any

from apps.manufacturing import cmapss

from .series import _num


def driver_texts(d: dict[str, Any], horizon: float | None, unit: str,
                 units: dict[str, str]) -> tuple[str, str]:
    """English and Chinese one-line explanations of a driver."""
    s = d["sensor"]
    info = cmapss.CMAPSS_SENSORS.get(s)
    name_en = f"{s} ({info.symbol}, {info.description_en})" if info else s
    name_zh = f"{s}（{info.symbol}，{info.description_zh}）" if info else s
    dev = d.get("deviation_sigma") or 0.0
    up = dev >= 0
    slope = d.get("slope_sigma_per_step")
    trend_en = trend_zh = ""
    if slope is not None and abs(slope) >= 0.02:
        trend_en = " and rising" if slope > 0 else " and falling"
        trend_zh = "，且呈上升趋势" if slope > 0 else "，且呈下降趋势"
    en = f"{name_en} is {abs(dev):.1f}σ {'above' if up else 'below'} its early-life baseline{trend_en}"
    zh = f"{name_zh}比早期基线{'高' if up else '低'}{abs(dev):.1f}σ{trend_zh}"
    contrib = d.get("contribution")
    if horizon is not None and contrib is not None:
        h = _num(horizon)
        unit_zh = "个周期" if unit == "cycles" else "小时"
        if contrib >= 0.005:
            en += f"; it raises the {h}-{unit[:-1]} failure probability by {contrib * 100:.0f} points"
            zh += f"；使{h}{unit_zh}内的故障概率上升{contrib * 100:.0f}个百分点"
        else:
            en += "; it is among the strongest signals in the model's risk score"
            zh += "；是模型风险评分中最强的信号之一"
    return en + ".", zh + "。"
