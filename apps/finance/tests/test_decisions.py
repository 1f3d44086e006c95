"""Finance decision rules (pure, no Django): the rule that combines the scorecard with the LLM's judgment,
and the rule of an analyst's review."""
from __future__ import annotations

import pytest

from apps.finance import decisions, fields
from apps.finance.errors import FinanceInputError

# --- combination rule ----------------------------------------------------------------------------
INFORMATIVE = {"informative": True, "why": "", "weight": 0.4, "center": 2.0, "auc": 0.71, "n": 80,
               "margin": 0.11, "review_on_disagreement": True, "review_rate": 0.2}


def score(level: int, missing: int = 0, pd: float = 0.3) -> dict:
    return {"risk_level": level, "missing_fields": list(fields.MODEL_INPUTS[:missing]),
            "probability_of_default": pd}


def codes(items: list[dict]) -> list[str]:
    return [i["code"] for i in items]


def test_combine_agreement_is_clean():
    out = decisions.combine(score(2), {"risk_level": 2, "label_probs": {1: 0.1, 2: 0.8, 3: 0.1}},
                            calibration=INFORMATIVE)
    assert out["risk_level"] == 2 and out["needs_review"] is False and out["review_reasons"] == []
    assert out["notes"] == [] and out["rule"] == decisions.RULE_ID and out["llm_confidence"] == 0.8


def test_combine_two_level_gap_of_an_informative_judgment_needs_review_but_keeps_the_scorecard_level():
    out = decisions.combine(score(1), {"risk_level": 3, "label_probs": {"1": 0.05, "2": 0.05, "3": 0.9}},
                            calibration=INFORMATIVE)
    assert out["risk_level"] == 1 and out["needs_review"] and codes(out["review_reasons"]) == ["level_gap"]
    assert "1 vs 3" in out["review_reasons"][0]["text_en"] and out["review_reasons"][0]["text_zh"]


def test_an_unmeasured_or_uninformative_judgment_never_sends_to_review():
    llm = {"risk_level": 3, "label_probs": {"1": 0.3, "2": 0.3, "3": 0.4}}  # gap 2 and low confidence
    for calibration in (None, {"informative": False, "why": "not_measured", "weight": 0.0},
                        {"informative": False, "why": "near_chance", "auc": 0.52, "n": 80, "margin": 0.13,
                         "weight": 0.0},
                        {"informative": False, "why": "constant", "n": 80, "weight": 0.0}):
        out = decisions.combine(score(1), llm, calibration=calibration)
        assert out["needs_review"] is False and out["review_reasons"] == []
        assert "judgment_uninformative" in codes(out["notes"])
        assert codes(out["notes"]).count("disagreement_noted") == 2
        assert out["judgment"]["weight"] == 0.0 and out["stacked_pd"] is None
    near = decisions.combine(score(1), llm, calibration={"informative": False, "why": "near_chance",
                                                          "auc": 0.52, "n": 80, "margin": 0.13})
    text = next(n for n in near["notes"] if n["code"] == "judgment_uninformative")
    assert "0.520" in text["text_en"] and "80" in text["text_en"] and "0.520" in text["text_zh"]


def test_an_informative_judgment_gets_its_weight_in_the_stacked_pd():
    llm = {"risk_level": 3, "label_probs": {"1": 0.0, "2": 0.0, "3": 1.0}}
    out = decisions.combine(score(2, pd=0.3), llm, calibration=INFORMATIVE)
    assert out["stacked_pd"] is not None and out["stacked_pd"] > 0.3  # E[level] 3 > centre 2
    assert out["judgment"]["weight"] == 0.4 and out["risk_level"] == 2


def test_combine_one_level_gap_is_only_noted():
    out = decisions.combine(score(3), {"risk_level": 2, "label_probs": {1: 0.1, 2: 0.7, 3: 0.2}},
                            calibration=INFORMATIVE)
    assert out["risk_level"] == 3 and not out["needs_review"] and codes(out["notes"]) == ["level_differs"]


def test_combine_low_confidence_needs_review():
    llm = {"risk_level": 2, "label_probs": {1: 0.3, 2: 0.4, 3: 0.3}}
    out = decisions.combine(score(2), llm, calibration=INFORMATIVE)
    assert out["needs_review"] and codes(out["review_reasons"]) == ["low_confidence"]
    out = decisions.combine(score(2), llm, low_confidence=0.35, calibration=INFORMATIVE)
    assert not out["needs_review"]


def test_combine_missing_llm_and_missing_probs_are_noted():
    out = decisions.combine(score(3), None)
    assert out["risk_level"] == 3 and not out["needs_review"] and codes(out["notes"]) == ["llm_missing"]
    assert out["llm_risk_level"] is None
    out = decisions.combine(score(3), {"risk_level": None, "label_probs": None})
    assert codes(out["notes"]) == ["llm_missing"]
    out = decisions.combine(score(3), {"risk_level": "3", "label_probs": None}, calibration=INFORMATIVE)
    assert not out["needs_review"] and codes(out["notes"]) == ["no_label_probs"]
    assert out["llm_risk_level"] == 3


def test_combine_incomplete_application_needs_review():
    assert not decisions.combine(score(2, missing=6), None)["needs_review"]
    out = decisions.combine(score(2, missing=7), None)
    assert out["needs_review"] and codes(out["review_reasons"]) == ["incomplete"]
    assert "7 of 18" in out["review_reasons"][0]["text_en"]


def test_scored_mostly_on_fields_nobody_gave_needs_review():
    assert not decisions.combine(score(2), None, given_fields=9, extracted_fields=9)["needs_review"]
    out = decisions.combine(score(2, missing=2), None, given_fields=8, extracted_fields=8)
    assert out["needs_review"] and codes(out["review_reasons"]) == ["mostly_unverified"]
    assert "8 of 18 model inputs given, 8 extracted from the report, 2 missing" in \
        out["review_reasons"][0]["text_en"]
    assert "提供 8 个" in out["review_reasons"][0]["text_zh"]


def test_combine_rejects_a_bad_scorecard_level():
    with pytest.raises(ValueError):
        decisions.combine({"risk_level": 5}, None)


# --- review rule ---------------------------------------------------------------------------------
def test_review_approve_keeps_the_model_level():
    assert decisions.review_final_level(decision="approve", model_level=2) == 2
    assert decisions.review_final_level(decision="approve", model_level=2, final_risk_level=2) == 2
    with pytest.raises(FinanceInputError, match="choose override") as err:
        decisions.review_final_level(decision="approve", model_level=2, final_risk_level=3)
    assert err.value.field == "final_risk_level" and err.value.status == 400


def test_review_override_needs_a_level_and_a_comment():
    assert decisions.review_final_level(decision="override", model_level=1, final_risk_level="3",
                                        comment=" income lower ") == 3
    for level in (None, "", 0, 4, "high"):
        with pytest.raises(FinanceInputError, match="1, 2 or 3") as err:
            decisions.review_final_level(decision="override", model_level=1, final_risk_level=level,
                                         comment="x")
        assert err.value.field == "final_risk_level"
    with pytest.raises(FinanceInputError, match="say why") as err:
        decisions.review_final_level(decision="override", model_level=1, final_risk_level=3, comment="  ")
    assert err.value.field == "comment"
    with pytest.raises(FinanceInputError, match="at most 4000") as err:
        decisions.review_final_level(decision="approve", model_level=1, comment="x" * 4001)
    with pytest.raises(FinanceInputError, match="decision") as err:
        decisions.review_final_level(decision="maybe", model_level=1)
    assert err.value.field == "decision"


def test_review_decisions_match_the_model_choices():
    from apps.finance.models import Review

    assert set(decisions.REVIEW_DECISIONS) == set(Review.Decision.values)
