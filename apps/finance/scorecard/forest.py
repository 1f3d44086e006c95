"""The ``random_forest`` algorithm: a random forest on one-hot categories, the numbers and the monthly
repayment, Platt-calibrated on its out-of-bag predictions, with exact per-field (Saabas) reason codes.

Algorithms share one interface: ``fit(X, y)``, ``predict_pd(X)``, ``explain(X, factor)`` -> (PD, impact
points per input field), ``describe()``; see also :mod:`.binning`.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression

from apps.finance.fields import FIELDS_BY_NAME, MODEL_INPUTS

_CHUNK = 256  # rows per attribution block in predict_many (bounds memory)


def _neutral_value(col: pd.Series, y: np.ndarray):
    """The imputation value of a field: the median of a number; for a category, the common one
    (at least 5 rows and 2 % of rows) whose bad rate is closest to the overall bad rate, so that a
    missing value reads as average risk (the forest's analogue of WOE 0), never as the safest case."""
    known = col.notna().to_numpy()
    if col.dtype != object:
        return float(col[known].median())
    values, bad = col[known].to_numpy(dtype=object), y[known]
    overall = float(bad.mean())
    best, best_gap = None, math.inf
    for cat in sorted(set(values)):
        mask = values == cat
        if mask.sum() < max(5, 0.02 * len(values)):
            continue
        gap = abs(float(bad[mask].mean()) - overall)
        if gap < best_gap:
            best, best_gap = cat, gap
    if best is None:
        counts = pd.Series(values).value_counts()
        best = sorted(counts[counts == counts.max()].index)[0]
    return best


def _logit(p: np.ndarray, eps: float = 1e-3) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=float), eps, 1 - eps)
    return np.log(p / (1 - p))


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


class _ForestModel:
    """Random forest on one-hot categories + numbers + monthly repayment, Platt-calibrated on OOB."""
    __module__ = "apps.finance.scorecard"  # the path stored artifacts name: see artifact.py

    name = "random_forest"

    def __init__(self, seed: int = 0, n_estimators: int = 300, min_samples_leaf: int = 5,
                 max_features: str | float = 0.1):
        self.seed = seed
        self.params = {"n_estimators": n_estimators, "min_samples_leaf": min_samples_leaf,
                       "max_features": max_features}

    def _design(self, X: pd.DataFrame) -> np.ndarray:
        cols = []
        for name in MODEL_INPUTS:
            f = FIELDS_BY_NAME[name]
            values = X[name].where(X[name].notna(), self.fill_[name])
            if f.kind == "categorical":
                arr = values.to_numpy(dtype=object)
                cols.extend((arr == cat).astype(float) for cat in f.categories)
            else:
                cols.append(values.to_numpy(dtype=float))
        amount = X["credit_amount"].fillna(self.fill_["credit_amount"]).to_numpy(dtype=float)
        months = X["duration_in_month"].fillna(self.fill_["duration_in_month"]).to_numpy(dtype=float)
        cols.append(amount / np.maximum(months, 1.0))
        return np.column_stack(cols).astype(np.float32)

    def _column_fields(self) -> np.ndarray:
        index = []
        for j, name in enumerate(MODEL_INPUTS):
            f = FIELDS_BY_NAME[name]
            index.extend([j] * (len(f.categories) if f.kind == "categorical" else 1))
        index.append(MODEL_INPUTS.index("credit_amount"))  # monthly repayment counts as the amount's
        return np.asarray(index)

    def fit(self, X: pd.DataFrame, y: np.ndarray) -> _ForestModel:
        self.fill_ = {name: _neutral_value(X[name], y) for name in MODEL_INPUTS}
        M = self._design(X)
        self.rf_ = RandomForestClassifier(**self.params, oob_score=True, random_state=self.seed, n_jobs=1)
        self.rf_.fit(M, y)
        oob = self.rf_.oob_decision_function_[:, 1]
        oob = np.where(np.isfinite(oob), oob, float(np.mean(y)))
        cal = LogisticRegression(C=1e4, max_iter=1000).fit(_logit(oob).reshape(-1, 1), y)
        self.cal_a_, self.cal_b_ = float(cal.coef_[0, 0]), float(cal.intercept_[0])
        return self

    def _attribution(self) -> tuple[np.ndarray, np.ndarray, float]:
        """(per-node path contributions by field, node offset of each tree, forest bias), cached.

        Saabas attribution: along a root-to-leaf path every split changes the node's default rate;
        the change is credited to the field of the split column. A leaf's row holds the sum of those
        changes (divided by the tree count), so a forest prediction is exactly the bias (mean root
        rate) plus the per-field sums over the trees' leaves. Built on first use, not pickled.
        """
        cached = getattr(self, "_attr", None)
        if cached is not None:
            return cached
        trees = self.rf_.estimators_
        colfield = self._column_fields()
        blocks, offsets, offset, bias = [], [], 0, 0.0
        for est in trees:
            t = est.tree_
            value = t.value[:, 0, :]
            p = value[:, 1] / value.sum(axis=1)
            bias += p[0]
            contrib = np.zeros((t.node_count, len(MODEL_INPUTS)))
            frontier = np.array([0])
            while frontier.size:
                left, right = t.children_left[frontier], t.children_right[frontier]
                internal = left >= 0
                parents, left, right = frontier[internal], left[internal], right[internal]
                field_of = colfield[t.feature[parents]]
                for kids in (left, right):
                    contrib[kids] = contrib[parents]
                    contrib[kids, field_of] += (p[kids] - p[parents]) / len(trees)
                frontier = np.concatenate([left, right])
            blocks.append(contrib)
            offsets.append(offset)
            offset += t.node_count
        self._attr = (np.vstack(blocks), np.asarray(offsets), bias / len(trees))
        return self._attr

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_attr"] = None  # rebuilt on first use after loading
        return state

    def _calibrate(self, raw: np.ndarray) -> np.ndarray:
        return _sigmoid(self.cal_a_ * _logit(raw) + self.cal_b_)

    def predict_pd(self, X: pd.DataFrame) -> np.ndarray:
        """Calibrated probabilities of default."""
        return self._calibrate(self.rf_.predict_proba(self._design(X))[:, 1])

    def explain(self, X: pd.DataFrame, factor: float) -> tuple[np.ndarray, np.ndarray]:
        """(PD, impact in score points per input field; > 0 means the field raised the risk)."""
        node_contrib, offsets, bias = self._attribution()
        M = np.ascontiguousarray(self._design(X), dtype=np.float32)
        # the trees' own Cython apply: same leaves as rf_.apply without its per-tree joblib overhead
        leaves = np.column_stack([est.tree_.apply(M) for est in self.rf_.estimators_]) + offsets[None, :]
        pds, impacts = [], []
        for start in range(0, len(leaves), _CHUNK):
            contrib = node_contrib[leaves[start:start + _CHUNK]].sum(axis=1)
            raw = bias + contrib.sum(axis=1)
            without = _logit(raw[:, None] - contrib)
            impacts.append(factor * self.cal_a_ * (_logit(raw)[:, None] - without))
            pds.append(self._calibrate(raw))
        return np.concatenate(pds), np.vstack(impacts)

    def describe(self) -> dict:
        """Algorithm parameters for the metadata."""
        return {"algorithm": self.name, **self.params, "calibration": "platt on out-of-bag predictions",
                "calibration_slope": round(self.cal_a_, 4), "calibration_intercept": round(self.cal_b_, 4),
                "imputation": {k: (v if isinstance(v, str) else round(v, 4)) for k, v in self.fill_.items()}}
