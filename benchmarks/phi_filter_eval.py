"""Recall and false-positive rate of the medical free-text PHI filter on the labelled sets.

    .venv/bin/python benchmarks/phi_filter_eval.py [--verbose]

``apps/medical/tests/data/phi_eval/dev.jsonl`` was written while the rules were built;
``holdout.jsonl`` was written after they were fixed and never used to change them. The figures are
recorded in docs/medical_pipeline.md (Privacy).
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "platform"))

from apps.medical.deidentify.evaluation import EvalResult, evaluate, load_records  # noqa: E402

DATA = ROOT / "apps" / "medical" / "tests" / "data" / "phi_eval"


def main() -> None:
    verbose = "--verbose" in sys.argv
    started = time.perf_counter()
    from apps.medical.deidentify import redact

    redact("warm-up")
    print(f"presidio engine ready in {time.perf_counter() - started:.1f} s")
    total = EvalResult()
    for name in ("dev", "holdout"):
        path = DATA / f"{name}.jsonl"
        if not path.exists():
            continue
        records = load_records(path)
        t0 = time.perf_counter()
        result = evaluate(records)
        ms = (time.perf_counter() - t0) * 1000 / max(len(records), 1)
        print(result.line(f"{name:8s} ({len(records)} texts, {ms:.1f} ms/text)"))
        if verbose:
            for m in result.missed:
                print("   missed", m)
            for d in result.damaged_phrases:
                print("   damaged", d)
        for k in ("identifiers", "caught", "phrases", "damaged"):
            setattr(total, k, getattr(total, k) + getattr(result, k))
    print(total.line("all     "))


if __name__ == "__main__":
    main()
