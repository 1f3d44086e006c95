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
    """The development items, as the labelled set builds them (:func:`evaluation.labelled_item`) but cut
    at a random cycle between half the engine's life and its end."""
    from apps.manufacturing import evaluation

    _, frame = evaluation.evaluation_model()
    rng = random.Random(seed)
    items = []
    for unit in range(first, last + 1):
        life = int((frame["machine_id"] == str(unit)).sum())
        items.append(evaluation.labelled_item(unit, language, version,
                                              cycles=rng.randint(max(60, life // 2), life)))
    return items


def run(version: int, language: str, items: list[dict], concurrency: int) -> dict:
    from apps.manufacturing import decisions
    from apps.manufacturing.services.llm import (
        SYMBOLS,
        explanation_answer,
        explanation_step,
        explanation_valid,
    )

    def one(item):
        return item, explanation_step(variables=item["variables"], prediction=item["prediction"],
                                      summary=item["summary"], language=language, version=version)

    started = time.monotonic()
    with ThreadPoolExecutor(concurrency) as pool:
        done = list(pool.map(one, items))
    wall = time.monotonic() - started

    def grounded(item, step) -> bool:  # shown, and naming the calibrated top driver
        if not (step.ok and item["top_drivers"]):
            return False
        named = decisions.explanation_drivers(explanation_answer(explanation_valid(step.parsed)), SYMBOLS)
        return item["top_drivers"][0] in named

    return {"version": version, "language": language, "engines": len(done),
            "first_try_accepted": sum(s.first_try_accepted for _, s in done),
            "model_calls": sum(len(s.tries) or 1 for _, s in done), "shown": sum(s.ok for _, s in done),
            "grounded": sum(grounded(i, s) for i, s in done), "wall_s": round(wall, 1)}


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
