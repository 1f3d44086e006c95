"""Prompt templates, variables and post-checks."""

from __future__ import annotations

import json
import re
import string
from pathlib import Path

import jsonschema
import pytest
from pydicom.data import get_testdata_file

from apps.medical.decisions import draft_status, postcheck
from apps.medical.imaging import series_features, study_summary
from apps.medical.prompting import (
    ReportError,
    draft_variables,
    normalize_report,
    scrub_indication,
    template_name_for,
)

PROMPTS = Path(__file__).resolve().parents[1] / "prompts"
NAMES = ["radiology_draft_ct", "radiology_draft_mr", "radiology_draft_xr", "radiology_draft_other"]
GOOD = {
    "technique": "CT of the chest without contrast, 5 mm slices.",
    "comparison": "None available.",
    "findings": [{"location": "lungs", "description": "Lung tissue fraction 0.23.",
                  "evidence": "tissue_fractions.lung"}],
    "impression": "No abnormality can be stated from summary features alone.",
    "recommendations": ["Radiologist review of the images."],
    "limitations": "Single slice; features are statistics only.",
}


@pytest.fixture(scope="module")
def ct_summary() -> dict:
    return study_summary([series_features([get_testdata_file("CT_small.dcm")]).features])


@pytest.mark.parametrize(
    "modality,name",
    [("CT", NAMES[0]), ("MR", NAMES[1]), ("CR", NAMES[2]), ("DX", NAMES[2]), ("MG", NAMES[2]),
     ("US", NAMES[3]), (None, NAMES[3]), (["SR", "MR"], NAMES[1])],
)
def test_template_name_for(modality, name: str) -> None:
    assert template_name_for(modality) == name


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("lang", ["en", "zh-hans"])
def test_templates_follow_the_conventions(name: str, lang: str, ct_summary: dict) -> None:
    folder = PROMPTS / name
    body = (folder / f"v1.{lang}.txt").read_text(encoding="utf-8")
    assert re.match(r"^\[system\]\n", body) and "\n[user]\n" in body
    schema = json.loads((folder / "v1.schema.json").read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.validate(GOOD, schema)
    assert schema["properties"]["findings"]["maxItems"] <= 5
    assert json.loads((folder / "v1.meta.json").read_text(encoding="utf-8"))["description"]
    variables = draft_variables(ct_summary, "cough", lang)
    rendered = string.Template(body).substitute(variables)  # every placeholder is provided
    assert "$" not in rendered.replace("$$", "")
    assert ("draft" in rendered.lower()) if lang == "en" else ("初稿" in rendered)


def test_variables_are_compact_and_scrubbed(ct_summary: dict) -> None:
    many = dict(ct_summary, series=[ct_summary["series"][0]] * 30, series_count=30)
    indication = "Pain since 03/04/2023; MRN 12345678; call jane@example.org; Doe family"
    variables = draft_variables(many, indication, "en", phi={"Doe"})
    assert len(variables["features"]) <= 1500
    json.loads(variables["features"])
    assert variables["modality"] == "CT"
    ind = variables["indication"]
    assert "12345678" not in ind and "2023" not in ind and "jane@" not in ind and "Doe" not in ind
    assert "Pain since" in ind
    assert draft_variables(ct_summary, None, "zh-hans")["indication"] == "未提供"
    with pytest.raises(ValueError, match="language"):
        draft_variables(ct_summary, "", "fr")
    assert scrub_indication("65 yo, ID A1234, 2 cm mass") == "65 yo, ID [removed], 2 cm mass"


def test_postcheck_flags_unsupported_statements(ct_summary: dict) -> None:
    assert postcheck(GOOD, ct_summary) == []
    bad = {
        "technique": "MRI of the brain.",
        "comparison": "Compared with the study of 2021-02-03.",
        "findings": [
            {"location": "liver", "description": "A 23 mm lesion.", "evidence": ""},
            {"location": "lung", "description": "Mean -119 HU.", "evidence": "intensity mean"},
        ],
        "impression": "Ultrasound recommended.",
        "recommendations": [],
        "limitations": "",
    }
    warnings = postcheck(bad, ct_summary)
    text = "\n".join(warnings)
    assert "modality 'MRI'" in text and "modality 'Ultrasound'" in text
    assert "'23 mm'" in text and "-119 HU" not in text  # -119 HU is in the features
    assert "2021-02-03" in text
    assert "finding 1 (liver) gives no evidence" in text
    # body part: CT_small has no BodyPartExamined; with one, other regions are flagged
    chest = dict(ct_summary, body_parts=["CHEST"])
    assert any("head" in w for w in postcheck(dict(GOOD, impression="Brain normal."), chest))
    explained = postcheck(dict(GOOD, impression="Brain normal."), chest, "fall with head trauma")
    assert not any("head" in w for w in explained)
    zh = dict(GOOD, impression="磁共振未见异常")
    assert any("磁共振" in w for w in postcheck(zh, ct_summary))


def test_normalize_report_checks_shape() -> None:
    assert normalize_report(dict(GOOD, recommendations="one"))["recommendations"] == ["one"]
    with pytest.raises(ReportError, match="findings"):
        normalize_report(dict(GOOD, findings="none"))
    with pytest.raises(ReportError, match=r"findings\[0\].location"):
        normalize_report(dict(GOOD, findings=[{"location": 3}]))
    with pytest.raises(ReportError, match="impression"):
        normalize_report({"impression": "", "findings": []})


def test_report_error_is_a_400_input_error_and_still_a_value_error() -> None:
    from core.errors import InputError

    with pytest.raises(ReportError) as err:
        normalize_report({"impression": "", "findings": []})
    # core.llm expects a validate function to raise a ValueError
    assert isinstance(err.value, InputError) and isinstance(err.value, ValueError)
    assert err.value.status == 400 and err.value.field == "impression"


@pytest.mark.parametrize(("warnings", "problems", "ai_generated", "expected"), [
    ([], [], True, "succeeded"),
    (["measurement '5 mm' is not present in the inputs"], [], True, "needs_review"),
    ([], ["series 2: cannot be decoded"], True, "needs_review"),
    ([], [], False, "needs_review"),  # no AI draft: a fallback text stands in
])
def test_draft_status_sends_to_review_on_warnings_problems_or_no_ai_draft(warnings, problems, ai_generated,
                                                                         expected) -> None:
    assert draft_status(postcheck_warnings=warnings, problems=problems, ai_generated=ai_generated) == expected
