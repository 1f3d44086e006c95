"""Manufacturing figures: engine-grouped cross-validation on C-MAPSS FD001, training time and the
ingestion rate of a one-million-reading long-form CSV.

``benchmarks/manufacturing_bench.py`` imports :func:`cv_figures`, :func:`training_figures` and
:func:`ingestion_rate`; run this file directly to print all of them as JSON::

    PYTHONPATH=. .venv/bin/python benchmarks/manufacturing_cv.py [--skip-cv] [--readings N]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from apps.manufacturing import cmapss, failure_model  # noqa: E402
from apps.manufacturing.ingest import ingest_path  # noqa: E402


def make_long_csv(path: str | Path, *, readings: int = 1_000_000, machines: int = 100, sensors: int = 10,
                  seed: int = 0) -> dict[str, int]:
    """Write a synthetic long-form CSV (``machine_id,timestamp,sensor,value``) with ``readings`` rows.

    Each machine reports every sensor once a minute; values are a slow drift plus noise.
    """
    rng = np.random.default_rng(seed)
    steps = max(readings // (machines * sensors), 1)
    n = machines * steps * sensors
    m = np.repeat(np.arange(machines), steps * sensors)
    step = np.tile(np.repeat(np.arange(steps), sensors), machines)
    s = np.tile(np.arange(sensors), machines * steps)
    base = 100.0 + 10.0 * s + 0.002 * step * (1 + (m % 5))
    value = np.round(base + rng.normal(0, 0.5, n), 3)
    ts = (np.datetime64("2025-01-01T00:00:00") + step.astype("timedelta64[m]")).astype(str)
    frame = pd.DataFrame({
        "machine_id": np.char.add("M", m.astype(str)),
        "timestamp": ts,
        "sensor": np.char.add("s", s.astype(str)),
        "value": value,
    })
    frame.to_csv(path, index=False)
    return {"readings": int(n), "machines": machines, "sensors": sensors, "steps": steps}


def ingestion_rate(path: str | Path | None = None, *, readings: int = 1_000_000,
                   repeats: int = 1) -> dict[str, Any]:
    """Time :func:`ingest_path` on a long-form CSV (generated when ``path`` is None).

    Returns readings, bytes, seconds (best of ``repeats``) and readings per second.
    """
    tmp = None
    if path is None:
        fd, tmp = tempfile.mkstemp(suffix=".csv", prefix="mfg_ingest_")
        os.close(fd)
        info = make_long_csv(tmp, readings=readings)
        path = tmp
    else:
        info = {}
    try:
        best = float("inf")
        result = None
        for _ in range(max(repeats, 1)):
            t0 = time.perf_counter()
            result = ingest_path(str(path))
            best = min(best, time.perf_counter() - t0)
        assert result is not None
        return {
            "file_bytes": Path(path).stat().st_size,
            "readings": result.readings,
            "readings_kept": result.readings_kept,
            "machines": len(result.series),
            "sensors": len(result.sensors),
            "seconds": round(best, 3),
            "readings_per_s": round(result.readings / best),
            "errors": len(result.errors),
            "warnings": len(result.warnings),
            **{f"generated_{k}": v for k, v in info.items()},
        }
    finally:
        if tmp:
            os.unlink(tmp)


def training_figures(seed: int = 0) -> dict[str, Any]:
    """Train on all of FD001 (as at setup); returns seconds, rows and the model's metadata metrics."""
    df = cmapss.load_fd001_labelled()
    t0 = time.perf_counter()
    model = failure_model.train_failure_model(df, horizon=30, seed=seed)
    seconds = time.perf_counter() - t0
    blob = failure_model.dump(model)
    return {"seconds": round(seconds, 2), "rows": len(df), "machines": int(df["machine_id"].nunique()),
            "model_bytes": len(blob), "metrics": model.metadata["metrics"]}


def cv_figures(n_splits: int = 5, seed: int = 0, **kwargs: Any) -> dict[str, Any]:
    """Engine-grouped cross-validation on FD001 training data (see :func:`failure_model.cross_validate`)."""
    df = cmapss.load_fd001_labelled()
    return failure_model.cross_validate(df, n_splits=n_splits, seed=seed, **kwargs)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-cv", action="store_true")
    parser.add_argument("--skip-ingest", action="store_true")
    parser.add_argument("--readings", type=int, default=1_000_000)
    args = parser.parse_args(argv)
    out: dict[str, Any] = {}
    if not args.skip_ingest:
        out["ingestion"] = ingestion_rate(readings=args.readings)
    out["training"] = training_figures()
    if not args.skip_cv:
        out["cross_validation"] = cv_figures()
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
