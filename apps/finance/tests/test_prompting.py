"""Prompt templates, prompt variables, label probabilities, extraction (pure, no Django). The combination rule
is tested in test_decisions.py."""
from __future__ import annotations

import json
import math
import re
import string
from pathlib import Path

import jsonschema
import pytest

from apps.finance import fields, prompting

PROMPTS = Path(__file__).resolve().parents[1] / "prompts"
APPLICANT = {
    "status_of_existing_checking_account": "... < 0 DM", "duration_in_month": 48,
    "credit_history": "existing credits paid back duly till now", "purpose": "radio/television",
    "credit_amount": 5951.0, "savings_account_and_bonds": "... < 100 DM",
    "present_employment_since": "1 <= ... < 4 years",
    "installment_rate_in_percentage_of_disposable_income": 2,
    "personal_status_and_sex": "female : divorced/separated/married", "other_debtors_or_guarantors": "none",
    "present_residence_since": 2, "property": "real estate", "age_in_years": 22,
    "other_installment_plans": "none",
    "housing": "own", "number_of_existing_credits_at_this_bank": 1, "job": "skilled employee / official",
    "number_of_people_being_liable_to_provide_maintenance_for": 1, "telephone": "none",
    "foreign_worker": "no",
}


def sections(body: str) -> dict[str, str]:
    """The [system]/[user] split of docs/conventions.md."""
    parts = re.split(r"^\[(system|user)\]\s*$", body, flags=re.MULTILINE)
    assert not parts[0].strip(), "text before the first section"
    return dict(zip(parts[1::2], parts[2::2], strict=True))


# --- template files ------------------------------------------------------------------------------
@pytest.mark.parametrize(("name", "variables"), [
    ("risk_judgment", prompting.judgment_variables(APPLICANT, "Applicant wants a TV.", "en")),
    ("field_extraction", prompting.extraction_variables("Applicant wants a TV.", "en")),
])
@pytest.mark.parametrize("lang", ["en", "zh-hans"])
def test_templates_render_with_the_built_variables(name, variables, lang):
    body = (PROMPTS / name / f"v1.{lang}.txt").read_text(encoding="utf-8")
    parts = sections(body)
    assert set(parts) == {"system", "user"}
    placeholders = {m.group("named") or m.group("braced") for m in string.Template.pattern.finditer(body)
                    if m.group("named") or m.group("braced")}
    assert placeholders == set(variables)
    for text in parts.values():
        string.Template(text).substitute(variables)
    meta = json.loads((PROMPTS / name / "v1.meta.json").read_text(encoding="utf-8"))
    assert meta["description"]


def test_templates_render_through_the_platform_registry():
    core_prompts = pytest.importorskip("core.prompts")
    for name, variables in (("risk_judgment", prompting.judgment_variables(APPLICANT, None, "zh-hans")),
                            ("field_extraction", prompting.extraction_variables("报告", "zh-hans"))):
        body = (PROMPTS / name / "v1.zh-hans.txt").read_text(encoding="utf-8")
        messages = core_prompts.render_messages(body, variables, name=name)
        assert [m["role"] for m in messages] == ["system", "user"]


def test_reference_prompt_wording():
    zh = (PROMPTS / "risk_judgment" / "v1.zh-hans.txt").read_text(encoding="utf-8")
    assert "分析以下信贷申请报告的风险等级" in zh and "风险等级划分：低(1)、中(2)、高(3)" in zh
    en = (PROMPTS / "risk_judgment" / "v1.en.txt").read_text(encoding="utf-8")
    assert "low (1), medium (2), high (3)" in en


def test_judgment_schema():
    schema = json.loads((PROMPTS / "risk_judgment" / "v1.schema.json").read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    assert list(schema["properties"]) == ["risk_level", "rationale", "key_factors"]
    assert schema["properties"]["risk_level"]["enum"] == [1, 2, 3]
    assert schema["properties"]["rationale"]["maxLength"] <= 500
    assert schema["properties"]["key_factors"]["maxItems"] == 3
    validator = jsonschema.Draft202012Validator(schema)
    assert validator.is_valid({"risk_level": 2, "rationale": "Moderate.", "key_factors": ["long term"]})
    assert not validator.is_valid({"risk_level": 4, "rationale": "x", "key_factors": []})
    assert not validator.is_valid({"risk_level": 1, "rationale": "x", "key_factors": ["a"] * 5})


def test_extraction_schema_file_matches_the_catalogue():
    on_disk = json.loads((PROMPTS / "field_extraction" / "v1.schema.json").read_text(encoding="utf-8"))
    assert on_disk == fields.extraction_schema()
    jsonschema.Draft202012Validator.check_schema(on_disk)
    assert list(on_disk["properties"]) == list(fields.MODEL_INPUTS)
    validator = jsonschema.Draft202012Validator(on_disk)
    all_null = dict.fromkeys(fields.MODEL_INPUTS)
    assert validator.is_valid(all_null)
    full = {k: v for k, v in APPLICANT.items() if k in fields.MODEL_INPUTS}
    assert validator.is_valid(full)
    assert not validator.is_valid(dict(full, purpose="holiday"))
    assert not validator.is_valid(dict(full, duration_in_month=0))
    assert not validator.is_valid({k: v for k, v in full.items() if k != "purpose"})  # missing must be null


def test_extraction_with_evidence_schema_file_matches_the_catalogue():
    on_disk = json.loads((PROMPTS / "field_extraction" / "v2.schema.json").read_text(encoding="utf-8"))
    assert on_disk == fields.extraction_schema_with_evidence()
    jsonschema.Draft202012Validator.check_schema(on_disk)
    validator = jsonschema.Draft202012Validator(on_disk)
    assert validator.is_valid(dict.fromkeys(fields.MODEL_INPUTS))
    quoted = {k: {"quote": "x", "value": v} for k, v in APPLICANT.items() if k in fields.MODEL_INPUTS}
    assert validator.is_valid(quoted)
    assert not validator.is_valid(dict(quoted, age_in_years=35))  # a value without its quote
    assert not validator.is_valid(dict(quoted, age_in_years={"quote": "", "value": 35}))
    assert not validator.is_valid(dict(quoted, purpose={"quote": "x", "value": "holiday"}))


def test_schemas_compile_for_constrained_decoding():
    xgr = pytest.importorskip("xgrammar")
    for name, version in (("risk_judgment", 1), ("field_extraction", 1), ("field_extraction", 2)):
        xgr.Grammar.from_json_schema((PROMPTS / name / f"v{version}.schema.json").read_text(encoding="utf-8"))


# --- variables -----------------------------------------------------------------------------------
@pytest.mark.parametrize("lang", ["en", "zh-hans"])
def test_judgment_variables_are_compact_and_leave_out_protected_attributes(lang):
    long_report = "The applicant has a stable job and asks for a loan. " * 80
    v = prompting.judgment_variables(APPLICANT, long_report, lang)
    assert set(v) == {"report", "applicant"}
    assert sum(len(x) for x in v.values()) <= prompting.VARIABLES_BUDGET
    assert v["report"].endswith("[truncated]" if lang == "en" else "[已截断]")
    for word in ("female", "Foreign", "女", "外籍", "Personal status", "婚姻"):
        assert word not in v["applicant"]
    if lang == "en":
        assert "Loan duration (months): 48" in v["applicant"]
        assert "Checking account status: ... < 0 DM" in v["applicant"]
    else:
        assert "贷款期限（月）：48" in v["applicant"] and "余额 < 0 马克" in v["applicant"]


def test_judgment_variables_without_report_or_fields():
    v = prompting.judgment_variables({"purpose": "business", "age_in_years": None}, None, "en")
    assert v["report"].startswith("(no report") and v["applicant"] == "Purpose of the loan: business"
    v = prompting.judgment_variables({}, "Short report.", language="zh-hans")
    assert v == {"report": "Short report.", "applicant": "（未提供）"}


@pytest.mark.parametrize("lang", ["en", "zh-hans"])
def test_extraction_variables(lang):
    v = prompting.extraction_variables("x " * 2000, lang)
    assert set(v) == {"report", "fields_help"}
    assert sum(len(x) for x in v.values()) <= prompting.VARIABLES_BUDGET
    label = fields.FIELDS_BY_NAME["credit_amount"].label(lang)
    assert label in v["fields_help"] and "null" in v["fields_help"]
    assert fields.FIELDS_BY_NAME["personal_status_and_sex"].label(lang) not in v["fields_help"]
    assert prompting.extraction_variables("Short.", lang)["report"] == "Short."


# --- label probabilities -------------------------------------------------------------------------
def tok(token: str, logprob: float, top: list[tuple[str, float]] | None = None) -> dict:
    return {"token": token, "logprob": logprob,
            "top_logprobs": [{"token": t, "logprob": lp} for t, lp in (top or [])]}


def test_label_probs_split_tokens():
    content = [tok('{"', 0.0), tok("risk", 0.0), tok("_level", 0.0), tok('":', 0.0), tok(" ", 0.0),
               tok("2", math.log(0.6), [("2", math.log(0.6)), ("3", math.log(0.3)), ("1", math.log(0.05)),
                                        ("x", math.log(0.05))]),
               tok(",", 0.0)]
    probs = prompting.label_probs_from_logprobs(content)
    assert probs == pytest.approx({1: 0.05 / 0.95, 2: 0.6 / 0.95, 3: 0.3 / 0.95})


def test_label_probs_with_leading_space_and_colon_in_the_digit_token():
    content = [tok('{"risk_level', 0.0), tok('":', 0.0),
               tok(" 1", math.log(0.5),
                   [(" 1", math.log(0.5)), (" 2", math.log(0.25)), ("3", math.log(0.25))])]
    assert prompting.label_probs_from_logprobs(content) == pytest.approx({1: 0.5, 2: 0.25, 3: 0.25})
    content = [tok('{"risk_level"', 0.0),
               tok(":3", math.log(0.9), [(":3", math.log(0.9)), (":2", math.log(0.1))])]
    assert prompting.label_probs_from_logprobs(content) == pytest.approx({1: 0.0, 2: 0.1, 3: 0.9})


def test_label_probs_ignore_other_digits_and_bad_input():
    content = [tok('{"score": ', 0.0), tok("1", 0.0, [("1", 0.0)]), tok(', "risk_level": ', 0.0),
               tok("3", math.log(0.7), [("3", math.log(0.7)), ("2", math.log(0.3))])]
    assert prompting.label_probs_from_logprobs(content) == pytest.approx({1: 0.0, 2: 0.3, 3: 0.7})
    no_alternatives = [tok('{"risk_level": ', 0.0), tok("2", 0.0)]
    assert prompting.label_probs_from_logprobs(no_alternatives) is None
    assert prompting.label_probs_from_logprobs([tok('{"rationale": "1', 0.0, [("1", 0.0)])]) is None
    assert prompting.label_probs_from_logprobs([tok('{"risk_level": 12', 0.0, [("12", 0.0)])]) is None
    for junk in (None, "text", [{"no": "token"}], []):
        assert prompting.label_probs_from_logprobs(junk) is None


# --- extraction results --------------------------------------------------------------------------
def test_extraction_result_to_applicant():
    answer = {"status_of_existing_checking_account": "NO checking account", "duration_in_month": 24,
              "purpose": "holiday", "credit_amount": -5, "age_in_years": None, "housing": "own",
              "colour": "blue"}
    applicant, warnings = prompting.extraction_result_to_applicant(answer)
    assert set(applicant) == set(fields.FIELD_NAMES)
    assert applicant["status_of_existing_checking_account"] == "no checking account"
    assert applicant["duration_in_month"] == 24 and applicant["housing"] == "own"
    assert applicant["purpose"] is None and applicant["credit_amount"] is None
    assert applicant["age_in_years"] is None
    assert any("'purpose'" in w and "treated as missing" in w for w in warnings)
    assert any("'credit_amount'" in w and "out of range" in w for w in warnings)
    assert any("'colour'" in w for w in warnings) and len(warnings) == 3


def test_extraction_result_from_text_and_junk():
    applicant, warnings = prompting.extraction_result_to_applicant('{"job": "skilled employee / official"}')
    assert applicant["job"] == "skilled employee / official" and warnings == []
    applicant, warnings = prompting.extraction_result_to_applicant("{not json")
    assert all(v is None for v in applicant.values()) and "not valid JSON" in warnings[0]
    assert "expected a JSON object" in prompting.extraction_result_to_applicant([1, 2])[1][0]
