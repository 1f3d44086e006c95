"""The decision rules: the LLM/classifier combination, the alert rule and the review rule."""

from __future__ import annotations

import pytest

from apps.manufacturing import decisions


def _prediction(p=0.7, rul=20.0, **extra):
    base = {
        "mode": "full", "failure_probability": p, "horizon": 30, "horizon_unit": "cycles",
        "rul_estimate": rul, "anomaly_score": 0.62, "anomaly_threshold": 0.59, "is_anomalous": True,
        "drivers": [{"sensor": "sensor_11"}, {"sensor": "sensor_4"}],
        "history": [], "steps": 120,
    }
    base.update(extra)
    return base


# --------------------------------------------------------------------------- combination rule


def test_combine_classifier_is_authoritative():
    out = decisions.combine(_prediction(p=0.7), {"failure_probability": 0.6})
    assert out["failure_probability"] == 0.7 and out["llm_failure_probability"] == 0.6
    assert out["disagreement"] is False and out["gap"] == pytest.approx(-0.1)
    assert "authoritative" in out["rule"]


@pytest.mark.parametrize(("llm", "flag"), [(0.35, True), (0.41, False), (1.0, False), (0.0, True)])
def test_combine_flags_disagreement_over_0_3(llm, flag):
    assert decisions.combine(_prediction(p=0.7), {"failure_probability": llm})["disagreement"] is flag


@pytest.mark.parametrize("bad", ["high", 1.7, -0.2, float("nan"), True, None])
def test_combine_ignores_invalid_llm_numbers(bad):
    out = decisions.combine(_prediction(p=0.2), {"failure_probability": bad})
    assert out["failure_probability"] == 0.2 and out["llm_failure_probability"] is None
    assert out["disagreement"] is False
    assert bool(out["notes"]) is (bad is not None)


def test_combine_without_llm_or_without_classifier():
    assert decisions.combine(_prediction(p=0.4), None)["llm_failure_probability"] is None
    out = decisions.combine(_prediction(p=None), {"failure_probability": 0.9})
    assert out["failure_probability"] is None and out["llm_failure_probability"] == 0.9
    assert "not used" in out["rule"]


# --------------------------------------------------------------------------- alert rule


def test_marginal_first_crossing_is_pending_not_an_alert():
    out = decisions.alert_decision(_prediction(p=0.55, rul=60), [0.3, 0.4])
    assert out["alert"] is False and out["level"] is None and out["pending"] is True
    assert "awaiting confirmation" in out["reasons"][0]
    assert out["lead_time"] is None and "re-evaluate" in out["recommendation_en"]


def test_two_consecutive_evaluations_raise_a_warning():
    out = decisions.alert_decision(_prediction(p=0.55, rul=60), [0.3, 0.52])
    assert out["alert"] and out["level"] == "warning"
    assert "2 consecutive" in out["reasons"][0]
    assert out["lead_time"]["value"] == 60 and out["lead_time"]["unit"] == "cycles"
    assert "60" in out["recommendation_en"] and "60个周期" in out["recommendation_zh"]


def test_clear_margin_or_low_rul_confirms_on_first_crossing():
    assert decisions.alert_decision(_prediction(p=0.75, rul=60), [])["level"] == "warning"
    assert decisions.alert_decision(_prediction(p=0.55, rul=25), [])["level"] == "warning"


def test_critical_levels():
    crit = decisions.alert_decision(_prediction(p=0.92, rul=20), [0.85])
    assert crit["level"] == "critical" and any(r.startswith("critical") for r in crit["reasons"])
    assert "sensor_11" in crit["recommendation_en"] and "立即" in crit["recommendation_zh"]
    assert decisions.alert_decision(_prediction(p=0.6, rul=10), [])["level"] == "critical"
    # a single very high reading with a healthy remaining life is a warning, not critical
    assert decisions.alert_decision(_prediction(p=0.9, rul=80), [])["level"] == "warning"


def test_low_rul_needs_corroboration():
    assert decisions.alert_decision(_prediction(p=0.3, rul=25), [])["level"] == "warning"
    quiet = decisions.alert_decision(_prediction(p=0.1, rul=25), [0.1])
    assert quiet["alert"] is False and quiet["pending"] is False
    assert quiet["recommendation_en"].startswith("No action")


def test_custom_thresholds():
    th = {"probability": 0.8, "rul": 10}
    assert decisions.alert_decision(_prediction(p=0.75, rul=60), [0.75], th)["alert"] is False
    assert decisions.alert_decision(_prediction(p=0.85, rul=60), [0.82], th)["level"] == "warning"
    assert decisions.alert_decision(_prediction(p=0.95, rul=60), [0.9], th)["level"] == "critical"


def test_anomaly_only_alerts_need_persistence():
    hist = [{"anomaly_score": a} for a in (0.5, 0.6, 0.61, 0.5, 0.62)]
    pred = _prediction(p=None, rul=None, history=hist, anomaly_threshold=0.59)
    out = decisions.alert_decision(pred, [])
    assert out["level"] == "warning" and "3 of the last 5" in out["reasons"][0]
    hist[2] = {"anomaly_score": 0.4}
    out = decisions.alert_decision(_prediction(p=None, rul=None, history=hist, anomaly_threshold=0.59), [])
    assert out["alert"] is False and out["pending"] is True


# --------------------------------------------------------------------------- review rule


def _codes(review):
    return [r["code"] for r in review["review_reasons"]]


def test_a_clean_confirmed_result_needs_no_review():
    pred = _prediction(p=0.55, rul=60)
    out = decisions.review_decision(pred, decisions.alert_decision(pred, [0.3, 0.52]), input_issues=[
        {"level": "warning", "code": "duplicate", "message": "row 9: duplicate reading, the last one wins"}],
        min_steps=20)
    assert out == {"needs_review": False, "review_reasons": [], "rule": decisions.REVIEW_RULE}
    quiet = _prediction(p=0.05, rul=90, is_anomalous=False)
    assert not decisions.review_decision(quiet, decisions.alert_decision(quiet, []))["needs_review"]


def test_a_pending_alert_needs_review():
    pred = _prediction(p=0.55, rul=60)
    out = decisions.review_decision(pred, decisions.alert_decision(pred, [0.3, 0.4]))
    assert out["needs_review"] and _codes(out) == ["alert_pending"]
    assert "awaiting confirmation" in out["review_reasons"][0]["text_en"]
    assert out["review_reasons"][0]["text_zh"]


def test_a_fired_alert_or_a_disagreeing_llm_alone_is_no_review():
    pred = _prediction(p=0.92, rul=20)
    decision = decisions.alert_decision(pred, [0.85])
    assert decision["level"] == "critical"
    assert decisions.review_decision(pred, decision)["needs_review"] is False
    # the language model disagreeing is shown beside the result, not a reason for review
    assert decisions.combine(pred, {"failure_probability": 0.1})["disagreement"] is True


def test_a_model_fallback_needs_review():
    pred = _prediction(p=None, rul=None, mode="anomaly_only", is_anomalous=False,
                       fallback_reason="sensors missing for the failure model: sensor_2")
    out = decisions.review_decision(pred, decisions.alert_decision(pred, []))
    assert _codes(out) == ["model_fallback"] and "sensor_2" in out["review_reasons"][0]["text_en"]


def test_rejected_readings_and_a_short_series_need_review():
    pred = _prediction(p=0.05, rul=90, is_anomalous=False, steps=12)
    issues = [{"level": "error", "code": "non_numeric",
               "message": "row 6, sensor sensor_2: 'ERR' is not a number"},
              {"level": "error", "code": "bad_time", "message": "row 9: unreadable cycle"},
              {"level": "warning", "code": "missing_values", "message": "3 missing values filled"}]
    out = decisions.review_decision(pred, decisions.alert_decision(pred, []), input_issues=issues,
                                    min_steps=20)
    assert _codes(out) == ["readings_dropped", "short_series"]
    dropped, short = out["review_reasons"]
    assert "'ERR'" in dropped["text_en"] and "1 more" in dropped["text_en"] and "2处" in dropped["text_zh"]
    assert "12 steps < 20" in short["text_en"]
    assert not decisions.review_decision(pred, {}, min_steps=None)["needs_review"]


def test_alert_block():
    pred = _prediction(p=0.92, rul=20)
    block = decisions.alert_block(decisions.alert_decision(pred, [0.85]))
    assert block["level"] == "critical" and block["lead_time"] == 20 and block["lead_time_unit"] == "cycles"
    assert block["recommendation"] and block["recommendation_zh"]
    assert block["thresholds"]["probability"] == 0.5
    assert decisions.alert_block(decisions.alert_decision(_prediction(p=0.1, rul=90), [])) is None
