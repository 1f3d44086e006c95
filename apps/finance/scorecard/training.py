"""Training: cross-validation of the algorithms, selection of the better one, the final fit and its
report (out-of-fold metrics, calibration, validation curves, fairness, risk-level table, feature importance,
points table) and metadata."""
from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import sklearn
from sklearn.model_selection import StratifiedKFold

from apps.finance import metrics
from apps.finance.fields import FIELDS_BY_NAME, MODEL_INPUTS, PROTECTED_FIELDS, normalise_category
from core.curves import validation_curves

from .artifact import FORMAT_NAME, FORMAT_VERSION
from .binning import _WoeModel
from .errors import ScorecardError
from .forest import _ForestModel
from .inputs import _training_arrays, data_sha256
from .scale import RISK_LABELS, ScoreScale, check_cutoffs
from .scoring import TrainedScorecard

ALGORITHMS = ("random_forest", "woe_logistic")


def _make(algorithm: str, seed: int):
    if algorithm == "random_forest":
        return _ForestModel(seed=seed)
    if algorithm == "woe_logistic":
        return _WoeModel(seed=seed)
    raise ScorecardError(f"unknown algorithm {algorithm!r}; choose one of {', '.join(ALGORITHMS)} or 'auto'")


def _cross_validate(X: pd.DataFrame, y: np.ndarray, algorithm: str, seed: int, folds: int) -> dict:
    oof = np.zeros(len(y))
    fold_auc = []
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    for train_idx, test_idx in splitter.split(X, y):
        model = _make(algorithm, seed).fit(X.iloc[train_idx].reset_index(drop=True), y[train_idx])
        oof[test_idx] = model.predict_pd(X.iloc[test_idx].reset_index(drop=True))
        fold_auc.append(metrics.auc(y[test_idx], oof[test_idx]))
    return {"oof": oof, "fold_auc": [round(a, 4) for a in fold_auc],
            "auc_mean": round(float(np.mean(fold_auc)), 4), "auc_std": round(float(np.std(fold_auc)), 4)}


def cross_validate(df: pd.DataFrame, *, algorithm: str = "random_forest", seed: int = 0,
                   folds: int = 5) -> dict:
    """Stratified k-fold cross-validation (shuffled with ``seed``) of one algorithm on a labelled frame.

    Returns ``{"algorithm", "folds", "seed", "fold_auc": [...], "auc_mean", "auc_std", "ks", "gini",
    "brier", "auc_pooled"}``; KS, Gini and Brier are computed on the pooled out-of-fold predictions.
    """
    X, y, _ = _training_arrays(df)
    cv = _cross_validate(X, y, algorithm, seed, folds)
    pooled = metrics.summary(y, cv["oof"])
    return {"algorithm": algorithm, "folds": folds, "seed": seed, "fold_auc": cv["fold_auc"],
            "auc_mean": cv["auc_mean"], "auc_std": cv["auc_std"], "auc_pooled": pooled["auc"],
            "ks": pooled["ks"], "gini": pooled["gini"], "brier": pooled["brier"]}


def train_scorecard(df: pd.DataFrame, *, seed: int = 0, algorithm: str = "auto",
                    cutoffs: Sequence[float] | None = None, scale: ScoreScale | None = None,
                    folds: int = 5) -> TrainedScorecard:
    """Train a scorecard on a labelled frame (the 18 model inputs + ``creditability`` good/bad).

    ``algorithm`` is ``"auto"`` (cross-validate both, keep the higher mean AUC), ``"random_forest"``
    or ``"woe_logistic"``. Deterministic for a given ``seed``. The report's headline metrics, the
    calibration curve and the fairness report use the out-of-fold predictions; in-sample metrics are
    reported apart. Raises :class:`TrainingDataError` naming the row and column of bad data.
    """
    started = time.perf_counter()
    cutoffs = check_cutoffs(cutoffs)
    scale = scale or ScoreScale()
    X, y, protected = _training_arrays(df)
    candidates = ALGORITHMS if algorithm == "auto" else (algorithm,)
    for name in candidates:
        _make(name, seed)  # validates the name before any work
    cv = {name: _cross_validate(X, y, name, seed, folds) for name in candidates}
    best = max(candidates, key=lambda name: cv[name]["auc_mean"])
    model = _make(best, seed).fit(X, y)
    oof = cv[best]["oof"]
    train_pd, train_impacts = model.explain(X, scale.factor)

    headline = metrics.summary(y, oof)
    headline.update({"cv_auc": cv[best]["auc_mean"], "cv_auc_std": cv[best]["auc_std"],
                     "cv_fold_auc": cv[best]["fold_auc"], "folds": folds})
    groups = {"age_band": ([metrics.age_band(a) for a in X["age_in_years"]],
                           [b[0] for b in metrics.AGE_BANDS])}
    for name in PROTECTED_FIELDS:
        if name in protected.columns:
            values = [normalise_category(name, v) if isinstance(v, str) else None for v in protected[name]]
            groups[name] = (values, list(FIELDS_BY_NAME[name].categories))
    fairness = {
        "basis": f"out-of-fold predictions of {folds}-fold cross-validation",
        "approval_rule": f"approved when PD < {cutoffs[1]} (not high risk)",
        "disparate_impact_flag_below": metrics.DISPARATE_IMPACT_FLAG,
        "groups": {attr: metrics.group_report(vals, y, oof, cutoffs[1], order)
                   for attr, (vals, order) in groups.items()},
    }
    importance = np.clip(train_impacts, 0, None).mean(axis=0)
    report = {
        "algorithm": best,
        "selection": {name: {k: v for k, v in cv[name].items() if k != "oof"} for name in candidates},
        "metrics": {"out_of_fold": headline, "in_sample": metrics.summary(y, train_pd)},
        "calibration": metrics.calibration_points(y, oof),
        "curves": validation_curves(y, oof, basis=f"out_of_fold_{folds}_folds"),
        "fairness": fairness,
        "risk_levels": _level_table(y, oof, cutoffs),
        "feature_importance": sorted(({"field": n, "mean_points_lost": round(float(v), 2)}
                                      for n, v in zip(MODEL_INPUTS, importance, strict=True)),
                                     key=lambda r: -r["mean_points_lost"]),
        "points_table": model.points_table(scale) if isinstance(model, _WoeModel) else None,
    }
    metadata = {
        "format": FORMAT_NAME, "format_version": FORMAT_VERSION, "algorithm": best,
        "algorithm_params": model.describe(), "features": list(MODEL_INPUTS),
        "excluded_protected": list(PROTECTED_FIELDS),
        "trained_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "data_sha256": data_sha256(df), "rows": int(len(y)), "bad_rate": round(float(y.mean()), 4),
        "seed": seed, "sklearn_version": sklearn.__version__,
        "score_scale": asdict(scale), "cutoffs": list(cutoffs),
        "metrics": {k: headline[k] for k in ("auc", "ks", "gini", "brier", "cv_auc", "cv_auc_std")},
        "in_sample_auc": report["metrics"]["in_sample"]["auc"],
    }
    metadata["training_seconds"] = round(time.perf_counter() - started, 2)
    return TrainedScorecard(model, scale=scale, cutoffs=cutoffs, metadata=metadata, report=report)


def _level_table(y: np.ndarray, pd_: np.ndarray, cutoffs: tuple[float, float]) -> list[dict]:
    levels = np.digitize(pd_, cutoffs) + 1
    return [{"risk_level": lvl, "risk_label": RISK_LABELS[lvl], "count": int((levels == lvl).sum()),
             "observed_bad_rate": round(float(y[levels == lvl].mean()), 4) if (levels == lvl).any() else None}
            for lvl in (1, 2, 3)]
