"""The explanation evaluator's figures, with the language-model step replaced (a unit test of the counting;
the live evaluation runs through ``manage.py evaluate_prompts --app manufacturing``)."""
from __future__ import annotations

from apps.manufacturing import evaluation
from apps.manufacturing.services import llm as mfg_llm
from core.llm import OK, REJECTED, LLMStep


def _item(unit: int, language: str, version=None) -> dict:
    summary = {"sensors": {"sensor_11": {"last": 48.1, "deviation_sigma": 3.2, "slope_per_step": 0.01}}}
    prediction = {"failure_probability": 0.8, "drivers": [{"sensor": "sensor_11"}]}
    return {"unit": unit, "variables": {"machine": f"FD001-{unit:03d}"}, "prediction": prediction,
            "summary": summary, "top_drivers": ["sensor_11"]}


def _step(*, first_ok: bool, final_ok: bool) -> LLMStep:
    answer = {"failure_probability": 0.8, "drivers": [{"sensor": "sensor_11", "evidence": "+3.2σ"}],
              "recommended_action": "inspect", "rationale": "sensor_11 rose"}
    tries = [{"settings": {}, "problems": [] if first_ok else ["the text repeats itself"], "content": ""}]
    if not first_ok:
        tries.append({"settings": {}, "problems": [] if final_ok else ["the text repeats itself"],
                      "content": ""})
    step = LLMStep(status=OK if final_ok else REJECTED, template="manufacturing.failure_explanation",
                   template_version=3, language="en", tries=tries, parsed=answer)
    step.value = mfg_llm.explanation_valid(answer) if final_ok else None
    return step


def test_evaluator_reports_first_answers_let_through_and_model_calls_per_engine(monkeypatch):
    outcomes = iter([(True, True), (False, True), (False, False), (True, True)])
    monkeypatch.setattr(evaluation, "UNITS", {81: 150, 85: 170, 86: 250, 91: 120})
    monkeypatch.setattr(evaluation, "labelled_item", _item)
    def fake_step(**kw):
        first_ok, final_ok = next(outcomes)
        return _step(first_ok=first_ok, final_ok=final_ok)

    monkeypatch.setattr(mfg_llm, "explanation_step", fake_step)
    out = evaluation.prompt_evaluate(template="failure_explanation", version=3, language="en")
    figures = out["metrics"]
    assert figures["first_try_accepted"] == 0.5  # engines 1 and 4
    assert figures["tries_per_item"] == 1.5  # 1 + 2 + 2 + 1 calls
    assert figures["gate_pass_rate"] == 0.75 and figures["grounded"] == 0.75
