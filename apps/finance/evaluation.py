"""Measured prompt quality of the finance templates (the ``prompt_evaluate`` hook of ``manage.py
evaluate_prompts``, see :class:`core.registry.SuiteApp`).

The labelled sets live in ``apps/finance/evaluation_data/`` (made by
:func:`apps.finance.reports.evaluation_sets_build` from the German Credit rows, seed 12):

- ``extraction_<lang>.jsonl``: synthetic reports that state some of an application's fields, each in
  one of several phrasings, and omit the others (a few state nothing at all). Measured: per-field
  accuracy on the stated fields, ``precision`` (kept values that are right), ``recall`` (stated fields
  extracted right), ``omitted_left_missing`` (omitted fields not invented) and their ``f1`` (primary).
- ``judgment_<lang>.jsonl``: 80 held-out applications (40 that defaulted) stated in full. Measured: the
  ``auc`` (primary) of the judgment's expected risk level against default, the share of answers, how
  many distinct levels it gave.

Every item goes through the real model service (``core.llm.llm_step`` with the version asked for), a
few at a time. Version 1 of the extraction has no quotes: its values are measured as v1 stored them;
later versions are measured as the assessment keeps them (only with evidence).
"""
from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from apps.finance import metrics, prompting
from apps.finance.fields import MODEL_INPUTS

DATA_DIR = Path(__file__).resolve().parent / "evaluation_data"
CONCURRENCY = 4
TEMPLATES = ("field_extraction", "risk_judgment")


def labelled_set(kind: str, language: str) -> list[dict]:
    """The items of ``<kind>_<language>.jsonl``; LookupError when there is none."""
    path = DATA_DIR / f"{kind}_{language}.jsonl"
    if not path.is_file():
        raise LookupError(f"no labelled set {path.name}")
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _map(fn, items: list, concurrency: int) -> list:
    from django.db import connections

    def run(item):
        try:
            return fn(item)
        finally:
            connections.close_all()

    if concurrency <= 1:
        return [fn(item) for item in items]
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        return list(pool.map(run, items))


def prompt_evaluate(*, template: str, version: int, language: str, limit: int | None = None,
                    concurrency: int = CONCURRENCY) -> dict:
    """Run finance.``template`` v``version`` in ``language`` over its labelled set (the first ``limit``
    items); ``{"n", "model", "metrics", "primary", "higher_is_better", "failures"}``."""
    if template not in TEMPLATES:
        raise LookupError(f"finance has no labelled set for {template!r}")
    if template == "field_extraction":
        return extraction_evaluate(version=version, language=language, limit=limit, concurrency=concurrency)
    return judgment_evaluate(version=version, language=language, limit=limit, concurrency=concurrency)


# --- extraction ------------------------------------------------------------------------------------
def extraction_evaluate(*, version: int, language: str, limit: int | None = None,
                        concurrency: int = CONCURRENCY) -> dict:
    from apps.finance.services.llm import extraction_step

    items = labelled_set("extraction", language)[:limit]
    steps = _map(lambda it: extraction_step(report=it["report"], language=language, version=version),
                 items, concurrency)
    outcomes = [extraction_outcome(item, step) for item, step in zip(items, steps, strict=True)]
    out = extraction_metrics(items, outcomes)
    out["model"] = next((s.model for s in steps if s.model), "")
    return out


def extraction_outcome(item: dict, step) -> dict:
    """What a step kept for one item: ``{"kept": {field: value}, "problem": str | None}``."""
    if step.status != "ok" and step.parsed is None:
        return {"kept": {}, "problem": f"{step.status}: {'; '.join(step.problems)[:300]}"}
    parsed = step.parsed if isinstance(step.parsed, dict) else {}
    quoted = any(isinstance(v, dict) for v in parsed.values())
    if quoted or step.template_version != 1:
        applicant, _kept, _rejected, _warnings = prompting.extraction_with_evidence(parsed, item["report"])
    else:
        applicant, _warnings = prompting.extraction_result_to_applicant(parsed)
    problem = None if step.status == "ok" else f"{step.status}: {'; '.join(step.problems)[:300]}"
    return {"kept": {k: v for k, v in applicant.items() if v is not None and k in MODEL_INPUTS},
            "problem": problem}


def _same(truth, value) -> bool:
    if isinstance(truth, int | float) and isinstance(value, int | float):
        return abs(float(truth) - float(value)) < 1e-6
    return truth == value


def extraction_metrics(items: list[dict], outcomes: list[dict]) -> dict:
    """Per-field accuracy, precision, recall, omitted fields left missing, F1 (Django-free)."""
    stated = correct = kept = kept_right = omitted = omitted_missing = 0
    per_field: dict[str, list[int]] = {name: [0, 0] for name in MODEL_INPUTS}
    failures = []
    for item, outcome in zip(items, outcomes, strict=True):
        truth, got = item["stated"], outcome["kept"]
        invented = sorted(n for n in item["omitted"] if n in got)
        wrong = sorted(n for n in got if n in truth and not _same(truth[n], got[n]))
        for name, value in truth.items():
            stated += 1
            per_field[name][1] += 1
            if name in got and _same(value, got[name]):
                correct += 1
                per_field[name][0] += 1
        kept += len(got)
        kept_right += sum(1 for n, v in got.items() if n in truth and _same(truth[n], v))
        omitted += len(item["omitted"])
        omitted_missing += len(item["omitted"]) - len(invented)
        if outcome["problem"] or invented or wrong:
            failures.append({"item": item["id"], "problem": "; ".join(filter(None, [
                outcome["problem"], invented and f"invented {', '.join(invented)}",
                wrong and f"wrong {', '.join(wrong)}"]))[:500]})
    precision = kept_right / kept if kept else 1.0
    recall = correct / stated if stated else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    figures = {"precision": precision, "recall": recall, "f1": f1,
               "omitted_left_missing": omitted_missing / omitted if omitted else 1.0,
               "fields_stated": float(stated), "fields_kept": float(kept),
               "fields_invented": float(omitted - omitted_missing),
               "answered": sum(1 for o in outcomes if not o["problem"]) / len(outcomes) if outcomes else 0.0}
    for name, (right, total) in per_field.items():
        if total:
            figures[f"accuracy.{name}"] = right / total
    return {"n": len(items), "metrics": {k: round(v, 4) for k, v in figures.items()}, "primary": "f1",
            "higher_is_better": True, "failures": failures}


# --- judgment --------------------------------------------------------------------------------------
def judgment_run(*, items: list[dict], language: str, version: int | None = None,
                 concurrency: int = CONCURRENCY) -> list[dict]:
    """The judgment over labelled items: ``{"id", "bad", "score", "level", "label_probs", "status",
    "problems", "model", "prompt", "tries", "first_try_ok"}`` each (``score`` None when no usable
    answer; ``tries``: 2 when the first answer was refused and asked for again)."""
    from apps.finance.services.llm import judgment_score, judgment_step

    def one(item):
        block, step = judgment_step(applicant=item.get("applicant") or {}, report=item.get("report") or "",
                                    language=language, version=version)
        return {"id": item["id"], "bad": item["creditability"] == "bad",
                "score": judgment_score(block) if step.ok else None, "level": block.get("risk_level"),
                "label_probs": block.get("label_probs") or {}, "status": step.status,
                "problems": list(step.problems), "model": step.model, "prompt": step.prompt_label,
                "tries": len(step.tries), "first_try_ok": step.first_try_accepted}

    return _map(one, items, concurrency)


def judgment_metrics(runs: list[dict]) -> dict:
    """AUC of the judgment's score against default, its answer share and spread, and what it cost: the
    share of first answers the gate let through and model calls per item (Django-free)."""
    import numpy as np

    answered = [r for r in runs if r["score"] is not None]
    y = np.array([1 if r["bad"] else 0 for r in answered])
    scores = np.array([r["score"] for r in answered], dtype=float)
    auc = metrics.auc(y, scores) if len(answered) else None
    levels = {r["level"] for r in answered}
    figures = {"auc": 0.5 if auc is None else auc, "answered": len(answered) / len(runs) if runs else 0.0,
               "distinct_levels": float(len(levels)),
               "distinct_scores": float(len(set(np.round(scores, 4)))) if len(answered) else 0.0,
               "first_try_accepted": (sum(1 for r in runs if r.get("first_try_ok")) / len(runs)
                                      if runs else 0.0),
               "tries_per_item": sum(r.get("tries", 1) for r in runs) / len(runs) if runs else 0.0}
    for level in (1, 2, 3):
        figures[f"level_{level}_share"] = (sum(1 for r in answered if r["level"] == level) / len(answered)
                                           if answered else 0.0)
    failures = [{"item": r["id"], "problem": f"{r['status']}: {'; '.join(r['problems'])[:300]}"}
                for r in runs if r["score"] is None]
    return {"n": len(runs), "metrics": {k: round(v, 4) for k, v in figures.items()}, "primary": "auc",
            "higher_is_better": True, "failures": failures}


def judgment_evaluate(*, version: int, language: str, limit: int | None = None,
                      concurrency: int = CONCURRENCY) -> dict:
    items = labelled_set("judgment", language)[:limit]
    runs = judgment_run(items=items, language=language, version=version, concurrency=concurrency)
    out = judgment_metrics(runs)
    out["model"] = next((r["model"] for r in runs if r["model"]), "")
    return out
