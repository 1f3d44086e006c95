"""Unit tests of the quality gates (``core.quality``): each check catches what it is for, and clean
clinical, financial and technical text in English and Chinese passes all of them."""
import pytest

from core import quality
from core.quality import json_problems, text_problems

CLEAN = [
    # clinical
    "There is no evidence of fracture. There is no evidence of effusion. There is no evidence of mass. "
    "The liver is unremarkable.",
    "Axial CT of the chest with contrast shows a 12 mm nodule in the right upper lobe; no lymphadenopathy.",
    "No pulmonary embolism. Mild bibasal atelectasis. Follow-up CT in 3 months is suggested.",
    "肝脏未见明显异常。脾脏未见明显异常。肾脏未见明显异常。双肺纹理清晰。",
    "右肺上叶见一约12毫米结节，边界清楚，建议3个月后复查CT。",
    # financial
    "The applicant has a stable income of 3,500 per month and has been employed for 6 years; "
    "no defaults (0.0%). The loan duration of 24 months is short relative to the amount.",
    "申请人月收入稳定，工作年限为六年，无违约记录。贷款期限较短，风险较低。",
    # technical
    "Sensor s11 rose 12% over the last 30 cycles; remaining useful life is 42 cycles. Vibration and "
    "temperature trends agree.",
    "传感器s11在最近30个周期内上升了12%，剩余使用寿命约为42个周期。",
    "Mississippi banana 1.1.1 1010, left-to-right (see appendix).",
]


@pytest.mark.parametrize("text", CLEAN)
def test_clean_text_passes_every_check(text):
    assert text_problems(text, sources=["Chest pain, rule out pulmonary embolism."]) == []


@pytest.mark.parametrize("text, expected", [
    ("The lungs are clear. The heart is normal. The lungs are clear.", "the sentence “the lungs are clear”"),
    ("no prior study; no prior study; no prior study", "is repeated 3 times"),
    ("a report of a report of a report", "the phrase “a report of” repeats itself"),
    ("报告的报告的报告的报告", "the phrase “报告的” repeats itself"),
    ("the engine shows wear on the compressor blades, then later the engine shows wear on the compressor "
     "blades and again the engine shows wear on the compressor blades", "come back 3 times"),
    ("肝脏见低密度影边界不清楚，脾脏正常，肝脏见低密度影边界不清楚，"
     "肾脏正常，肝脏见低密度影边界不清楚", "come back"),
])
def test_loops_are_caught(text, expected):
    problems = quality.loop_problems(text)
    assert any(expected in p for p in problems), problems


@pytest.mark.parametrize("text", ["{{{{{", '{"finding": "mass"}', 'The lesion is \\"large\\"',
                                  "mass in the [left] lobe", "Impression: }"])
def test_json_debris_is_caught(text):
    assert any("JSON debris" in p for p in text_problems(text))


@pytest.mark.parametrize("text", ["None available,", "Location: N/A", "[insert finding here]", "TBD",
                                  "XXX", "", "   ", "None", "null", "待定", "结论：待补充"])
def test_placeholders_and_empty_text_are_caught(text):
    assert quality.placeholder_problems(text), text


@pytest.mark.parametrize("text, gap", [
    ("The number of images is ,", True), ("The bone fraction has been reduced down to just .", True),
    ("The intensity is , and the matrix is .", True), ("Income: 3,500 per month. Fine.", False),
    ("No effusion (see image 3).", False), ("肺密度体素约占五分之一。", False),
])
def test_a_gap_where_a_value_was_left_out_is_caught(text, gap):
    assert bool(quality.gap_problems(text)) is gap


@pytest.mark.parametrize("text, source, copied", [
    ("Chest pain, rule out pulmonary embolism", "Chest pain, rule out pulmonary embolism.", True),
    ("Finding: patient with chest pain for three days, rule out embolism", "65 y/o with chest pain for three "
     "days, rule out embolism", True),
    ("患者胸痛三天，排除肺栓塞可能性", "临床指征：患者胸痛三天，排除肺栓塞可能性。", True),
    ("No pulmonary embolism", "rule out pulmonary embolism", False),
    ("Chest pain", "Chest pain, rule out pulmonary embolism", False),
    ("The first seizure.", "First seizure", True),
    ("No pulmonary embolism is seen on these images", "pulmonary embolism", False),
    ("未见肺栓塞", "排除肺栓塞", False),
])
def test_text_copied_from_the_input_is_caught(text, source, copied):
    assert bool(quality.copy_problems(text, sources=[source])) is copied


def test_facts_check_names_numbers_and_contradictions():
    facts = {"names": ["s11", "s12"], "name_pattern": r"\bs\d+\b", "numbers": [0.4312, 0.372, 12.46, 42],
             "exempt_numbers": [3]}
    assert text_problems("The top 3 drivers: s11 at 0.43 and s12 at 12.5; risk 37%, RUL 42 cycles.",
                         facts=facts) == []
    problems = text_problems("s99 rose by 0.51 and RUL is 80 cycles", facts=facts)
    assert any("“s99” does not exist" in p for p in problems)
    assert any("0.51 matches none" in p for p in problems) and any("80 matches none" in p for p in problems)
    ct = {"contradictions": [(r"\bMRI?\b|magnetic resonance", "the study is CT")]}
    assert any("the study is CT" in p for p in text_problems("MRI of the brain shows no bleed.", facts=ct))
    assert text_problems("CT of the brain shows no bleed.", facts=ct) == []
    with pytest.raises(ValueError, match="unknown fact keys"):
        text_problems("x y z", facts={"sensors": []})


def test_json_problems_names_the_field_and_catches_repeated_items():
    answer = {"findings": [{"text": "Mass", "location": "None available,"}] * 3,
              "impression": "no prior study; no prior study; no prior study",
              "recommendations": ["{{{{{"], "meta": {"note": "N/A"}}
    problems = json_problems(answer, sources=["rule out mass"], fields=["findings", "impression",
                                                                         "recommendations"])
    assert "findings[1].location: the text contains a placeholder (“None available”)" in problems
    assert "findings[2] repeats item 1" in problems and "findings[3] repeats item 1" in problems
    assert any(p.startswith("impression: the sentence") for p in problems)
    assert any(p.startswith("recommendations[1]: ") for p in problems)
    assert not any(p.startswith("meta") for p in problems)
    clean = {"findings": [{"text": "12 mm nodule in the right upper lobe", "feature": "nodule"},
                          {"text": "No pleural effusion", "feature": "pleura"}],
             "impression": "Solitary pulmonary nodule.", "recommendations": ["Follow-up CT in 3 months."]}
    assert json_problems(clean, sources=["Cough for two weeks."]) == []


def test_problems_are_translated():
    from django.utils import translation

    with translation.override("zh-hans"):
        problems = text_problems("None available,")
    assert problems and problems != text_problems("None available,")
