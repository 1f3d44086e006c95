"""Validated model inputs: applicant dicts to a model-input frame (scoring), a labelled training frame
to arrays (training), and the training data's fingerprint."""
from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from apps.finance.fields import (
    FIELDS_BY_NAME,
    LABEL_FIELD,
    MODEL_INPUTS,
    PROTECTED_FIELDS,
    Field,
    normalise_category,
)

from .errors import ScorecardInputError, TrainingDataError

MIN_TRAINING_ROWS = 50


# --------------------------------------------------------------------------------------------------
# Input coercion
# --------------------------------------------------------------------------------------------------
def _coerce(f: Field, value, where: str):
    """A clean value of field ``f`` (float or canonical category) or None; raises ScorecardInputError."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, str) and not value.strip():
        return None
    if f.kind == "categorical":
        canon = normalise_category(f.name, value) if isinstance(value, str) else None
        if canon is None:
            raise ScorecardInputError(f"{where}, field '{f.name}': {value!r} is not one of the allowed "
                                      f"values: {', '.join(repr(c) for c in f.categories)}")
        return canon
    if isinstance(value, bool):
        raise ScorecardInputError(f"{where}, field '{f.name}': expected a number, got {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ScorecardInputError(f"{where}, field '{f.name}': expected a number, got {value!r}")
    if not math.isfinite(number):
        raise ScorecardInputError(f"{where}, field '{f.name}': expected a finite number, got {value!r}")
    low_ok = f.minimum is None or (number > f.minimum if f.exclusive_minimum else number >= f.minimum)
    if not low_ok or (f.maximum is not None and number > f.maximum):
        raise ScorecardInputError(f"{where}, field '{f.name}': {value!r} is outside the allowed range "
                                  f"{_range_text(f)}")
    return number


def _range_text(f: Field) -> str:
    low = f"> {f.minimum:g}" if f.exclusive_minimum else f">= {f.minimum:g}"
    return f"({low} and <= {f.maximum:g})"


def applicants_to_frame(applicants: Sequence[dict]) -> tuple[pd.DataFrame, list[list[str]]]:
    """The model-input frame of applicant dicts and each row's missing model inputs.

    Numbers become floats (NaN when missing), categories their canonical spelling (None when
    missing). Keys that are not model inputs (protected attributes, ``application_id`` ...) are
    ignored. Raises :class:`ScorecardInputError` naming the applicant index and field.
    """
    columns: dict[str, list] = {name: [] for name in MODEL_INPUTS}
    missing: list[list[str]] = []
    text_cache: dict[tuple[str, str], object] = {}
    for i, applicant in enumerate(applicants):
        if not isinstance(applicant, dict):
            raise ScorecardInputError(f"applicant {i}: expected a dict of fields, "
                                      f"got {type(applicant).__name__}")
        row_missing = []
        for name in MODEL_INPUTS:
            raw = applicant.get(name)
            if isinstance(raw, str):  # repeated texts (categories) are checked once per call
                key = (name, raw)
                if key not in text_cache:
                    text_cache[key] = _coerce(FIELDS_BY_NAME[name], raw, f"applicant {i}")
                value = text_cache[key]
            else:
                value = _coerce(FIELDS_BY_NAME[name], raw, f"applicant {i}")
            if value is None:
                row_missing.append(name)
            columns[name].append(value)
        missing.append(row_missing)
    frame = pd.DataFrame({
        name: (pd.array(col, dtype="float64") if FIELDS_BY_NAME[name].kind == "numeric"
               else pd.Series(col, dtype=object))
        for name, col in columns.items()
    })
    for name in MODEL_INPUTS:
        if FIELDS_BY_NAME[name].kind == "numeric":
            frame[name] = frame[name].astype(float)
    return frame, missing


def _training_arrays(df: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray, pd.DataFrame]:
    """(model-input frame, labels 1=bad, protected-attribute frame) of a labelled training frame."""
    if not isinstance(df, pd.DataFrame):
        raise TrainingDataError(f"training data must be a pandas DataFrame, got {type(df).__name__}")
    absent = [c for c in (*MODEL_INPUTS, LABEL_FIELD) if c not in df.columns]
    if absent:
        raise TrainingDataError(f"training data lacks required column(s): {', '.join(absent)}")
    df = df.reset_index(drop=True)
    labels = df[LABEL_FIELD].astype(str).str.strip().str.lower()
    bad_label = ~labels.isin(["good", "bad"])
    if bad_label.any():
        i = int(np.flatnonzero(bad_label.to_numpy())[0])
        raise TrainingDataError(f"row {i + 2}, column '{LABEL_FIELD}': {df[LABEL_FIELD].iloc[i]!r} is not "
                                "'good' or 'bad'")
    y = (labels == "bad").to_numpy(dtype=int)
    X = pd.DataFrame(index=df.index)
    for name in MODEL_INPUTS:
        f = FIELDS_BY_NAME[name]
        col = df[name]
        if f.kind == "categorical":
            mapping = {v: (normalise_category(name, v) if isinstance(v, str) else None) for v in col.unique()}
            clean = col.map(mapping)
        else:
            clean = pd.to_numeric(col, errors="coerce")
        bad = clean.isna().to_numpy()
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise TrainingDataError(f"row {i + 2}, column '{name}': {col.iloc[i]!r} is missing or not a "
                                    f"valid {'category' if f.kind == 'categorical' else 'number'}")
        X[name] = clean.astype(object if f.kind == "categorical" else float)
    if len(X) < MIN_TRAINING_ROWS:
        raise TrainingDataError(f"training data has {len(X)} rows; at least {MIN_TRAINING_ROWS} are needed")
    if min(y.sum(), len(y) - y.sum()) < 10:
        raise TrainingDataError("training data needs at least 10 'good' and 10 'bad' rows")
    protected = df[[c for c in PROTECTED_FIELDS if c in df.columns]].copy()
    return X, y, protected


def data_sha256(df: pd.DataFrame) -> str:
    """SHA-256 of the training frame's inputs and label as CSV (catalogue column order, no index)."""
    cols = [c for c in (*MODEL_INPUTS, *PROTECTED_FIELDS, LABEL_FIELD) if c in df.columns]
    return hashlib.sha256(df[cols].to_csv(index=False).encode("utf-8")).hexdigest()
