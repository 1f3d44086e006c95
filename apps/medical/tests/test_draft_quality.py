"""Grounded drafts and their gate: technique and comparison from the DICOM headers, findings tied to the
study's features, and the checks that keep a garbage or contradicting draft from being shown."""
from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from pydicom.data import get_testdata_file

from apps.medical.decisions import draft_fact_problems, draft_gate, header_contradictions
from apps.medical.grounding import (
    FEATURE_IDS,
    draft_sections,
    feature_list,
    offered_features,
    study_facts,
    technique_text,
)
from apps.medical.imaging import series_features, study_summary

PROMPTS = Path(__file__).resolve().parents[1] / "prompts"
NAMES = ["radiology_draft_ct", "radiology_draft_mr", "radiology_draft_xr", "radiology_draft_other"]
INDICATION = "Chest pain, rule out pulmonary embolism"
#: the CT draft of the issue (shown as an AI draft, ready to sign): loops, debris, placeholders, the
#: indication pasted as a finding
ISSUE_DRAFT = {
    "technique": "CT, CT (computed tomography)},{", "comparison": "None available.",
    "findings": [{"location": "None available,", "description": "Chest pain, rule out pulmonary embolism",
                  "evidence": "none"}] * 3,
    "impression": "no prior study; no prior study; no prior study; no report of a report of a report",
    "recommendations": ["{{{{{"], "limitations": "None available.",
}
GOOD_V2 = {"findings": [{"feature": "lung_fraction", "text": "About a fifth of the voxels are lung density."},
                        {"feature": "bone_fraction",
                         "text": "Little bone density is present in this slice."}],
           "impression": "Single axial slice; summary statistics cannot show a focal abnormality.",
           "recommendations": ["Review the images for the clinical question."]}


@pytest.fixture(scope="module")
def ct() -> dict:
    return study_summary([series_features([get_testdata_file("CT_small.dcm")]).features])


@pytest.fixture(scope="module")
def mr_head() -> dict:
    return study_summary([series_features([get_testdata_file("emri_small.dcm")]).features])


def test_technique_and_comparison_come_from_the_headers(ct, mr_head):
    facts = study_facts(ct)
    assert facts["modalities"] == ["CT"] and facts["images"] == 1 and facts["series_count"] == 1
    assert facts["slice_thickness_mm"] == [5.0] and facts["contrast_routes"] == ["IV"]
    text = technique_text(ct, "en")
    assert text.startswith("CT examination") and "1 series, 1 image" in text
    assert "slice thickness 5 mm" in text and "contrast: IV route recorded" in text
    assert "body part: not given in the headers" in text
    assert "10 images" in technique_text(mr_head, "en") and "HEAD" in technique_text(mr_head, "en")
    assert "层厚 5 毫米" in technique_text(ct, "zh-hans")
    assert "10 幅图像" in technique_text(mr_head, "zh-hans")
    assert "no contrast recorded" in technique_text(mr_head, "en")


def test_offered_features_are_the_studys_own_with_computed_values(ct, mr_head):
    ids = [f["id"] for f in offered_features(ct)]
    assert {"images", "slice_thickness", "lung_fraction", "bone_fraction", "contrast",
            "tube_voltage"} <= set(ids)
    assert set(ids) <= set(FEATURE_IDS)
    values = {f["id"]: f["value"] for f in offered_features(ct)}
    assert values["lung_fraction"] == "22.8%" and values["tube_voltage"] == "120 kV"
    assert values["slice_thickness"] == "5 mm"
    assert "lung_fraction" not in {f["id"] for f in offered_features(mr_head)}
    listing = feature_list(offered_features(ct), "en")
    assert "- lung_fraction: the share of lung-density voxels (-900 to -200 HU) is 22.8%." in listing


def test_a_v2_answer_becomes_sections_with_evidence_from_code(ct):
    sections = draft_sections(GOOD_V2, summary=ct, lang="en")
    assert sections["technique"] == technique_text(ct, "en") and "No prior study" in sections["comparison"]
    assert [f["description"] for f in sections["findings"]] == [f["text"] for f in GOOD_V2["findings"]]
    assert sections["findings"][0]["evidence"].endswith(": 22.8%")
    assert sections["impression"] == GOOD_V2["impression"]


@pytest.mark.parametrize("name", NAMES)
def test_v2_templates_offer_every_feature_and_constrain_the_text(name, ct):
    schema = json.loads((PROMPTS / name / "v2.schema.json").read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.validate(GOOD_V2, schema)
    finding = schema["properties"]["findings"]["items"]["properties"]
    assert finding["feature"]["enum"] == list(FEATURE_IDS)
    for bad in ("{{{{{", 'a "quoted" text', "measures 12 mm here", "x"):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate({**GOOD_V2, "impression": bad}, schema)
    for lang in ("en", "zh-hans"):
        body = (PROMPTS / name / f"v2.{lang}.txt").read_text(encoding="utf-8")
        assert "$feature_list" in body and "$indication" in body and "[user]" in body


def test_a_clean_grounded_draft_passes(ct):
    assert draft_gate(GOOD_V2, summary=ct, indication=INDICATION) == []


def test_the_issues_garbage_draft_is_rejected_for_each_of_its_faults(ct):
    problems = draft_gate(ISSUE_DRAFT, summary=ct, indication=INDICATION)
    text = "\n".join(problems)
    assert "findings[1].location: the text contains a placeholder" in text
    assert "findings[2] repeats item 1" in text
    assert "impression: the sentence “no prior study” is repeated 3 times" in text
    assert "repeats itself" in text and "recommendations[1]: " in text
    assert "technique: the text contains JSON debris" in text
    assert "findings[1].description: the text copies the input" in text
    assert not any(p.startswith("comparison") for p in problems)  # v1 asks for "None available."


@pytest.mark.parametrize("text, expected", [
    ("MRI shows nothing unusual.", "names the modality “MRI” but the study is CT"),
    ("The 40 slices are unremarkable.", "says 40 images but the study has 1"),
    ("Acquired as 3 series.", "says 3 series but the study has 1"),
    ("Slice thickness of 2.5 mm.", "says slices of 2.5 mm but the headers give 5 mm"),
    ("Acquired without contrast.", "says no contrast"),
])
def test_claims_the_headers_contradict(ct, text, expected):
    assert any(expected in p for p in header_contradictions(text, study_facts(ct)))


def test_body_region_lesions_and_features_that_do_not_exist(ct, mr_head):
    assert any("names the chest but the headers concern head" in p
               for p in header_contradictions("The lungs are clear.", study_facts(mr_head)))
    assert header_contradictions("Lung-density voxels are few.", study_facts(mr_head)) == []
    assert header_contradictions("The brain is shown on 10 images.", study_facts(mr_head)) == []
    uncited = {**GOOD_V2, "findings": [{"feature": "field_strength", "text": "The field is strong here."}]}
    assert any("cites “field_strength”, a feature this study does not have" in p
               for p in draft_fact_problems(uncited, summary=ct))
    lesion = {**GOOD_V2, "impression": "A mass in the right lung."}
    assert any("states “mass”" in p for p in draft_fact_problems(lesion, summary=ct))
    negated = {**GOOD_V2, "impression": "No focal lesion can be stated from these statistics."}
    assert draft_fact_problems(negated, summary=ct) == []
    wrong_number = {**GOOD_V2, "findings": [{"feature": "lung_fraction", "text": "Lung voxels are 51.8%."}]}
    assert any("51.8%" in p for p in draft_fact_problems(wrong_number, summary=ct))
    right_number = {**GOOD_V2, "findings": [{"feature": "lung_fraction", "text": "Lung voxels are 22.8%."}]}
    assert draft_fact_problems(right_number, summary=ct) == []


@pytest.mark.parametrize("impression, expected", [
    ("The bone fraction has been reduced significantly compared with previous studies.", "no prior study"),
    ("Headaches have decreased over the past year.", "no prior study"),
    ("Bone damage has been confirmed.", "states “damage”"),
    ("The number of images is ,", "a gap where a value is missing"),
    ("The impression is one short sentence in your own words; the recommendation is one short action.",
     "copies the input"),
])
def test_what_the_embedded_model_wrote_while_tuning_v2_is_rejected(ct, impression, expected):
    prompt = (PROMPTS / "radiology_draft_ct" / "v2.en.txt").read_text(encoding="utf-8")
    problems = draft_gate({**GOOD_V2, "impression": impression}, summary=ct, indication=INDICATION,
                          prompt=prompt)
    assert any(expected in p for p in problems), problems
    assert draft_gate(GOOD_V2, summary=ct, indication=INDICATION, prompt=prompt) == []


def test_chinese_drafts_are_checked_too(ct):
    good = {"findings": [{"feature": "lung_fraction", "text": "约五分之一的体素为肺密度。"}],
            "impression": "单层轴位图像，统计摘要无法显示局灶异常。", "recommendations": ["请结合临床阅片。"]}
    assert draft_gate(good, summary=ct, indication="胸痛，排除肺栓塞", lang="zh-hans") == []
    bad = {**good, "impression": "磁共振显示肺部肿块。"}
    problems = draft_gate(bad, summary=ct, indication="胸痛，排除肺栓塞", lang="zh-hans")
    assert any("磁共振" in p for p in problems) and any("肿块" in p for p in problems)
