"""Input series: normalising a machine's frame, its feature matrix, JSON-friendly numbers and times."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from apps.manufacturing.features import FeatureSpec, assemble, normalise, sensor_block

from .errors import ModelError


def _num(x: float) -> float | int:
    return int(x) if float(x).is_integer() else float(x)


def _label(t: Any) -> Any:
    if isinstance(t, pd.Timestamp):
        return t.isoformat()
    if isinstance(t, (np.integer, int)):
        return int(t)
    try:
        f = float(t)
    except (TypeError, ValueError):
        return str(t)
    return int(f) if f.is_integer() else f


def prepare_series(series: pd.DataFrame) -> pd.DataFrame:
    """Normalise an input series: time as a sorted unique index, machine_id dropped, numeric columns."""
    if not isinstance(series, pd.DataFrame):
        raise ModelError("series must be a pandas DataFrame")
    df = series
    if "machine_id" in df.columns:
        if df["machine_id"].nunique() > 1:
            raise ModelError("series holds several machines; use predict_many")
        df = df.drop(columns=["machine_id"])
    for tcol in ("cycle", "timestamp"):
        if tcol in df.columns:
            df = df.set_index(tcol)
            break
    if len(df) == 0:
        raise ModelError("the series is empty")
    df = df[~df.index.duplicated(keep="last")].sort_index()
    return df.apply(pd.to_numeric, errors="coerce")


def _age(frame: pd.DataFrame, spec: FeatureSpec) -> np.ndarray | None:
    if spec.time_axis == "cycle" and pd.api.types.is_numeric_dtype(frame.index.dtype):
        return frame.index.to_numpy(dtype=float)
    return None


def _features(frame: pd.DataFrame, spec: FeatureSpec) -> np.ndarray:
    return assemble(sensor_block(normalise(frame, spec), spec), spec, _age(frame, spec))
