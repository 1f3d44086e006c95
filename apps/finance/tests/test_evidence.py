"""Extraction only with evidence, the labelled sets, the evaluation's figures and the judgment's
calibration rule (pure: no Django database, no model service)."""
from __future__ import annotations

import csv
import io
import json
import random

import pytest

from apps.finance import evaluation, evidence, prompting, reports, second_opinion
from apps.finance.fields import FIELD_NAMES, FIELDS_BY_NAME, MODEL_INPUTS
from apps.finance.ingest import clean_value
from apps.finance.tests.conftest import shared_csv_text

DEMO = ("Credit application report. The applicant, 35 years old, asks for 4,500 DM over 24 months to buy a "
        "used car. Her checking account is overdrawn (balance below 0 DM) and she has less than 100 DM in "
        "savings. One dependant; telephone registered in her name; no guarantor; at her present address "
        "for 4 years.")


def test_the_test_report_gives_no_invented_field():
    # What the embedded model answered in the issue: all 18 fields "extracted" from "test report".
    invented = {"age_in_years": 100, "duration_in_month": 1, "credit_amount": 100,
                "present_employment_since": "unemployed", "housing": "own",
                "job": "skilled employee / official"}
    answer = {name: {"quote": "test report", "value": value} for name, value in invented.items()}
    applicant, kept, rejected, _ = prompting.extraction_with_evidence(answer, "test report")
    assert kept == {} and all(v is None for v in applicant.values())
    assert set(rejected) == set(invented)
    assert "gives no number" in rejected["age_in_years"]["reason"]
    assert "does not state a value" in rejected["housing"]["reason"]
    # quotes that are not in the report at all
    answer = {name: {"quote": "exact words from the report", "value": v} for name, v in invented.items()}
    _, kept, rejected, _ = prompting.extraction_with_evidence(answer, "test report")
    assert kept == {} and "does not occur in the report" in rejected["credit_amount"]["reason"]
    # an answer without quotes (the v1 shape) keeps nothing
    _, kept, rejected, _ = prompting.extraction_with_evidence(invented, "test report")
    assert kept == {} and rejected["age_in_years"]["reason"] == "no quote from the report"


def test_values_with_supporting_quotes_are_kept_and_others_stay_missing_with_the_reason():
    answer = {
        "age_in_years": {"quote": "35 years old", "value": 35},
        "credit_amount": {"quote": "asks for 4,500 DM over 24 months", "value": 4500},
        "duration_in_month": {"quote": "4,500 DM over 24 months", "value": 45},  # wrong number
        "status_of_existing_checking_account": {"quote": "Her checking account is OVERDRAWN",
                                                "value": "... < 0 DM"},
        "savings_account_and_bonds": {"quote": "less than 100 DM in savings", "value": "100 <= ... < 500 DM"},
        "number_of_people_being_liable_to_provide_maintenance_for": {"quote": "One dependant", "value": 1},
        "present_residence_since": {"quote": "at her present address for 4 years", "value": 4},
        "telephone": {"quote": "telephone registered in her name",
                      "value": "yes, registered under the customers name"},
        "other_debtors_or_guarantors": {"quote": "no guarantor", "value": "none"},
        "housing": {"quote": "35 years old", "value": "own"},  # a real quote that says nothing of housing
        "job": None,
    }
    applicant, kept, rejected, _ = prompting.extraction_with_evidence(answer, DEMO)
    assert set(kept) == {"age_in_years", "credit_amount", "status_of_existing_checking_account",
                         "number_of_people_being_liable_to_provide_maintenance_for",
                         "present_residence_since",
                         "telephone", "other_debtors_or_guarantors"}
    assert applicant["credit_amount"] == 4500 and applicant["duration_in_month"] is None
    assert set(rejected) == {"duration_in_month", "savings_account_and_bonds", "housing"}
    assert "(24) is not 45" in rejected["duration_in_month"]["reason"]
    assert "states '... < 100 DM'" in rejected["savings_account_and_bonds"]["reason"]
    assert applicant["job"] is None and "job" not in rejected


def test_chinese_quotes_numbers_in_words_and_years():
    report = "申请人三十五岁，申请贷款4500马克，期限2年。需抚养两人。申请人租房居住。"
    norm = evidence.normalise(report)
    assert evidence.evidence_problem("age_in_years", 35, "申请人三十五岁", norm) is None
    assert evidence.evidence_problem("duration_in_month", 24, "期限2年", norm) is None
    assert evidence.evidence_problem("credit_amount", 4500, "申请贷款4500马克", norm) is None
    dependants = "number_of_people_being_liable_to_provide_maintenance_for"
    assert evidence.evidence_problem(dependants, 2, "需抚养两人", norm) is None
    assert evidence.evidence_problem("housing", "rent", "申请人租房居住", norm) is None
    assert evidence.evidence_problem("housing", "own", "申请人租房居住", norm) is not None
    assert evidence.evidence_problem("age_in_years", 45, "申请人三十五岁", norm) is not None


@pytest.fixture(scope="module")
def canonical_rows() -> list[dict]:
    rows = []
    for raw in csv.DictReader(io.StringIO(shared_csv_text())):
        row = {n: clean_value(FIELDS_BY_NAME[n], raw[n])[0] for n in FIELD_NAMES}
        rows.append({**row, "creditability": raw["creditability"]})
    return rows


def test_every_phrasing_of_every_value_is_recognised_as_evidence(canonical_rows):
    for lang in ("en", "zh-hans"):
        for i, row in enumerate(canonical_rows[:200]):
            rng = random.Random(i)
            for name in MODEL_INPUTS:
                text = reports.sentence(name, row[name], lang, rng)
                problem = evidence.evidence_problem(name, row[name], text, evidence.normalise(text))
                assert problem is None, text


def test_the_labelled_sets_in_the_repository_are_the_generators_output(canonical_rows):
    built = reports.evaluation_sets_build(canonical_rows)
    for name, items in built.items():
        kind, language = name.split("_", 1)
        stored = evaluation.labelled_set(kind, language)
        assert json.loads(json.dumps(items)) == stored, name
    ext = evaluation.labelled_set("extraction", "zh-hans")
    assert len(ext) == 27 and sum(1 for it in ext if not it["stated"]) == 3
    assert all(set(it["stated"]) | set(it["omitted"]) == set(MODEL_INPUTS) for it in ext)
    assert sum(len(it["omitted"]) for it in ext if it["stated"]) > 50  # reports that omit fields
    judged = evaluation.labelled_set("judgment", "en")
    assert sum(it["creditability"] == "bad" for it in judged) == 40 and len(judged) == 80
    texts = {it["report"] for it in judged}
    assert len(texts) == 80  # varied phrasing, not one template


def test_extraction_metrics_count_right_wrong_and_invented_values():
    items = [{"id": "a", "stated": {"age_in_years": 35, "housing": "own"}, "omitted": ["job", "purpose"]},
             {"id": "b", "stated": {}, "omitted": ["age_in_years"]}]
    outcomes = [{"kept": {"age_in_years": 35, "housing": "rent", "job": "skilled employee / official"},
                 "problem": None},
                {"kept": {}, "problem": None}]
    out = evaluation.extraction_metrics(items, outcomes)
    m = out["metrics"]
    assert m["precision"] == round(1 / 3, 4) and m["recall"] == 0.5
    assert m["omitted_left_missing"] == round(2 / 3, 4)
    assert m["accuracy.age_in_years"] == 1.0 and m["accuracy.housing"] == 0.0 and m["fields_invented"] == 1
    assert out["primary"] == "f1" and out["failures"][0]["item"] == "a"
    problem = out["failures"][0]["problem"]
    assert "invented job" in problem and "wrong housing" in problem


def _runs(scores, bads, level=None):
    probs = {"1": 0.2, "2": 0.6, "3": 0.2}
    return [{"bad": b, "score": s, "level": level or int(round(s)), "label_probs": probs}
            for s, b in zip(scores, bads, strict=True)]


def test_a_constant_or_chance_judgment_gets_weight_zero_and_sends_nobody_to_review():
    bads = [True] * 40 + [False] * 40
    kw = {"pds": [0.3] * 80, "scorecard_levels": [2] * 80, "model": "m", "prompt": "p v1", "language": "en",
          "low_confidence": 0.5}
    const = second_opinion.calibration_measure(runs=_runs([1.0] * 80, bads, level=1), **kw)
    assert const["constant"] and not const["informative"]
    assert const["weight"] == 0 and const["review_rate"] == 0
    assert const["auc"] == 0.5 and const["why"] == "constant"
    rng = random.Random(0)
    guesses = [rng.choice([1.0, 2.0, 3.0]) for _ in bads]
    noise = second_opinion.calibration_measure(runs=_runs(guesses, bads), **kw)
    assert not noise["informative"] and noise["why"] == "near_chance" and noise["weight"] == 0
    assert abs(noise["auc"] - 0.5) <= noise["margin"]
    kw["scorecard_levels"] = [1] * 40 + [2] * 40  # the scorecard misses the first 40 defaults
    good = second_opinion.calibration_measure(runs=_runs([3.0 if b else 1.0 for b in bads], bads), **kw)
    assert good["informative"] and good["auc"] == 1.0 and 0 < good["weight"] <= second_opinion.MAX_WEIGHT
    assert good["review_rate"] == good["disagreement_rate"] == 0.5


def test_a_measurement_applies_only_to_its_model_and_prompt():
    stored = {"en": {"informative": True, "model": "m", "prompt": "finance.risk_judgment v1", "weight": 0.3}}
    assert second_opinion.calibration_for(stored, language="en", model="m",
                                          prompt="finance.risk_judgment v1")["informative"]
    for kw in ({"language": "zh-hans", "model": "m", "prompt": "finance.risk_judgment v1"},
               {"language": "en", "model": "other", "prompt": "finance.risk_judgment v1"},
               {"language": "en", "model": "m", "prompt": "finance.risk_judgment v2"}):
        found = second_opinion.calibration_for(stored, **kw)
        assert not found["informative"] and found["why"] == "not_measured" and found["weight"] == 0
    assert second_opinion.calibration_for({}, language="en", model="m", prompt="p")["why"] == "not_measured"


def test_a_value_with_a_wrong_quote_is_kept_only_where_a_sentence_of_the_report_states_it():
    from apps.finance.demo import DEMO_REPORT
    from apps.finance.prompting import extraction_with_evidence

    answer = {
        "age_in_years": {"quote": "exact words from the report", "value": 35},
        "duration_in_month": {"quote": "24", "value": 24},
        "credit_amount": {"quote": "2.577.50", "value": 4500},
        "housing": {"quote": "housing", "value": "own"},
        "present_residence_since": {"quote": "the prompt's words", "value": 9},  # the report says 4
    }
    applicant, kept, rejected, _ = extraction_with_evidence(answer, DEMO_REPORT)
    assert applicant["age_in_years"] == 35 and "35 years old" in kept["age_in_years"]["quote"]
    assert kept["age_in_years"]["located"] is True
    assert applicant["duration_in_month"] == 24 and "24 months" in kept["duration_in_month"]["quote"]
    assert applicant["credit_amount"] == 4500
    assert applicant["housing"] == "own" and "owns her flat" in kept["housing"]["quote"]
    assert applicant["present_residence_since"] is None and "present_residence_since" in rejected
    # Nothing is found in a report that states nothing.
    applicant, kept, rejected, _ = extraction_with_evidence(answer, "test report")
    assert not kept and set(rejected) == set(answer)
