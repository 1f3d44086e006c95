"""Manufacturing explanation prompt versions on a development set larger than the labelled eight.

The labelled set of ``evaluate_prompts`` (``apps.manufacturing.evaluation.UNITS``) has 8 engines, too
few to tell one engine's difference from noise. This script runs prompt versions over other held-out
FD001 engines (default units 31-70, each cut at a random cycle between half its life and its end, seed
7), with the evaluation's failure model (trained on engines 1-30) and the app's own gated step
(:func:`apps.manufacturing.services.llm.explanation_step`: narrowed schema, gate, one retry), 16 in
flight. It prints per version: engines, first answers the gate let through, model calls, explanations
shown, grounded (shown and naming the calibrated top driver) and wall time.

Needs the model service and a migrated database with the prompts seeded, like ``evaluate_prompts``::

    .venv/bin/python benchmarks/manufacturing_prompt_dev.py --versions 3,4 --language en
"""
from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def engines(first: int, last: int, language: str, version: int, seed: int) -> list[dict]:
    """The development items: prompt variables (for ``version``), prediction, summary, top drivers."""
    from apps.manufacturing import evaluation, prompting
    from apps.manufacturing.services.llm import explanation_summary
    from apps.manufacturing.services.predictions import _json_safe

    model, frame = evaluation.evaluation_model()
    rng = random.Random(seed)
    items = []
    for unit in range(first, last + 1):
        g = frame[frame["machine_id"] == str(unit)].sort_values("cycle")
        g = g.head(rng.randint(max(60, len(g) // 2), len(g)))
        series = g.drop(columns=["machine_id", "rul", "rul_capped"]).set_index("cycle")
        out = _json_safe(model.predict(series, threads=1))
        summary = _json_safe(explanation_summary(series, model))
        drivers = [d["sensor"] for d in out.get("drivers") or [] if d.get("sensor")]
        items.append({"unit": unit, "prediction": out, "summary": summary, "top": drivers[:1],
                      "variables": prompting.explanation_variables(f"FD001-{unit:03d}", summary, out,
                                                                   lang=language, version=version)})
    return items


def run(version: int, language: str, items: list[dict], concurrency: int) -> dict:
    from apps.manufacturing import decisions
    from apps.manufacturing.services.llm import SYMBOLS, explanation_step, explanation_valid

    def one(item):
        return item, explanation_step(variables=item["variables"], prediction=item["prediction"],
                                      summary=item["summary"], language=language, version=version)

    started = time.monotonic()
    with ThreadPoolExecutor(concurrency) as pool:
        done = list(pool.map(one, items))
    wall = time.monotonic() - started
    grounded = 0
    for item, step in done:
        if step.ok and item["top"]:
            value = explanation_valid(step.parsed)
            answer = {**value, "drivers": [{"sensor": s, "evidence": d.split(": ", 1)[-1]} for s, d in
                                           zip(value["driver_sensors"], value["drivers"], strict=False)]} \
                if "driver_sensors" in value else value
            grounded += item["top"][0] in decisions.explanation_drivers(answer, SYMBOLS)
    return {"version": version, "language": language, "engines": len(done),
            "first_try_accepted": sum(bool(s.tries) and not s.tries[0]["problems"] for _, s in done),
            "model_calls": sum(len(s.tries) or 1 for _, s in done), "shown": sum(s.ok for _, s in done),
            "grounded": grounded, "wall_s": round(wall, 1)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--versions", default="3,4")
    parser.add_argument("--language", choices=["en", "zh-hans"], default="en")
    parser.add_argument("--units", default="31-70", help="FD001 engines, first-last (1-30 train the model)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args(argv)
    first, last = (int(x) for x in args.units.split("-"))
    if first <= 30:
        parser.error("engines 1-30 train the evaluation's failure model; start at 31 or later")
    sys.path[:0] = [str(ROOT), str(ROOT / "platform")]
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    for version in (int(v) for v in args.versions.split(",")):
        items = engines(first, last, args.language, version, args.seed)
        print(json.dumps(run(version, args.language, items, args.concurrency)), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
