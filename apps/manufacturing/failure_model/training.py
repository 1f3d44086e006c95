"""Training: the failure model (RUL regressor, calibrated classifier, anomaly detector) and the
anomaly-only model, with the fingerprint that names a trained model."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
import sklearn
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor, IsolationForest
from sklearn.isotonic import IsotonicRegression
from sklearn.metrics import brier_score_loss, mean_squared_error, roc_auc_score
from sklearn.model_selection import GroupKFold

from apps.manufacturing import cmapss
from apps.manufacturing.features import (
    DEFAULT_THREADS,
    FeatureConfig,
    compute_threads,
    fit_feature_spec,
    fit_health_indicator,
    split_machines,
)
from core.curves import validation_curves

from .anomaly import _anomaly_columns
from .errors import ModelError
from .model import FailureModel
from .series import _features, _num, prepare_series

RUL_CAP = cmapss.RUL_CAP


def _labelled_frames(
    df: pd.DataFrame | dict[str, pd.DataFrame], rul_col: str,
) -> tuple[dict[str, pd.DataFrame], dict[str, np.ndarray], str]:
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
    threads: int | None = DEFAULT_THREADS,
) -> FailureModel:
    """Train the RUL regressor, the calibrated failure-within-``horizon`` classifier and the anomaly detector.

    ``df_labelled`` is a table with ``machine_id``, ``cycle`` (or ``timestamp``), sensor columns
    (and optional ``op_setting_*``) and ``rul``; without ``rul`` each machine's series is taken to
    end at failure (RUL = last time − time; hours on a timestamp axis). A dict machine id → series
    frame is accepted too. Deterministic for a given ``seed``. scikit-learn runs on ``threads`` OpenMP
    threads (the caller's choice; None: an enclosing limit).
    """
    with compute_threads(threads):
        return _train_failure_model(df_labelled, horizon=horizon, seed=seed, rul_cap=rul_cap, sensors=sensors,
                                    settings=settings, config=config, rul_col=rul_col,
                                    calibration_folds=calibration_folds, threads=threads)


def _cross_fitted_calibration(score: np.ndarray, y: np.ndarray, groups: np.ndarray, folds: int) -> np.ndarray:
    """Calibrated held-out probabilities for the reported Brier score and reliability curve: each fold's
    out-of-fold scores go through an isotonic map fitted on the other folds only (the shipped calibrator
    is fitted on all of them; judging it on its own fitting data would flatter it)."""
    p = np.zeros(len(y))
    for tr, te in GroupKFold(n_splits=folds).split(score, y, groups):
        iso = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0).fit(score[tr], y[tr])
        p[te] = iso.predict(score[te])
    return p


def _train_failure_model(
    df_labelled: pd.DataFrame | dict[str, pd.DataFrame], *, horizon: float, seed: int, rul_cap: float,
    sensors: list[str] | None, settings: list[str] | None, config: FeatureConfig | None, rul_col: str,
    calibration_folds: int, threads: int | None,
) -> FailureModel:
    t0 = time.perf_counter()
    frames, ruls, axis = _labelled_frames(df_labelled, rul_col)
    label_cols = {rul_col, "rul", "rul_capped"}
    frames = {k: v.drop(columns=[c for c in v.columns if c in label_cols]) for k, v in frames.items()}
    spec = fit_feature_spec(frames, sensors=sensors, settings=settings, config=config, time_axis=axis,
                            seed=seed, threads=threads)
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
        raise ModelError(f"every training step is on the same side of the {horizon} horizon; need "
                         "run-to-failure history")
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
    p_oof = _cross_fitted_calibration(oof, y_cls, g, folds) if folds >= 2 else calib.predict(oof)
    metrics = {
        "oof_auc": round(float(roc_auc_score(y_cls, oof)), 4) if folds >= 2 else None,
        "oof_brier": round(float(brier_score_loss(y_cls, p_oof)), 4) if folds >= 2 else None,
        "calibration_folds": folds,
        "train_rmse_rul_capped": round(float(np.sqrt(mean_squared_error(np.minimum(rul, rul_cap),
                                                                        reg.predict(Xa)))), 3),
        "positive_rate": round(float(y_cls.mean()), 4),
    }
    if folds >= 2:  # the held-out predictions of oof_auc (ranking) and oof_brier (cross-fitted probabilities)
        metrics["curves"] = validation_curves(y_cls, p_oof, score=oof, basis="out_of_fold_grouped_by_machine")
    trained_at = datetime.now(UTC).replace(microsecond=0).isoformat()
    units = {s: cmapss.CMAPSS_SENSORS[s].unit for s in spec.sensors if s in cmapss.CMAPSS_SENSORS}
    model = FailureModel(
        spec=spec, regressor=reg, classifier=clf, calibrator=calib, anomaly=iso, anomaly_features=acols,
        anomaly_threshold=threshold, horizon=float(horizon),
        horizon_unit="cycles" if axis == "cycle" else "hours", rul_cap=float(rul_cap), units=units,
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
                        config: FeatureConfig | None = None, healthy_fraction: float = 0.5,
                        threads: int | None = DEFAULT_THREADS) -> FailureModel:
    """An anomaly-only model for machines without failure labels.

    The IsolationForest is fitted on the first ``healthy_fraction`` of each machine's series; its
    predictions have ``mode="anomaly_only"``. ``threads``: as for :func:`train_failure_model`.
    """
    with compute_threads(threads):
        return _train_anomaly_model(data, seed=seed, sensors=sensors, settings=settings, config=config,
                                    healthy_fraction=healthy_fraction, threads=threads)


def _train_anomaly_model(data: pd.DataFrame | dict[str, pd.DataFrame], *, seed: int,
                         sensors: list[str] | None, settings: list[str] | None, config: FeatureConfig | None,
                         healthy_fraction: float, threads: int | None) -> FailureModel:
    if isinstance(data, pd.DataFrame):
        frames = split_machines(data)
    else:
        frames = {str(k): prepare_series(v) for k, v in data.items()}
    if not frames:
        raise ModelError("no machines")
    first = next(iter(frames.values()))
    axis = "timestamp" if isinstance(first.index, pd.DatetimeIndex) else "cycle"
    spec = fit_feature_spec(frames, sensors=sensors, settings=settings, config=config, time_axis=axis,
                            seed=seed, threads=threads)
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

    meta = {k: v for k, v in model.metadata.items()
            if k not in ("trained_at", "training_seconds", "model_version")}
    h = hashlib.sha256(json.dumps(meta, sort_keys=True, default=str).encode())
    h.update(np.asarray(model.anomaly_threshold).tobytes())
    if model.regressor is not None:
        probe = np.zeros((1, len(model.spec.feature_names())))
        h.update(np.asarray(model.regressor.predict(probe)).tobytes())
    return h.hexdigest()[:12]
