"""The language model's explanation of a prediction, through core's one LLM step.

The model sees the machine's label, a compact per-sensor summary and the calibrated numbers (no
personal data); it answers a small constrained JSON object (its own probability, drivers, recommended
action, rationale). Before anyone sees it, :func:`apps.manufacturing.decisions.explanation_gate`
checks it against the facts of the prompt (sensor names that exist, numbers that match within
rounding, no loops or debris); a rejected answer is asked for once more with other settings (core's
policy) and withheld if it fails again. What the answer may change is decided in
:mod:`apps.manufacturing.decisions`: it is shown beside the calibrated numbers, never used as them.

When the step cannot run (switched off, the model service refusing the request or down past the job's
retries), the llm block says so (``status`` ``disabled``/``unavailable``/``rejected`` and ``reason``)
and the calibrated probability, remaining life and drivers are stored all the same.
"""
from __future__ import annotations

from typing import Any

import pandas as pd
from django.conf import settings

from apps.manufacturing import cmapss, decisions, prompting
from apps.manufacturing import failure_model as fm
from apps.manufacturing.models import Machine, Prediction
from core.llm import LLMOutputInvalid, LLMStep, llm_step

PROMPT_NAME = prompting.PROMPT_NAME
#: The LLM answers a small JSON object; keep generation short on CPU.
LLM_MAX_TOKENS = 200
#: every known sensor's symbol (T24, Ps30...): a name in an explanation is one of these or sensor_N
SYMBOLS = {name: info.symbol for name, info in cmapss.CMAPSS_SENSORS.items()}


def explanation_summary(series: pd.DataFrame, model: fm.FailureModel) -> dict[str, Any]:
    """The compact per-sensor summary the prompt and the gate share (CPU work, JSON-safe)."""
    sensors = [c for c in model.sensors if c in series.columns] or None
    summary = prompting.summarize_series(series, sensors=sensors, units=model.units)
    for info in summary["sensors"].values():
        info["slope_per_step"] = float(info["slope_per_step"])
    return summary


def explanation_prompt_version(language: str) -> int | None:
    """The active version of the explanation prompt in ``language`` (None: no template seeded). The
    variables are built for it (``v<N>.meta.json``'s ``sensor_listing``) and the step renders it."""
    from core.selectors import prompt_template_get

    try:
        return prompt_template_get(name=PROMPT_NAME, language=language).version
    except LookupError:
        return None


def explanation_variables(job: Prediction, machine: Machine, series: pd.DataFrame, out: dict,
                          model: fm.FailureModel, version: int | None = None) -> dict[str, str]:
    """The prompt's variables (CPU work, before the job is handed on): the machine's label, a compact
    per-sensor summary of its series and the calibrated numbers, for prompt v``version``."""
    summary = explanation_summary(series, model)
    return prompting.explanation_variables(machine.machine_id, summary, out, lang=job.language,
                                           version=version)


def explanation_valid(parsed: Any) -> dict:
    """The answer as the app keeps it: v1 as it came; v2 drivers (``{sensor, evidence}``) written as
    ``"sensor_N: evidence"`` strings, the sensors kept in ``driver_sensors`` (LLMOutputInvalid when the
    answer has not the shape)."""
    if not isinstance(parsed, dict):
        raise LLMOutputInvalid(f"expected a JSON object, got {type(parsed).__name__}")
    drivers = parsed.get("drivers")
    if isinstance(drivers, list) and drivers and all(isinstance(d, dict) for d in drivers):
        out = {k: v for k, v in parsed.items() if k != "drivers"}
        out["driver_sensors"] = [str(d.get("sensor") or "") for d in drivers]
        out["drivers"] = [f"{d.get('sensor')}: {str(d.get('evidence') or '').strip()}" for d in drivers]
        return out
    return parsed


def _narrow(summary: dict[str, Any], prediction: dict | None = None, version: int | None = None):
    """The schema with the sensor enum cut to the sensors in the prompt: v2 every scored sensor, a version
    with a ``sensor_listing`` (v3) the listed ones (:func:`prompting.listed_sensors`), or every scored
    sensor when nothing is listed (the full enum let the model name sensors the data does not have);
    v1: unchanged. ``drivers`` then holds at most as many items as the enum has sensors: with one or two
    sensors listed the small model filled the array up to ``maxItems`` with the same sensor again, which
    the gate refuses (12 of a 100-engine fleet had no explanation for that alone, after both tries)."""
    listing = prompting.sensor_listing(version)
    scored = list((summary or {}).get("sensors") or {})
    if listing is not None:
        scored = prompting.listed_sensors(summary or {}, prediction or {}, listing) or scored

    def narrow(schema: dict) -> dict:
        try:
            prop = schema["properties"]["drivers"]["items"]["properties"]["sensor"]
        except (KeyError, TypeError):
            return schema
        if "enum" in prop and scored:
            prop["enum"] = [s for s in prop["enum"] if s in scored] or prop["enum"]
            drivers = schema["properties"]["drivers"]
            if isinstance(drivers.get("maxItems"), int):
                drivers["maxItems"] = max(int(drivers.get("minItems") or 0),
                                          min(drivers["maxItems"], len(prop["enum"])))
        return schema

    return narrow


def explanation_answer(value: dict) -> dict:
    """A validated explanation (:func:`explanation_valid`) with its drivers as ``{sensor, evidence}`` objects
    again, as the gate and the evaluations read them."""
    if "driver_sensors" not in value:
        return value
    return {**value, "drivers": [{"sensor": s, "evidence": d.split(": ", 1)[-1]} for s, d in
                                 zip(value["driver_sensors"], value["drivers"], strict=False)]}


def explanation_step(*, variables: dict[str, str], prediction: dict, summary: dict | None, language: str,
                     final_attempt: bool = False, version: int | None = None) -> LLMStep:
    """The explanation's gated language-model step. ``version``: the prompt version the ``variables``
    were built for (None: the active one, variables and enum as v2 builds them)."""
    def gate(value: dict) -> list[str]:
        if summary is None:
            return []
        return decisions.explanation_gate(explanation_answer(value), prediction=prediction, summary=summary,
                                          symbols=SYMBOLS, machine=variables.get("machine", ""))

    return llm_step(template=PROMPT_NAME, language=language, max_tokens=LLM_MAX_TOKENS, variables=variables,
                    validate=explanation_valid, gate=gate, final_attempt=final_attempt, version=version,
                    narrow_schema=_narrow(summary or {}, prediction, version))


def llm_explain(job: Prediction, variables: dict[str, str] | None, *, prediction: dict | None = None,
                summary: dict | None = None, version: int | None = None) -> tuple[dict, LLMStep | None]:
    """Ask the language model for its judgement and explanation (the core LLM step, constrained JSON,
    gated against ``prediction`` and the sensor ``summary``).

    ``version`` is the prompt version the ``variables`` were built for; when another version is active
    by now (or it is unknown), the variables are built again from ``summary`` for the active one.

    Returns (llm block for the result, the step). A transient model-service error retries the job,
    except on the job's last attempt, where the calibrated result is kept without the explanation.
    """
    if not settings.LLM_ENABLED or variables is None:
        reason = "the language model step is switched off (LLM_ENABLED=false)"
        return {"status": "disabled", "message": reason, "reason": reason}, None
    active = explanation_prompt_version(job.language)
    if active is not None and version != active and summary is not None:
        variables = prompting.explanation_variables(variables.get("machine", ""), summary, prediction or {},
                                                    lang=job.language, version=active)
        version = active
    step = explanation_step(variables=variables, prediction=prediction or {}, summary=summary,
                            language=job.language, final_attempt=job.attempts >= settings.JOB_MAX_ATTEMPTS,
                            version=version)
    block = step.meta()
    if step.ok:
        block["answer"] = step.value
    else:
        block["message"] = block["reason"] = "; ".join(step.problems)
    return block, step
