"""Anomaly scoring outside the full model: the anomaly-only result, the self-fitted fallback for
a machine whose sensors do not match the model, and the anomaly feature columns."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.ensemble import IsolationForest

from apps.manufacturing.features import FeatureConfig, FeatureSpec, fit_feature_spec, normalise, sensor_block

from .drivers import driver_texts
from .errors import ModelError
from .series import _label


def _anomalies(index: pd.Index, scores: np.ndarray, threshold: float, dev: np.ndarray,
               sensors: list[str], limit: int = 50) -> list[dict[str, Any]]:
    out = []
    for i in np.flatnonzero(scores > threshold)[-limit:]:
        j = int(np.argmax(np.abs(dev[i])))
        out.append({"at": _label(index[i]), "score": round(float(scores[i]), 4), "sensor": sensors[j],
                    "deviation_sigma": round(float(dev[i, j]), 2)})
    return out


def _anomaly_result(index: pd.Index, an_hist: np.ndarray, threshold: float, dev: np.ndarray,
                    sensors: list[str], reason: str, steps: int) -> dict[str, Any]:
    last_dev = dev[-1]
    order = np.argsort(-np.abs(last_dev))[:5]
    drivers = []
    for j in order:
        if abs(last_dev[j]) < 2.0:
            continue
        d = {"sensor": sensors[j], "feature": f"{sensors[j]}__dev",
             "direction": "up" if last_dev[j] >= 0 else "down", "contribution": None,
             "deviation_sigma": round(float(last_dev[j]), 2)}
        d["text_en"], d["text_zh"] = driver_texts(d, None, "cycles", {})
        drivers.append(d)
    return {
        "mode": "anomaly_only",
        "fallback_reason": reason,
        "failure_probability": None,
        "horizon": None,
        "horizon_unit": None,
        "rul_estimate": None,
        "anomaly_score": round(float(an_hist[-1]), 4),
        "anomaly_threshold": round(float(threshold), 4),
        "is_anomalous": bool(an_hist[-1] > threshold),
        "anomalies": _anomalies(index, an_hist, threshold, dev, sensors),
        "drivers": drivers,
        "history": [{"at": _label(t), "failure_probability": None, "rul_estimate": None,
                     "anomaly_score": round(float(a), 4)} for t, a in zip(index, an_hist, strict=True)],
        "last_at": _label(index[-1]),
        "steps": steps,
        "notes": [f"anomaly detection only: {reason}"],
    }


def _self_anomaly(frame: pd.DataFrame, reason: str, history_steps: int) -> dict[str, Any]:
    """Fallback for a machine whose sensors do not match the model: IsolationForest on its own early life."""
    from apps.manufacturing.features import infer_sensors

    sensors, _ = infer_sensors([frame])
    if not sensors:
        raise ModelError(f"{reason}; and the series has no varying numeric sensor to score")
    spec = fit_feature_spec({"self": frame}, sensors=sensors, settings=[],
                            config=FeatureConfig(include_age=False))
    x = normalise(frame, spec)
    block = sensor_block(x, spec)
    feats = _anomaly_matrix(block)
    n = len(frame)
    fit_n = max(min(n // 2, 200), min(n, 10))
    iso = IsolationForest(n_estimators=100, random_state=0).fit(feats[:fit_n])
    scores = -iso.score_samples(feats)
    threshold = float(np.quantile(scores[:fit_n], 0.995)) if fit_n >= 10 else 0.6
    tail = slice(max(0, n - history_steps), n)
    out = _anomaly_result(frame.index[tail], scores[tail], threshold, block["dev"][tail], sensors, reason, n)
    out["notes"].append(f"scored against this machine's own first {fit_n} steps")
    return out


def _anomaly_matrix(block: dict[str, np.ndarray]) -> np.ndarray:
    std_key = next(k for k in block if k.startswith("std_"))
    return np.hstack([block["dev"], block["fdev"], block[std_key]])


def _anomaly_columns(spec: FeatureSpec) -> list[int]:
    names = spec.feature_names()
    suffixes = ("dev", "fdev", f"std_{spec.config.std_window}")
    return [i for i, n in enumerate(names) if n.partition("__")[2] in suffixes]
