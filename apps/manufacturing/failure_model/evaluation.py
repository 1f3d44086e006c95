"""Evaluation: the PHM08 score and engine-grouped cross-validation."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import brier_score_loss, roc_auc_score
from sklearn.model_selection import GroupKFold

from apps.manufacturing.features import DEFAULT_THREADS

from .series import _num
from .training import RUL_CAP, _labelled_frames, train_failure_model


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
    truncated last cycles, and the PHM08 score on the truncated set. A ``threads`` keyword (OpenMP
    threads, see :func:`train_failure_model`) applies to training and scoring alike.
    """
    frames, ruls, _axis = _labelled_frames(df_labelled, "rul")
    mids = list(frames)
    groups = np.arange(len(mids))
    rng = np.random.default_rng(seed)
    all_true, all_pred, all_p, all_y = [], [], [], []
    tr_sets: dict[str, tuple[list, list, list, list]] = {"uniform": ([], [], [], []),
                                                         "official_like": ([], [], [], [])}
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
            steps = model.predict_steps(frame, threads=train_kwargs.get("threads", DEFAULT_THREADS))
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
        both_classes = 0 < ty.sum() < len(ty)
        result[f"auc_{key}_last_cycle"] = round(float(roc_auc_score(ty, tpp)), 4) if both_classes else None
        result[f"nasa_score_{key}_per_engine"] = round(nasa_score(tt, tp) / len(tt), 3)
        result[f"{key}_points"] = int(len(tt))
    result.update({
        "folds": folds,
        "seconds": round(time.perf_counter() - t0, 1),
    })
    return result
