"""Model-quality and fairness measures of the credit scorecard (pure numpy/scikit-learn, Django-free).

Every function takes the true labels ``y`` (1 = bad/default, 0 = good) and predicted probabilities of
default ``pd_`` and returns plain JSON-serialisable values, so a training report can be stored as JSON.
"""
from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
from sklearn.metrics import brier_score_loss, roc_auc_score, roc_curve

AGE_BANDS: tuple[tuple[str, float, float], ...] = (
    ("<25", 0, 25), ("25-34", 25, 35), ("35-49", 35, 50), ("50+", 50, float("inf")),
)
DISPARATE_IMPACT_FLAG = 0.8  # the "four-fifths rule": a group approved at < 80 % of the best group's rate


def auc(y: np.ndarray, pd_: np.ndarray) -> float | None:
    """ROC AUC, or None when only one class is present."""
    y = np.asarray(y)
    if len(np.unique(y)) < 2:
        return None
    return float(roc_auc_score(y, pd_))


def ks_statistic(y: np.ndarray, pd_: np.ndarray) -> float | None:
    """Kolmogorov-Smirnov statistic: the largest gap between the bad and good cumulative score curves."""
    y = np.asarray(y)
    if len(np.unique(y)) < 2:
        return None
    fpr, tpr, _ = roc_curve(y, pd_)
    return float(np.max(tpr - fpr))


def brier(y: np.ndarray, pd_: np.ndarray) -> float:
    """Brier score: mean squared error of the probability of default (lower is better)."""
    return float(brier_score_loss(y, pd_))


def summary(y: np.ndarray, pd_: np.ndarray) -> dict:
    """AUC, KS, Gini (2·AUC − 1), Brier score, row count and observed vs mean predicted bad rate."""
    a = auc(y, pd_)
    return {
        "auc": _r(a), "ks": _r(ks_statistic(y, pd_)), "gini": _r(None if a is None else 2 * a - 1),
        "brier": _r(brier(y, pd_)), "rows": int(len(y)),
        "bad_rate": _r(float(np.mean(y))), "mean_pd": _r(float(np.mean(pd_))),
    }


def calibration_points(y: np.ndarray, pd_: np.ndarray, n_bins: int = 10) -> list[dict]:
    """Reliability-curve points: rows sorted by PD into ``n_bins`` equal-count bins.

    Each point: ``{"mean_pd", "observed_bad_rate", "count"}``; a well calibrated model has the two
    rates close in every bin.
    """
    y = np.asarray(y, dtype=float)
    pd_ = np.asarray(pd_, dtype=float)
    order = np.argsort(pd_, kind="stable")
    points = []
    for chunk in np.array_split(order, min(n_bins, len(order))):
        if len(chunk):
            points.append({"mean_pd": _r(float(pd_[chunk].mean())),
                           "observed_bad_rate": _r(float(y[chunk].mean())), "count": int(len(chunk))})
    return points


def age_band(age: float) -> str | None:
    """The fairness-report age band of an age in years (None when missing)."""
    if age is None or not np.isfinite(age):
        return None
    for label, low, high in AGE_BANDS:
        if low <= age < high:
            return label
    return None


def group_report(groups: Sequence, y: np.ndarray, pd_: np.ndarray, approve_below: float,
                 order: Sequence[str] | None = None) -> list[dict]:
    """Per-group fairness figures for one attribute.

    ``groups`` holds each row's group label (None rows are skipped); an applicant is *approved* when
    PD < ``approve_below`` (not high risk). Per group: count, observed bad rate, mean PD, approval rate,
    AUC (when the group has at least 5 bad and 5 good rows) and the disparate-impact ratio: the group's
    approval rate divided by the highest group approval rate, flagged below 0.8.
    """
    groups = np.asarray(groups, dtype=object)
    y = np.asarray(y)
    pd_ = np.asarray(pd_, dtype=float)
    labels = [g for g in (order or sorted({g for g in groups if g is not None})) if g is not None]
    rows = []
    for label in labels:
        mask = groups == label
        n = int(mask.sum())
        if n == 0:
            continue
        yy, pp = y[mask], pd_[mask]
        n_bad = int(yy.sum())
        rows.append({
            "group": str(label), "count": n, "observed_bad_rate": _r(float(yy.mean())),
            "mean_pd": _r(float(pp.mean())), "approval_rate": _r(float(np.mean(pp < approve_below))),
            "auc": _r(auc(yy, pp)) if min(n_bad, n - n_bad) >= 5 else None,
        })
    best = max((r["approval_rate"] for r in rows), default=0.0)
    for r in rows:
        r["disparate_impact"] = _r(r["approval_rate"] / best) if best > 0 else None
        r["flag"] = r["disparate_impact"] is not None and r["disparate_impact"] < DISPARATE_IMPACT_FLAG
    return rows


def render_calibration_plot(points: list[dict], *, title: str = "Calibration",
                            path: str | None = None) -> bytes:
    """A PNG reliability diagram of calibration ``points`` (matplotlib Agg, no pyplot state).

    Returns the PNG bytes, also written to ``path`` when given.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5, 5), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    xs = [p["mean_pd"] for p in points]
    ys = [p["observed_bad_rate"] for p in points]
    top = max([0.05, *xs, *ys]) * 1.05
    ax.plot([0, top], [0, top], linestyle="--", color="grey", label="perfect calibration")
    ax.plot(xs, ys, marker="o", color="#1f5fa8", label="model")
    ax.set_xlim(0, top)
    ax.set_ylim(0, top)
    ax.set_xlabel("mean predicted probability of default")
    ax.set_ylabel("observed default rate")
    ax.set_title(title)
    ax.legend(loc="upper left")
    ax.grid(alpha=0.3)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    data = buf.getvalue()
    if path:
        with open(path, "wb") as fh:
            fh.write(data)
    return data


def _r(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(float(value), digits)
