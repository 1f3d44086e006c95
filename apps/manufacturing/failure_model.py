"""Failure prediction: remaining-useful-life regressor, calibrated failure-within-horizon classifier,
IsolationForest anomaly detector, model-based drivers, serialisation and grouped cross-validation.

* RUL regressor: HistGradientBoostingRegressor on the features of :mod:`.features`, target
  min(RUL, ``rul_cap``) (125 cycles by default).
* Failure classifier: HistGradientBoostingClassifier for "RUL ≤ horizon"; its scores are calibrated
  by isotonic regression fitted on out-of-fold scores (3-fold GroupKFold by machine), so the
  probability reflects machines the model has not seen.
* Anomaly detector: IsolationForest on the deviation/variability features of healthy steps (the
  first half of each training machine's life); a step is anomalous above the 99.5th percentile
  of healthy scores. :func:`train_anomaly_model` trains it alone, without labels.
* Drivers: for each sensor, the sensor's drift since early life is removed (the
  counterfactual series keeps its noise, see :func:`features.detrended`), its features and the
  health indicator are recomputed and the drop in the classifier's log-odds and calibrated
  probability is measured. The sensors whose healthy version lowers the risk most are the drivers.

Only load models this platform produced: :func:`load` unpickles.
"""

from __future__ import annotations

import io
import json
import pickle
import time
import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import numpy as np
import pandas as pd
import sklearn
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor, IsolationForest
from sklearn.isotonic import IsotonicRegression
from sklearn.metrics import brier_score_loss, mean_squared_error, roc_auc_score
from sklearn.model_selection import GroupKFold

from apps.manufacturing import cmapss
from apps.manufacturing.features import (
    FeatureConfig,
    FeatureError,
    FeatureSpec,
    assemble,
    compute_threads,
    detrended,
    fit_feature_spec,
    fit_health_indicator,
    normalise,
    sensor_block,
    split_machines,
)

FORMAT_VERSION = 1
MAGIC = b"MFG-FAILURE-MODEL\n"
RUL_CAP = cmapss.RUL_CAP
HISTORY_STEPS = 50


class ModelError(ValueError):
    """Training or prediction cannot proceed; the message says why."""


class ModelFormatError(ModelError):
    """Serialized bytes are not a failure model of a supported format version."""


class SensorMismatchError(ModelError):
    """The series lacks sensors the model was trained on (``missing`` lists them)."""

    def __init__(self, message: str, missing: list[str]) -> None:
        self.missing = missing
        super().__init__(message)


@dataclass
class FailureModel:
    """A trained failure model; see the module docstring. Build with :func:`train_failure_model`."""

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

    def predict_steps(self, series: pd.DataFrame, *, last: int | None = None) -> pd.DataFrame:
        """Per-step ``failure_probability``, ``rul_estimate`` and ``anomaly_score`` (last ``last`` steps or all)."""
        with compute_threads():
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

    def predict(self, series: pd.DataFrame, *, strict: bool = False, history_steps: int = HISTORY_STEPS) -> dict[str, Any]:
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
        """
        with compute_threads():
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
            out = _self_anomaly(frame, reason, history_steps) if missing else self._anomaly_only(frame, reason, history_steps)
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
        anomalies = _anomalies(tail_index, an_hist, self.anomaly_threshold, block["dev"][-len(tail):], self.spec.sensors)
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

    def predict_many(self, series: dict[str, pd.DataFrame], *, strict: bool = False) -> dict[str, dict[str, Any]]:
        """:meth:`predict` for each machine; a machine that fails gets ``{"error": message}`` and the others go on."""
        out: dict[str, dict[str, Any]] = {}
        with compute_threads():
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
            scale = np.array([spec.sensor_scale[j] if names[i].split("__")[1].startswith("mean") else 1.0 for i in cols])
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


# ---------------------------------------------------------------------------------------------- helpers


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

    sensors, settings = infer_sensors([frame])
    if not sensors:
        raise ModelError(f"{reason}; and the series has no varying numeric sensor to score")
    spec = fit_feature_spec({"self": frame}, sensors=sensors, settings=[], config=FeatureConfig(include_age=False))
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


def driver_texts(d: dict[str, Any], horizon: float | None, unit: str, units: dict[str, str]) -> tuple[str, str]:
    """English and Chinese one-line explanations of a driver."""
    s = d["sensor"]
    info = cmapss.CMAPSS_SENSORS.get(s)
    name_en = f"{s} ({info.symbol}, {info.description_en})" if info else s
    name_zh = f"{s}（{info.symbol}，{info.description_zh}）" if info else s
    dev = d.get("deviation_sigma") or 0.0
    up = dev >= 0
    slope = d.get("slope_sigma_per_step")
    trend_en = trend_zh = ""
    if slope is not None and abs(slope) >= 0.02:
        trend_en = " and rising" if slope > 0 else " and falling"
        trend_zh = "，且呈上升趋势" if slope > 0 else "，且呈下降趋势"
    en = f"{name_en} is {abs(dev):.1f}σ {'above' if up else 'below'} its early-life baseline{trend_en}"
    zh = f"{name_zh}比早期基线{'高' if up else '低'}{abs(dev):.1f}σ{trend_zh}"
    contrib = d.get("contribution")
    if horizon is not None and contrib is not None:
        h = _num(horizon)
        unit_zh = "个周期" if unit == "cycles" else "小时"
        if contrib >= 0.005:
            en += f"; it raises the {h}-{unit[:-1]} failure probability by {contrib * 100:.0f} points"
            zh += f"；使{h}{unit_zh}内的故障概率上升{contrib * 100:.0f}个百分点"
        else:
            en += "; it is among the strongest signals in the model's risk score"
            zh += "；是模型风险评分中最强的信号之一"
    return en + ".", zh + "。"


# ---------------------------------------------------------------------------------------------- training


def _labelled_frames(df: pd.DataFrame | dict[str, pd.DataFrame], rul_col: str) -> tuple[dict[str, pd.DataFrame], dict[str, np.ndarray], str]:
    if isinstance(df, dict):
        frames = {str(k): prepare_series(v) for k, v in df.items()}
    else:
        if "machine_id" not in df.columns:
            raise ModelError("training table has no machine_id column")
        frames = split_machines(df)
    if not frames:
        raise ModelError("no machines in the training data")
    first = next(iter(frames.values()))
    axis = "timestamp" if isinstance(first.index, pd.DatetimeIndex) else "cycle"
    ruls: dict[str, np.ndarray] = {}
    for mid, f in frames.items():
        if rul_col in f.columns and f[rul_col].notna().all():
            ruls[mid] = f[rul_col].to_numpy(dtype=float)
        elif axis == "cycle":
            idx = f.index.to_numpy(dtype=float)
            ruls[mid] = idx.max() - idx
        else:
            idx = f.index
            ruls[mid] = ((idx.max() - idx) / pd.Timedelta(hours=1)).to_numpy(dtype=float)
        if len(f) < 2:
            raise ModelError(f"machine {mid}: fewer than 2 steps of history")
    return frames, ruls, axis


def _hgb_params(seed: int) -> dict[str, Any]:
    return {"max_iter": 150, "learning_rate": 0.08, "max_leaf_nodes": 15, "min_samples_leaf": 40,
            "l2_regularization": 1.0, "early_stopping": False, "random_state": seed}


def train_failure_model(
    df_labelled: pd.DataFrame | dict[str, pd.DataFrame],
    *,
    horizon: float = 30,
    seed: int = 0,
    rul_cap: float = RUL_CAP,
    sensors: list[str] | None = None,
    settings: list[str] | None = None,
    config: FeatureConfig | None = None,
    rul_col: str = "rul",
    calibration_folds: int = 3,
) -> FailureModel:
    """Train the RUL regressor, the calibrated failure-within-``horizon`` classifier and the anomaly detector.

    ``df_labelled`` is a table with ``machine_id``, ``cycle`` (or ``timestamp``), sensor columns
    (and optional ``op_setting_*``) and ``rul``; without ``rul`` each machine's series is taken to
    end at failure (RUL = last time − time; hours on a timestamp axis). A dict machine id → series
    frame is accepted too. Deterministic for a given ``seed``.
    """
    with compute_threads():
        return _train_failure_model(df_labelled, horizon=horizon, seed=seed, rul_cap=rul_cap, sensors=sensors,
                                    settings=settings, config=config, rul_col=rul_col,
                                    calibration_folds=calibration_folds)


def _train_failure_model(
    df_labelled: pd.DataFrame | dict[str, pd.DataFrame], *, horizon: float, seed: int, rul_cap: float,
    sensors: list[str] | None, settings: list[str] | None, config: FeatureConfig | None, rul_col: str,
    calibration_folds: int,
) -> FailureModel:
    t0 = time.perf_counter()
    frames, ruls, axis = _labelled_frames(df_labelled, rul_col)
    label_cols = {rul_col, "rul", "rul_capped"}
    frames = {k: v.drop(columns=[c for c in v.columns if c in label_cols]) for k, v in frames.items()}
    spec = fit_feature_spec(frames, sensors=sensors, settings=settings, config=config, time_axis=axis, seed=seed)
    fit_health_indicator(frames, ruls, spec, cap=rul_cap)
    X, groups = [], []
    for i, (_mid, f) in enumerate(frames.items()):
        X.append(_features(f, spec))
        groups.append(np.full(len(f), i))
    Xa = np.vstack(X)
    g = np.concatenate(groups)
    rul = np.concatenate([ruls[m] for m in frames])
    y_cls = (rul <= horizon).astype(int)
    if y_cls.min() == y_cls.max():
        raise ModelError(f"every training step is on the same side of the {horizon} horizon; need run-to-failure history")
    reg = HistGradientBoostingRegressor(**_hgb_params(seed)).fit(Xa, np.minimum(rul, rul_cap))
    clf_params = _hgb_params(seed)
    n_groups = len(frames)
    folds = min(calibration_folds, n_groups)
    oof = np.zeros(len(y_cls))
    if folds >= 2:
        for tr, te in GroupKFold(n_splits=folds).split(Xa, y_cls, g):
            if y_cls[tr].min() == y_cls[tr].max():
                raise ModelError("a calibration fold has one class only; give more machines")
            m = HistGradientBoostingClassifier(**clf_params).fit(Xa[tr], y_cls[tr])
            oof[te] = m.decision_function(Xa[te])
    clf = HistGradientBoostingClassifier(**clf_params).fit(Xa, y_cls)
    if folds < 2:
        oof = clf.decision_function(Xa)
    calib = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0).fit(oof, y_cls)
    life = np.concatenate([np.full(len(f), len(f)) for f in frames.values()])
    pos = np.concatenate([np.arange(len(f)) for f in frames.values()])
    healthy = pos < np.maximum(life // 2, 1)
    acols = _anomaly_columns(spec)
    iso = IsolationForest(n_estimators=200, random_state=seed).fit(Xa[healthy][:, acols])
    healthy_scores = -iso.score_samples(Xa[healthy][:, acols])
    threshold = float(np.quantile(healthy_scores, 0.995))
    p_oof = calib.predict(oof)
    metrics = {
        "oof_auc": round(float(roc_auc_score(y_cls, oof)), 4) if folds >= 2 else None,
        "oof_brier": round(float(brier_score_loss(y_cls, p_oof)), 4) if folds >= 2 else None,
        "calibration_folds": folds,
        "train_rmse_rul_capped": round(float(np.sqrt(mean_squared_error(np.minimum(rul, rul_cap), reg.predict(Xa)))), 3),
        "positive_rate": round(float(y_cls.mean()), 4),
    }
    trained_at = datetime.now(UTC).replace(microsecond=0).isoformat()
    units = {s: cmapss.CMAPSS_SENSORS[s].unit for s in spec.sensors if s in cmapss.CMAPSS_SENSORS}
    model = FailureModel(
        spec=spec, regressor=reg, classifier=clf, calibrator=calib, anomaly=iso, anomaly_features=acols,
        anomaly_threshold=threshold, horizon=float(horizon), horizon_unit="cycles" if axis == "cycle" else "hours",
        rul_cap=float(rul_cap), units=units,
    )
    model.metadata = {
        "kind": "failure",
        "sensors": list(spec.sensors),
        "settings": list(spec.settings),
        "regimes": spec.regimes.k if spec.regimes is not None else 1,
        "features": len(spec.feature_names()),
        "horizon": _num(horizon),
        "horizon_unit": model.horizon_unit,
        "rul_cap": _num(rul_cap),
        "time_axis": axis,
        "machines": n_groups,
        "rows": int(len(Xa)),
        "seed": seed,
        "trained_at": trained_at,
        "training_seconds": round(time.perf_counter() - t0, 2),
        "metrics": metrics,
        "sklearn": sklearn.__version__,
    }
    model.metadata["model_version"] = _fingerprint(model)
    return model


def train_anomaly_model(data: pd.DataFrame | dict[str, pd.DataFrame], *, seed: int = 0,
                        sensors: list[str] | None = None, settings: list[str] | None = None,
                        config: FeatureConfig | None = None, healthy_fraction: float = 0.5) -> FailureModel:
    """An anomaly-only model for machines without failure labels.

    The IsolationForest is fitted on the first ``healthy_fraction`` of each machine's series; its
    predictions have ``mode="anomaly_only"``.
    """
    with compute_threads():
        return _train_anomaly_model(data, seed=seed, sensors=sensors, settings=settings, config=config,
                                    healthy_fraction=healthy_fraction)


def _train_anomaly_model(data: pd.DataFrame | dict[str, pd.DataFrame], *, seed: int, sensors: list[str] | None,
                         settings: list[str] | None, config: FeatureConfig | None,
                         healthy_fraction: float) -> FailureModel:
    frames = split_machines(data) if isinstance(data, pd.DataFrame) else {str(k): prepare_series(v) for k, v in data.items()}
    if not frames:
        raise ModelError("no machines")
    first = next(iter(frames.values()))
    axis = "timestamp" if isinstance(first.index, pd.DatetimeIndex) else "cycle"
    spec = fit_feature_spec(frames, sensors=sensors, settings=settings, config=config, time_axis=axis, seed=seed)
    feats, healthy = [], []
    for f in frames.values():
        feats.append(_features(f, spec))
        healthy.append(np.arange(len(f)) < max(int(len(f) * healthy_fraction), 1))
    Xa, h = np.vstack(feats), np.concatenate(healthy)
    acols = _anomaly_columns(spec)
    iso = IsolationForest(n_estimators=200, random_state=seed).fit(Xa[h][:, acols])
    threshold = float(np.quantile(-iso.score_samples(Xa[h][:, acols]), 0.995))
    model = FailureModel(spec=spec, regressor=None, classifier=None, calibrator=None, anomaly=iso,
                         anomaly_features=acols, anomaly_threshold=threshold, horizon=0.0,
                         horizon_unit="cycles" if axis == "cycle" else "hours", rul_cap=0.0)
    model.metadata = {"kind": "anomaly_only", "sensors": list(spec.sensors), "machines": len(frames),
                      "rows": int(len(Xa)), "seed": seed, "time_axis": axis,
                      "trained_at": datetime.now(UTC).replace(microsecond=0).isoformat(), "metrics": {},
                      "sklearn": sklearn.__version__}
    model.metadata["model_version"] = _fingerprint(model)
    return model


def _fingerprint(model: FailureModel) -> str:
    import hashlib

    meta = {k: v for k, v in model.metadata.items() if k not in ("trained_at", "training_seconds", "model_version")}
    h = hashlib.sha256(json.dumps(meta, sort_keys=True, default=str).encode())
    h.update(np.asarray(model.anomaly_threshold).tobytes())
    if model.regressor is not None:
        h.update(np.asarray(model.regressor.predict(np.zeros((1, len(model.spec.feature_names()))))).tobytes())
    return h.hexdigest()[:12]


# ---------------------------------------------------------------------------------------------- serialisation


def dump(model: FailureModel) -> bytes:
    """Serialise a model: a magic line, a JSON header (format version, metadata), then compressed pickle."""
    header = {"format_version": FORMAT_VERSION, "sklearn": sklearn.__version__, "metadata": model.metadata}
    buf = io.BytesIO()
    buf.write(MAGIC)
    buf.write(json.dumps(header, default=str).encode("utf-8") + b"\n")
    buf.write(zlib.compress(pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL), 6))
    return buf.getvalue()


def read_header(data: bytes) -> dict[str, Any]:
    """The JSON header of serialised model bytes (without unpickling)."""
    if not isinstance(data, (bytes, bytearray)) or not data.startswith(MAGIC):
        raise ModelFormatError("not a serialized failure model (bad magic bytes)")
    end = data.find(b"\n", len(MAGIC))
    if end < 0:
        raise ModelFormatError("truncated failure model header")
    try:
        return json.loads(data[len(MAGIC):end])
    except json.JSONDecodeError as exc:
        raise ModelFormatError(f"corrupt failure model header: {exc}") from exc


def load(data: bytes) -> FailureModel:
    """Load bytes from :func:`dump`. Raises :class:`ModelFormatError` on a wrong format version or corrupt data."""
    header = read_header(data)
    version = header.get("format_version")
    if version != FORMAT_VERSION:
        raise ModelFormatError(
            f"failure model format version {version}; this code reads version {FORMAT_VERSION}; retrain the model"
        )
    end = data.find(b"\n", len(MAGIC))
    try:
        # Bandit B301: callers load only artifacts they verified (core.signing) or built themselves.
        model = pickle.loads(zlib.decompress(data[end + 1:]))  # nosec B301
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means corrupt bytes
        raise ModelFormatError(f"corrupt failure model payload: {exc}") from exc
    if not isinstance(model, FailureModel):
        raise ModelFormatError("payload is not a FailureModel")
    return model


# ---------------------------------------------------------------------------------------------- evaluation


def nasa_score(true_rul: np.ndarray, pred_rul: np.ndarray) -> float:
    """The PHM08 asymmetric score (late predictions cost more); lower is better."""
    d = np.asarray(pred_rul, dtype=float) - np.asarray(true_rul, dtype=float)
    return float(np.sum(np.where(d < 0, np.exp(-d / 13.0) - 1, np.exp(d / 10.0) - 1)))


def cross_validate(
    df_labelled: pd.DataFrame,
    *,
    n_splits: int = 5,
    horizon: float = 30,
    seed: int = 0,
    rul_cap: float = RUL_CAP,
    truncations: int = 5,
    min_cycles: int = 31,
    **train_kwargs: Any,
) -> dict[str, Any]:
    """Engine-grouped K-fold cross-validation (GroupKFold by ``machine_id``).

    Reports, on held-out machines: RUL RMSE against the capped true RUL on **all cycles** and on the
    **last cycle of randomly truncated series**, ``truncations`` cut points per machine drawn two
    ways: uniform between ``min_cycles`` and the last cycle (``*_truncated_*``), and so that the
    true RUL is uniform in [7, 145] like the official test_FD001 file (``*_official_like_*``,
    at least ``min_cycles`` observed). Also ROC AUC
    and Brier score of the failure-within-``horizon`` probability on all cycles and on the
    truncated last cycles, and the PHM08 score on the truncated set.
    """
    frames, ruls, _axis = _labelled_frames(df_labelled, "rul")
    mids = list(frames)
    groups = np.arange(len(mids))
    rng = np.random.default_rng(seed)
    all_true, all_pred, all_p, all_y = [], [], [], []
    tr_sets: dict[str, tuple[list, list, list, list]] = {"uniform": ([], [], [], []), "official_like": ([], [], [], [])}
    folds = []
    t0 = time.perf_counter()
    for k, (tr, te) in enumerate(GroupKFold(n_splits=n_splits).split(groups, groups, groups)):
        tf = time.perf_counter()
        train = {mids[i]: frames[mids[i]].assign(rul=ruls[mids[i]]) for i in tr}
        model = train_failure_model(train, horizon=horizon, seed=seed, rul_cap=rul_cap, **train_kwargs)
        f_true, f_pred, f_p, f_y = [], [], [], []
        for i in te:
            mid = mids[i]
            frame = frames[mid].drop(columns=[c for c in ("rul", "rul_capped") if c in frames[mid].columns])
            steps = model.predict_steps(frame)
            true = np.minimum(ruls[mid], rul_cap)
            f_true.append(true)
            f_pred.append(steps["rul_estimate"].to_numpy())
            f_p.append(steps["failure_probability"].to_numpy())
            f_y.append((ruls[mid] <= horizon).astype(int))
            n = len(frame)
            lo = min(min_cycles, n) - 1
            cuts = rng.integers(lo, n, size=truncations)
            # official-like: the true RUL at the cut is uniform in [7, 145] (as in test_FD001), where feasible
            rul_draw = rng.integers(7, 146, size=truncations)
            off = np.clip(n - 1 - rul_draw, lo, n - 1)
            for sink, idx in ((tr_sets["uniform"], cuts), (tr_sets["official_like"], off)):
                sink[0].append(true[idx])
                sink[1].append(steps["rul_estimate"].to_numpy()[idx])
                sink[2].append(steps["failure_probability"].to_numpy()[idx])
                sink[3].append((ruls[mid][idx] <= horizon).astype(int))
        ft, fp = np.concatenate(f_true), np.concatenate(f_pred)
        fpp, fy = np.concatenate(f_p), np.concatenate(f_y)
        folds.append({
            "fold": k, "test_machines": len(te),
            "rmse_all_cycles": round(float(np.sqrt(np.mean((ft - fp) ** 2))), 3),
            "auc_all_cycles": round(float(roc_auc_score(fy, fpp)), 4) if 0 < fy.sum() < len(fy) else None,
            "seconds": round(time.perf_counter() - tf, 1),
        })
        all_true.append(ft)
        all_pred.append(fp)
        all_p.append(fpp)
        all_y.append(fy)
    at, ap = np.concatenate(all_true), np.concatenate(all_pred)
    app, ay = np.concatenate(all_p), np.concatenate(all_y)
    result: dict[str, Any] = {
        "n_splits": n_splits,
        "machines": len(mids),
        "horizon": _num(horizon),
        "rul_cap": _num(rul_cap),
        "rmse_all_cycles": round(float(np.sqrt(np.mean((at - ap) ** 2))), 3),
        "auc_all_cycles": round(float(roc_auc_score(ay, app)), 4),
        "brier_all_cycles": round(float(brier_score_loss(ay, app)), 4),
    }
    for name, (a, b, c, d) in tr_sets.items():
        tt, tp, tpp, ty = (np.concatenate(v) for v in (a, b, c, d))
        key = "truncated" if name == "uniform" else "official_like"
        result[f"rmse_{key}_last_cycle"] = round(float(np.sqrt(np.mean((tt - tp) ** 2))), 3)
        result[f"auc_{key}_last_cycle"] = round(float(roc_auc_score(ty, tpp)), 4) if 0 < ty.sum() < len(ty) else None
        result[f"nasa_score_{key}_per_engine"] = round(nasa_score(tt, tp) / len(tt), 3)
        result[f"{key}_points"] = int(len(tt))
    result.update({
        "folds": folds,
        "seconds": round(time.perf_counter() - t0, 1),
    })
    return result
