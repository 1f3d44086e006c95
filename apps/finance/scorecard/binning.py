"""The ``woe_logistic`` algorithm, the classic points scorecard: every field binned (categories as they
are, numbers by a small decision tree), bins replaced by their weight of evidence (WOE), a logistic
regression weighing them; reason codes are the points lost against the field's best bin.

Same interface as :class:`.forest._ForestModel`: ``fit``, ``predict_pd``, ``explain``, ``describe``.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.tree import DecisionTreeClassifier

from apps.finance.fields import FIELDS_BY_NAME, MODEL_INPUTS

from .scale import ScoreScale


class _WoeModel:
    """Weight-of-evidence binned logistic regression: the classic points scorecard."""
    __module__ = "apps.finance.scorecard"  # the path stored artifacts name: see artifact.py

    name = "woe_logistic"

    def __init__(self, seed: int = 0, C: float = 0.1, max_bins: int = 4, min_bin_share: float = 0.05,
                 smoothing: float = 0.5):
        self.seed = seed
        self.params = {"C": C, "max_bins": max_bins, "min_bin_share": min_bin_share, "smoothing": smoothing}

    def _bin_index(self, name: str, col: pd.Series) -> np.ndarray:
        """Bin index of every row (-1 when missing or an unseen category)."""
        if FIELDS_BY_NAME[name].kind == "categorical":
            lookup = {c: i for i, c in enumerate(self.bins_[name])}
            return np.array([lookup.get(v, -1) if isinstance(v, str) else -1 for v in col], dtype=int)
        values = col.to_numpy(dtype=float)
        idx = np.searchsorted(self.edges_[name], values, side="left")
        return np.where(np.isnan(values), -1, idx)

    def fit(self, X: pd.DataFrame, y: np.ndarray) -> _WoeModel:
        a = self.params["smoothing"]
        n_bad, n_good = y.sum(), len(y) - y.sum()
        self.edges_, self.bins_, self.woe_ = {}, {}, {}
        for name in MODEL_INPUTS:
            f = FIELDS_BY_NAME[name]
            if f.kind == "categorical":
                self.bins_[name] = list(f.categories)
            else:
                tree = DecisionTreeClassifier(
                    max_leaf_nodes=self.params["max_bins"], random_state=self.seed,
                    min_samples_leaf=max(1, int(self.params["min_bin_share"] * len(y))),
                ).fit(X[[name]].to_numpy(dtype=float), y)
                edges = np.unique(tree.tree_.threshold[tree.tree_.feature >= 0])
                self.edges_[name] = edges
                self.bins_[name] = _interval_labels(edges)
            idx = self._bin_index(name, X[name])
            woe = np.zeros(len(self.bins_[name]))
            for b in range(len(woe)):
                m = idx == b
                if m.any():
                    bad = y[m].sum()
                    woe[b] = math.log(((bad + a) / (n_bad + a)) / ((m.sum() - bad + a) / (n_good + a)))
            self.woe_[name] = woe
        W = self._woe_matrix(X)
        self.lr_ = LogisticRegression(C=self.params["C"], max_iter=2000).fit(W, y)
        beta = self.lr_.coef_[0]
        # the best (lowest-risk) contribution of each field over its observed bins
        self.best_ = np.array([min(beta[j] * self.woe_[n]) for j, n in enumerate(MODEL_INPUTS)])
        return self

    def _woe_matrix(self, X: pd.DataFrame) -> np.ndarray:
        W = np.zeros((len(X), len(MODEL_INPUTS)))
        for j, name in enumerate(MODEL_INPUTS):
            idx = self._bin_index(name, X[name])
            W[:, j] = np.where(idx >= 0, self.woe_[name][np.clip(idx, 0, None)], 0.0)
        return W

    def predict_pd(self, X: pd.DataFrame) -> np.ndarray:
        """Probabilities of default."""
        return self.lr_.predict_proba(self._woe_matrix(X))[:, 1]

    def explain(self, X: pd.DataFrame, factor: float) -> tuple[np.ndarray, np.ndarray]:
        """(PD, points lost per field against that field's best bin)."""
        W = self._woe_matrix(X)
        pd_ = self.lr_.predict_proba(W)[:, 1]
        return pd_, factor * (W * self.lr_.coef_[0] - self.best_)

    def points_table(self, scale: ScoreScale) -> list[dict]:
        """Attribute points per bin: the score is the sum of an applicant's bin points."""
        beta, b0 = self.lr_.coef_[0], float(self.lr_.intercept_[0])
        share = (scale.offset - scale.factor * b0) / len(MODEL_INPUTS)
        table = []
        for j, name in enumerate(MODEL_INPUTS):
            for label, woe in zip(self.bins_[name], self.woe_[name], strict=True):
                table.append({"field": name, "bin": label, "woe": round(float(woe), 4),
                              "points": round(share - scale.factor * beta[j] * woe, 1)})
        return table

    def describe(self) -> dict:
        """Algorithm parameters for the metadata."""
        return {"algorithm": self.name, **self.params, "missing_value_woe": 0.0,
                "coefficients": {n: round(float(c), 4)
                                 for n, c in zip(MODEL_INPUTS, self.lr_.coef_[0], strict=True)},
                "intercept": round(float(self.lr_.intercept_[0]), 4)}


def _interval_labels(edges: np.ndarray) -> list[str]:
    if len(edges) == 0:
        return ["all"]
    labels = [f"<= {edges[0]:g}"]
    labels += [f"{lo:g} < x <= {hi:g}" for lo, hi in zip(edges[:-1], edges[1:], strict=True)]
    labels.append(f"> {edges[-1]:g}")
    return labels
