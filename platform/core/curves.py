"""Validation curves of a trained probability model, small enough to store in its metrics JSON
(pure numpy, Django-free; the apps' training code calls :func:`validation_curves`, pages draw them with
``{% validation_curves %}`` from ``core_charts``).

Stored form (``metrics["curves"]``)::

    {"rows": 1000, "positives": 300, "basis": "out_of_fold",
     "roc": {"fpr": [0.0, ..., 1.0], "tpr": [0.0, ..., 1.0], "auc": 0.78},
     "reliability": [{"mean_predicted": 0.04, "observed_rate": 0.03, "count": 100}, ...]}
"""
from __future__ import annotations

import numpy as np

ROC_MAX_POINTS = 50
RELIABILITY_BINS = 10


def roc_points(y, score, *, max_points: int = ROC_MAX_POINTS) -> dict:
    """The ROC curve of scores ``score`` (higher = more likely positive) against labels ``y`` (1/0).

    One point per distinct score threshold, from (0, 0) to (1, 1), then at most ``max_points`` of them
    kept, evenly spread along the curve (both ends always kept). ``auc`` is the trapezoidal area of the
    full curve. Needs both classes: raises ``ValueError`` otherwise.
    """
    y = np.asarray(y, dtype=float).ravel()
    score = np.asarray(score, dtype=float).ravel()
    if len(y) != len(score):
        raise ValueError(f"{len(y)} labels but {len(score)} scores")
    positives = float(y.sum())
    negatives = float(len(y) - positives)
    if positives == 0 or negatives == 0:
        raise ValueError("a ROC curve needs both classes")
    order = np.argsort(-score, kind="stable")
    s, t = score[order], y[order]
    last_of_tie = np.r_[np.nonzero(np.diff(s))[0], len(s) - 1]
    tps = np.cumsum(t)[last_of_tie]
    fps = (last_of_tie + 1) - tps
    tpr = np.r_[0.0, tps / positives]
    fpr = np.r_[0.0, fps / negatives]
    auc = float(np.trapezoid(tpr, fpr)) if hasattr(np, "trapezoid") else float(np.trapz(tpr, fpr))
    keep = _spread(fpr + tpr, max(int(max_points), 2))
    return {"fpr": [round(float(v), 4) for v in fpr[keep]], "tpr": [round(float(v), 4) for v in tpr[keep]],
            "auc": round(auc, 4)}


def _spread(path: np.ndarray, count: int) -> np.ndarray:
    """Indices of at most ``count`` points spread evenly along a non-decreasing ``path`` (ends kept)."""
    if len(path) <= count:
        return np.arange(len(path))
    targets = np.linspace(path[0], path[-1], count)
    idx = np.clip(np.searchsorted(path, targets, side="left"), 0, len(path) - 1)
    idx = np.unique(np.r_[0, idx, len(path) - 1])
    return idx if len(idx) <= count else np.r_[idx[: count - 1], idx[-1]]


def reliability_bins(y, probability, *, bins: int = RELIABILITY_BINS) -> list[dict]:
    """Reliability-curve points: rows sorted by predicted probability into ``bins`` equal-count bins;
    each ``{"mean_predicted", "observed_rate", "count"}`` (the counts sum to the rows)."""
    y = np.asarray(y, dtype=float).ravel()
    p = np.asarray(probability, dtype=float).ravel()
    if len(y) != len(p):
        raise ValueError(f"{len(y)} labels but {len(p)} probabilities")
    order = np.argsort(p, kind="stable")
    points = []
    for chunk in np.array_split(order, min(int(bins), len(order))) if len(order) else []:
        if len(chunk):
            points.append({"mean_predicted": round(float(p[chunk].mean()), 4),
                           "observed_rate": round(float(y[chunk].mean()), 4), "count": int(len(chunk))})
    return points


def validation_curves(y, probability, *, score=None, basis: str = "out_of_fold",
                      max_points: int = ROC_MAX_POINTS, bins: int = RELIABILITY_BINS) -> dict | None:
    """Both curves of held-out predictions, as stored under ``metrics["curves"]``; None when the labels
    hold one class only (no ROC curve exists). ``score`` ranks rows for the ROC curve when it is not the
    probability itself (an uncalibrated decision function: same ranking, finer ties)."""
    y = np.asarray(y, dtype=float).ravel()
    if len(y) == 0 or y.min() == y.max():
        return None
    return {"rows": int(len(y)), "positives": int(y.sum()), "basis": basis,
            "roc": roc_points(y, probability if score is None else score, max_points=max_points),
            "reliability": reliability_bins(y, probability, bins=bins)}
