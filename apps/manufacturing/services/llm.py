"""The language model's explanation of a prediction, through core's one LLM step.

The model sees the machine's label, a compact per-sensor summary and the calibrated numbers (no
personal data); it answers a small constrained JSON object (its own probability, horizon, drivers,
recommended action, rationale). What that answer may change is decided in
:mod:`apps.manufacturing.decisions`: it is shown beside the calibrated numbers, never used as them.
"""
from __future__ import annotations

from typing import Any

import pandas as pd
from django.conf import settings

from apps.manufacturing import failure_model as fm
from apps.manufacturing import prompting
from apps.manufacturing.models import Machine, Prediction
from core.llm import LLMOutputInvalid, LLMStep, llm_step

PROMPT_NAME = prompting.PROMPT_NAME
#: The LLM answers a small JSON object; keep generation short on CPU.
LLM_MAX_TOKENS = 200


def explanation_variables(job: Prediction, machine: Machine, series: pd.DataFrame, out: dict,
                          model: fm.FailureModel) -> dict[str, str]:
    """The prompt's variables (CPU work, before the job is handed on): the machine's label, a compact
    per-sensor summary of its series and the calibrated numbers."""
    sensors = [c for c in model.sensors if c in series.columns] or None
    summary = prompting.summarize_series(series, sensors=sensors, units=model.units)
    return prompting.explanation_variables(machine.machine_id, summary, out, lang=job.language)


def llm_explain(job: Prediction, variables: dict[str, str] | None) -> tuple[dict, LLMStep | None]:
    """Ask the language model for its judgement and explanation (the core LLM step, constrained JSON).

    Returns (llm block for the result, the step). A transient model-service error retries the job,
    except on the job's last attempt, where the calibrated result is kept without the explanation.
    """
    if not settings.LLM_ENABLED or variables is None:
        return {"status": "disabled",
                "message": "the language model step is switched off (LLM_ENABLED=false)"}, None
    step = llm_step(template=PROMPT_NAME, language=job.language, max_tokens=LLM_MAX_TOKENS,
                    variables=variables, validate=_explanation_valid,
                    final_attempt=job.attempts >= settings.JOB_MAX_ATTEMPTS)
    block = step.meta()
    if step.ok:
        block["answer"] = step.value
    else:
        block["message"] = "; ".join(step.problems)
    return block, step


def _explanation_valid(parsed: Any) -> dict:
    if not isinstance(parsed, dict):
        raise LLMOutputInvalid(f"expected a JSON object, got {type(parsed).__name__}")
    return parsed
