"""Measured prompt quality of the failure explanation (the ``prompt_evaluate`` hook of ``manage.py
evaluate_prompts``, see :class:`core.registry.SuiteApp`).

The labelled set (:data:`UNITS`) is a list kept here of C-MAPSS FD001 engines, each cut at a fixed
cycle (:func:`apps.manufacturing.cmapss.load_fd001_labelled`: the training file shipped with the repo
or the shared copy). The labels come from a failure model trained, as the app's tests train it, on
engines 1-30 (horizon 30 cycles, seed 0): for each held-out engine, its calibrated probability,
remaining life and top drivers (sensor, deviation, trend), i.e. exactly what the explanation must
name. Each engine goes through the real model service with
:func:`apps.manufacturing.services.llm.explanation_step` (the version asked for, the gate and its one
retry, as a prediction job runs it). Measured:

- ``grounded`` (primary): explanations that pass the gate (every sensor exists, every number matches
  the features or the prediction, no loops or debris) and name the calibrated top driver;
- ``gate_pass_rate``: explanations that pass the gate (would be shown);
- ``top_driver_named``: answers (last try) whose drivers include the calibrated top driver;
- ``drivers_recall``: share of the calibrated top three drivers the answers name;
- ``numbers_right``: answers (last try) with no sensor or number problem.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Any

#: engine -> cycles kept (held out: the evaluation model is trained on engines 1-30)
UNITS = {81: 150, 85: 170, 86: 250, 91: 120, 92: 300, 93: 140, 95: 150, 100: 180}
TRAIN_ENGINES = range(1, 31)
TEMPLATES = ("failure_explanation",)


@lru_cache(maxsize=1)
def evaluation_model():
    """The failure model the labels come from (trained once per process, one thread, seconds)."""
    from threadpoolctl import threadpool_limits

    from apps.manufacturing import cmapss
    from apps.manufacturing import failure_model as fm

    frame = cmapss.load_fd001_labelled()
    train = frame[frame["machine_id"].astype(int).isin(TRAIN_ENGINES)]
    with threadpool_limits(limits=1):
        model = fm.train_failure_model(train.drop(columns=["rul_capped"]), horizon=30, seed=0)
    return model, frame


def labelled_item(unit: int, language: str, version: int | None = None,
                  cycles: int | None = None) -> dict[str, Any]:
    """One engine's prompt variables (for prompt v``version``), prediction, sensor summary and labels
    (its top drivers), cut at ``cycles`` (default: the labelled set's cut, :data:`UNITS`)."""
    from apps.manufacturing import prompting
    from apps.manufacturing.services.llm import explanation_summary
    from apps.manufacturing.services.predictions import _json_safe

    model, frame = evaluation_model()
    g = frame[frame["machine_id"] == str(unit)].sort_values("cycle").head(cycles or UNITS[unit])
    series = g.drop(columns=["machine_id", "rul", "rul_capped"]).set_index("cycle")
    out = _json_safe(model.predict(series, threads=1))
    summary = _json_safe(explanation_summary(series, model))
    variables = prompting.explanation_variables(f"FD001-{unit:03d}", summary, out, lang=language,
                                                version=version)
    drivers = [d["sensor"] for d in out.get("drivers") or [] if d.get("sensor")]
    return {"unit": unit, "variables": variables, "prediction": out, "summary": summary,
            "top_drivers": list(dict.fromkeys(drivers))[:3]}


def prompt_evaluate(*, template: str, version: int, language: str, limit: int | None = None) -> dict:
    """Run manufacturing.``template`` v``version`` in ``language`` over the labelled engines (the first
    ``limit``); ``{"n", "model", "metrics", "primary", "higher_is_better", "failures"}``."""
    from apps.manufacturing import decisions
    from apps.manufacturing.services.llm import (
        SYMBOLS,
        explanation_answer,
        explanation_step,
        explanation_valid,
    )
    from core.quality import fact_problems

    if template not in TEMPLATES:
        raise LookupError(f"manufacturing has no labelled set for {template!r}")
    units = list(UNITS)[:limit]
    grounded = passed = top = answered = numbers_ok = first_ok = tries = 0
    recall: list[float] = []
    failures: list[dict] = []
    model = ""
    for unit in units:
        item = labelled_item(unit, language, version)
        step = explanation_step(variables=item["variables"], prediction=item["prediction"],
                                summary=item["summary"], language=language, version=version)
        model = model or step.model
        tries += len(step.tries) or 1
        first_ok += step.first_try_accepted
        try:
            value = explanation_valid(step.parsed)
        except ValueError:
            value = None
        named: list[str] = []
        if isinstance(value, dict):
            answered += 1
            answer = explanation_answer(value)
            named = decisions.explanation_drivers(answer, SYMBOLS)
            facts = decisions.explanation_facts(item["prediction"], item["summary"], SYMBOLS,
                                                item["variables"]["machine"])
            texts = [t for p, t in decisions.explanation_texts(answer) if p != "recommended_action"]
            numbers_ok += not any(fact_problems(t, facts=facts) for t in texts)
        labels = item["top_drivers"]
        has_top = bool(labels) and labels[0] in named
        top += has_top
        recall.append(len(set(labels) & set(named)) / len(labels) if labels else 0.0)
        passed += step.ok
        grounded += step.ok and has_top
        if not (step.ok and has_top):
            why = "; ".join(step.problems) if not step.ok else \
                f"names {named or 'no driver'}, the calibrated top driver is {labels[0] if labels else '?'}"
            failures.append({"item": f"FD001 engine {unit}", "problem": why[:500]})
    n = len(units)
    metrics = {"grounded": grounded / n if n else 0.0, "gate_pass_rate": passed / n if n else 0.0,
               "top_driver_named": top / n if n else 0.0,
               "drivers_recall": sum(recall) / n if n else 0.0,
               "numbers_right": numbers_ok / answered if answered else 0.0,
               # what it cost: first answers the gate let through, model calls per engine (2: asked again)
               "first_try_accepted": first_ok / n if n else 0.0, "tries_per_item": tries / n if n else 0.0}
    return {"n": n, "model": model, "metrics": metrics, "primary": "grounded", "higher_is_better": True,
            "failures": failures}
