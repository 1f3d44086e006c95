"""The trained :class:`FailureModel` and its predictions (per step, per machine, drivers)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
import sklearn
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor, IsolationForest
from sklearn.isotonic import IsotonicRegression

from apps.manufacturing.features import (
    DEFAULT_THREADS,
    FeatureError,
    FeatureSpec,
    assemble,
    compute_threads,
    detrended,
    normalise,
    sensor_block,
)

from .anomaly import _anomalies, _anomaly_result, _self_anomaly
from .drivers import driver_texts
from .errors import ModelError, SensorMismatchError
from .series import _age, _features, _label, _num, prepare_series

#: The version of the stored form (:mod:`.artifact`): bump it when the fields of FailureModel change.
FORMAT_VERSION = 1
HISTORY_STEPS = 50


@dataclass
class FailureModel:
    """A trained failure model; see the package docstring. Build with :func:`train_failure_model`."""

    __module__ = "apps.manufacturing.failure_model"  # the path stored artifacts name: see artifact.py

    spec: FeatureSpec
    regressor: HistGradientBoostingRegressor | None
    classifier: HistGradientBoostingClassifier | None
    calibrator: IsotonicRegression | None
    anomaly: IsolationForest
    anomaly_features: list[int]
    anomaly_threshold: float
    horizon: float
    horizon_unit: Literal["cycles", "hours"]
    rul_cap: float
    metadata: dict[str, Any] = field(default_factory=dict)
    units: dict[str, str] = field(default_factory=dict)

    @property
    def sensors(self) -> list[str]:
        """Sensors the model needs."""
        return list(self.spec.sensors)

    @property
    def has_labels(self) -> bool:
        """False for an anomaly-only model."""
        return self.classifier is not None

    # ------------------------------------------------------------------ per-step scores

    def _proba(self, feats: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        assert self.classifier is not None and self.calibrator is not None
        logit = self.classifier.decision_function(feats)
        p = np.clip(self.calibrator.predict(logit), 0.0, 1.0)
        return p, logit

    def _rul(self, feats: np.ndarray) -> np.ndarray:
        assert self.regressor is not None
        return np.clip(self.regressor.predict(feats), 0.0, self.rul_cap)

    def _anomaly(self, feats: np.ndarray) -> np.ndarray:
        return -self.anomaly.score_samples(feats[:, self.anomaly_features])

    def predict_steps(self, series: pd.DataFrame, *, last: int | None = None,
                      threads: int | None = DEFAULT_THREADS) -> pd.DataFrame:
        """Per-step ``failure_probability``, ``rul_estimate`` and ``anomaly_score`` (last ``last`` steps
        or all), on ``threads`` OpenMP threads."""
        with compute_threads(threads):
            return self._predict_steps(series, last=last)

    def _predict_steps(self, series: pd.DataFrame, *, last: int | None = None) -> pd.DataFrame:
        frame = prepare_series(series)
        self._check_sensors(frame, strict=True)
        feats = _features(frame, self.spec)
        sel = feats if last is None else feats[-last:]
        idx = frame.index if last is None else frame.index[-last:]
        out = pd.DataFrame(index=idx)
        if self.has_labels:
            out["failure_probability"] = self._proba(sel)[0]
            out["rul_estimate"] = self._rul(sel)
        out["anomaly_score"] = self._anomaly(sel)
        return out

    # ------------------------------------------------------------------ public prediction

    def _check_sensors(self, frame: pd.DataFrame, *, strict: bool) -> list[str]:
        need = list(self.spec.sensors)
        if self.spec.regimes is not None:
            need += self.spec.regimes.settings
        missing = [s for s in need if s not in frame.columns or frame[s].isna().all()]
        if missing and strict:
            raise SensorMismatchError(
                f"the series lacks sensor(s) the model was trained on: {', '.join(missing)}", missing
            )
        return missing

    def predict(self, series: pd.DataFrame, *, strict: bool = False, history_steps: int = HISTORY_STEPS,
                threads: int | None = DEFAULT_THREADS) -> dict[str, Any]:
        """Predict for one machine's series (indexed by cycle or timestamp, one column per sensor).

        Returns ``failure_probability`` (calibrated, within ``horizon``), ``horizon``,
        ``horizon_unit``, ``rul_estimate``, ``anomaly_score`` (IsolationForest score, higher is more
        anomalous) with ``anomaly_threshold``, ``anomalies`` (flagged steps with the most deviating
        sensor), ``drivers`` (top sensors pushing the probability up), ``history`` (per-step
        probability, RUL and anomaly score over the last ``history_steps``), ``mode`` ("full" or
        "anomaly_only"), ``notes`` and ``model_version_info``.

        A series missing some of the model's sensors raises :class:`SensorMismatchError` when
        ``strict``; otherwise the machine is scored by an anomaly detector fitted on its own early
        life, with ``mode="anomaly_only"`` and ``failure_probability``/``rul_estimate`` None.

        scikit-learn runs on ``threads`` OpenMP threads (the caller's choice; None: an enclosing limit).
        """
        with compute_threads(threads):
            return self._predict(series, strict=strict, history_steps=history_steps)

    def _predict(self, series: pd.DataFrame, *, strict: bool, history_steps: int) -> dict[str, Any]:
        t0 = time.perf_counter()
        frame = prepare_series(series)
        missing = self._check_sensors(frame, strict=strict)
        notes: list[str] = []
        extra = [c for c in frame.columns if c not in self.spec.sensors and c not in self.spec.settings]
        if extra:
            notes.append(f"columns not used by the model: {', '.join(map(str, extra[:10]))}")
        if missing or not self.has_labels:
            reason = (
                f"sensors missing for the failure model: {', '.join(missing)}" if missing
                else "the model was trained without failure labels"
            )
            if missing:
                out = _self_anomaly(frame, reason, history_steps)
            else:
                out = self._anomaly_only(frame, reason, history_steps)
            out["notes"] = notes + out.get("notes", [])
            out["model_version_info"] = self.version_info()
            out["elapsed_ms"] = round((time.perf_counter() - t0) * 1000, 1)
            return out
        if len(frame) < self.spec.config.baseline_steps:
            notes.append(
                f"short series ({len(frame)} steps < {self.spec.config.baseline_steps}): the early-life "
                "baseline is incomplete; treat the numbers with caution"
            )
        x = normalise(frame, self.spec)
        block = sensor_block(x, self.spec)
        age = _age(frame, self.spec)
        feats = assemble(block, self.spec, age)
        tail = feats[-history_steps:]
        p_hist, _ = self._proba(tail)
        rul_hist = self._rul(tail)
        an_hist = self._anomaly(tail)
        p, rul, an = float(p_hist[-1]), float(rul_hist[-1]), float(an_hist[-1])
        tail_index = frame.index[-len(tail):]
        history = [
            {"at": _label(t), "failure_probability": round(float(a), 4), "rul_estimate": round(float(b), 1),
             "anomaly_score": round(float(c), 4)}
            for t, a, b, c in zip(tail_index, p_hist, rul_hist, an_hist, strict=True)
        ]
        anomalies = _anomalies(tail_index, an_hist, self.anomaly_threshold, block["dev"][-len(tail):],
                               self.spec.sensors)
        drivers = self._drivers(x, block, age, feats[-1], p)
        return {
            "mode": "full",
            "failure_probability": round(p, 4),
            "horizon": _num(self.horizon),
            "horizon_unit": self.horizon_unit,
            "rul_estimate": round(rul, 1),
            "rul_unit": self.horizon_unit,
            "rul_capped_at": _num(self.rul_cap),
            "anomaly_score": round(an, 4),
            "anomaly_threshold": round(self.anomaly_threshold, 4),
            "is_anomalous": an > self.anomaly_threshold,
            "anomalies": anomalies,
            "drivers": drivers,
            "history": history,
            "last_at": _label(frame.index[-1]),
            "steps": len(frame),
            "notes": notes,
            "model_version_info": self.version_info(),
            "elapsed_ms": round((time.perf_counter() - t0) * 1000, 1),
        }

    def predict_many(self, series: dict[str, pd.DataFrame], *, strict: bool = False,
                     threads: int | None = DEFAULT_THREADS) -> dict[str, dict[str, Any]]:
        """:meth:`predict` for each machine; a machine that fails gets ``{"error": message}`` and the
        others go on."""
        out: dict[str, dict[str, Any]] = {}
        with compute_threads(threads):
            for mid, df in series.items():
                try:
                    out[str(mid)] = self._predict(df, strict=strict, history_steps=HISTORY_STEPS)
                except (ModelError, FeatureError, ValueError) as exc:
                    out[str(mid)] = {"error": str(exc), "mode": "error"}
        return out

    def _anomaly_only(self, frame: pd.DataFrame, reason: str, history_steps: int) -> dict[str, Any]:
        x = normalise(frame, self.spec)
        block = sensor_block(x, self.spec)
        feats = assemble(block, self.spec, _age(frame, self.spec))
        tail = feats[-history_steps:]
        an_hist = self._anomaly(tail)
        idx = frame.index[-len(tail):]
        return _anomaly_result(idx, an_hist, self.anomaly_threshold, block["dev"][-len(tail):],
                               self.spec.sensors, reason, len(frame))

    def _drivers(self, x: np.ndarray, block: dict[str, np.ndarray], age: np.ndarray | None,
                 base_row: np.ndarray, p_base: float) -> list[dict[str, Any]]:
        spec = self.spec
        healthy = detrended(x, spec)
        rows = [base_row]
        for j in range(len(spec.sensors)):
            xc = x.copy()
            xc[:, j] = healthy[:, j]
            rows.append(assemble(sensor_block(xc, spec), spec, age)[-1])
        mat = np.vstack(rows)
        p, logit = self._proba(mat)
        rul = self._rul(mat)
        names = spec.feature_names()
        out = []
        dev_now = block["dev"][-1]
        slope_w = spec.config.slope_windows[-1]
        slope_now = block[f"slope_{slope_w}"][-1]
        for j, s in enumerate(spec.sensors):
            drop_logit = float(logit[0] - logit[j + 1])
            drop_p = float(p_base - p[j + 1])
            if drop_logit <= 0.05 and drop_p <= 0.005:
                continue
            cols = [i for i, n in enumerate(names) if n.startswith(f"{s}__")]
            scale = np.array([spec.sensor_scale[j] if names[i].split("__")[1].startswith("mean") else 1.0
                              for i in cols])
            diff = np.abs(mat[0, cols] - mat[j + 1, cols]) / scale
            feature = names[cols[int(np.argmax(diff))]]
            out.append({
                "sensor": s,
                "feature": feature,
                "direction": "up" if dev_now[j] >= 0 else "down",
                "contribution": round(max(drop_p, 0.0), 4),
                "contribution_logodds": round(drop_logit, 3),
                "rul_effect": round(float(rul[j + 1] - rul[0]), 1),
                "deviation_sigma": round(float(dev_now[j]), 2),
                "slope_sigma_per_step": round(float(slope_now[j]), 3),
            })
        out.sort(key=lambda d: (-d["contribution_logodds"], d["sensor"]))
        out = out[:5]
        for d in out:
            d["text_en"], d["text_zh"] = driver_texts(d, self.horizon, self.horizon_unit, self.units)
        return out

    def version_info(self) -> dict[str, Any]:
        """Identity of the model for the record of each result."""
        return {
            "format_version": FORMAT_VERSION,
            "model_version": self.metadata.get("model_version"),
            "trained_at": self.metadata.get("trained_at"),
            "horizon": _num(self.horizon),
            "horizon_unit": self.horizon_unit,
            "sensors": len(self.spec.sensors),
            "kind": "failure" if self.has_labels else "anomaly_only",
            "sklearn": sklearn.__version__,
        }
