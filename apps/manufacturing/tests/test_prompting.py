"""Prompt templates and prompt variables (the decision rules are tested in test_decisions.py)."""

from __future__ import annotations

import json
import re
import string
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from apps.manufacturing import prompting

PROMPT_DIR = Path(prompting.__file__).parent / "prompts" / "failure_explanation"


def _prediction(p=0.7, rul=20.0, **extra):
    base = {
        "mode": "full", "failure_probability": p, "horizon": 30, "horizon_unit": "cycles",
        "rul_estimate": rul, "anomaly_score": 0.62, "anomaly_threshold": 0.59, "is_anomalous": True,
        "drivers": [{"sensor": "sensor_11"}, {"sensor": "sensor_4"}],
        "history": [],
    }
    base.update(extra)
    return base


def _summary(n_sensors=3):
    idx = pd.Index(np.arange(1, 101), name="cycle")
    rng = np.random.default_rng(0)
    data = {f"sensor_{i}": 100 + rng.normal(0, 0.1, 100) for i in range(1, n_sensors + 1)}
    data["sensor_11"] = 47 + np.r_[np.zeros(60), np.linspace(0, 1.5, 40)] + rng.normal(0, 0.05, 100)
    data["sensor_12"] = 521 - np.r_[np.zeros(60), np.linspace(0, 3, 40)] + rng.normal(0, 0.1, 100)
    return prompting.summarize_series(pd.DataFrame(data, index=idx))


# --------------------------------------------------------------------------- templates


def _sections(text: str) -> dict[str, str]:
    parts = re.split(r"^\[(system|user)\]\s*$", text, flags=re.MULTILINE)
    assert parts[0].strip() == ""
    return dict(zip(parts[1::2], parts[2::2], strict=True))


@pytest.mark.parametrize("lang", ["en", "zh-hans"])
def test_templates_render_with_the_variables(lang):
    body = (PROMPT_DIR / f"v1.{lang}.txt").read_text(encoding="utf-8")
    sections = _sections(body)
    assert set(sections) == {"system", "user"}
    variables = prompting.explanation_variables("Press 7", _summary(), _prediction(), lang)
    for text in sections.values():
        rendered = string.Template(text).substitute(variables)  # a missing variable raises KeyError
        assert "$" not in rendered
    user = string.Template(sections["user"]).substitute(variables)
    assert "Press 7" in user and "sensor_11" in user
    if lang == "zh-hans":
        assert "根据以下传感器数据预测设备故障概率(0-1)" in user  # the reference guide's prompt
        assert "30个周期" in user
    else:
        assert "failure probability (0-1)" in user


def test_schema_shape():
    schema = json.loads((PROMPT_DIR / "v1.schema.json").read_text(encoding="utf-8"))
    props = schema["properties"]
    assert list(props)[0] == "failure_probability"
    assert props["failure_probability"] == {"type": "number", "minimum": 0, "maximum": 1}
    assert set(schema["required"]) == {"failure_probability", "horizon", "drivers", "recommended_action",
                                       "rationale"}
    assert schema["additionalProperties"] is False
    assert props["drivers"]["maxItems"] <= 5 and props["drivers"]["items"]["maxLength"] <= 120
    for key in ("horizon", "recommended_action", "rationale"):
        assert props[key]["type"] == "string" and props[key]["maxLength"] <= 600
    meta = json.loads((PROMPT_DIR / "v1.meta.json").read_text(encoding="utf-8"))
    assert meta["description"]


# --------------------------------------------------------------------------- summary and variables


def test_summarize_series_trend_and_deviation():
    s = _summary()["sensors"]
    assert s["sensor_11"]["trend"] == "rising" and s["sensor_11"]["deviation_sigma"] > 5
    assert s["sensor_12"]["trend"] == "falling" and s["sensor_12"]["deviation_sigma"] < -5
    assert s["sensor_1"]["trend"] == "flat" and abs(s["sensor_1"]["deviation_sigma"]) < 3
    assert s["sensor_11"]["symbol"] == "Ps30" and s["sensor_11"]["unit"] == "psia"


@pytest.mark.parametrize("lang", ["en", "zh-hans"])
def test_variables_are_compact_and_drivers_first(lang):
    summary = _summary(n_sensors=80)
    v = prompting.explanation_variables("M-001", summary, _prediction(), lang)
    assert sum(len(x) for x in v.values()) <= prompting.MAX_VARIABLE_CHARS
    lines = v["sensor_summary"].splitlines()
    # drivers first
    assert lines[0].startswith("- sensor_11 (Ps30)") and lines[1].startswith("- sensor_4 (T50)")
    assert lines[2].startswith("- sensor_12 (phi)")  # then by absolute deviation
    assert "not listed" in lines[-1] or "未列出" in lines[-1]
    if lang == "zh-hans":
        assert "上升" in lines[0] and "校准分类器" in v["model_outputs"]
    else:
        assert "rising" in lines[0] and "P(failure within 30 cycles) = 0.70" in v["model_outputs"]
        assert "≈ 20 cycles" in v["model_outputs"] and "anomalous" in v["model_outputs"]


def test_variables_in_anomaly_only_mode():
    pred = _prediction(p=None, rul=None, horizon=None, horizon_unit=None, drivers=[])
    v = prompting.explanation_variables("M", _summary(), pred, "en")
    assert "no calibrated probability" in v["model_outputs"] and v["horizon"] == "not available"
