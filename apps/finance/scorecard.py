"""The credit scorecard: train, explain, apply and serialise (pure Python, Django-free).

Two algorithms, both deterministic for a given ``seed``; ``train_scorecard(algorithm="auto")`` runs
the same stratified 5-fold cross-validation for both and keeps the one with the higher mean AUC:

``random_forest``
    A random forest (300 trees, leaves of at least 5 rows, 10 % of the columns tried per split) on
    one-hot categories, the numeric fields and the derived monthly repayment (credit amount /
    duration), Platt-calibrated on its out-of-bag predictions. Reason codes come from the forest itself: each tree's path is decomposed into the
    change of default probability at every split (Saabas attribution, exact: the contributions plus
    the forest average equal the prediction), summed per field, then converted to score points.
``woe_logistic``
    The classic points scorecard: every field is binned (categories as they are, numbers by a
    4-leaf decision tree), bins are replaced by their weight of evidence, a logistic regression
    (L2, C=0.1) weighs them. Reason codes are the points lost against the field's best bin.

Missing fields (None) are imputed as *average risk*, never as the safest case: the forest uses the
median of a number and, for a category, the common category whose training bad rate is closest to the
overall bad rate; the WOE scorecard uses WOE 0, the population average. Imputed fields are listed in
``missing_fields`` and never cited as reasons. Protected attributes (see :mod:`fields`) are ignored.

Points scale: score = offset + factor·ln(good:bad odds), factor = PDO/ln 2, offset chosen so that
``BASE_POINTS`` (600) means odds of ``BASE_ODDS`` (50:1); every ``PDO`` (20) points doubles the odds.
Risk level from PD cut-offs ``(c1, c2)``: 1 low if PD < c1, 2 medium if c1 ≤ PD < c2, 3 high otherwise.
"""
from __future__ import annotations

import hashlib
import io
import math
import pickle
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

import joblib
import numpy as np
import pandas as pd
import sklearn
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold
from sklearn.tree import DecisionTreeClassifier

from . import metrics
from .fields import FIELDS_BY_NAME, LABEL_FIELD, MODEL_INPUTS, PROTECTED_FIELDS, Field, normalise_category

FORMAT_NAME = "finance-scorecard"
FORMAT_VERSION = 1
BASE_POINTS = 600.0
BASE_ODDS = 50.0  # good:bad odds at BASE_POINTS
PDO = 20.0  # points to double the odds
DEFAULT_CUTOFFS = (0.15, 0.40)  # low < 0.15 <= medium < 0.40 <= high (see docs/finance_model.md)
RISK_LABELS = {1: "low", 2: "medium", 3: "high"}
MAX_REASON_CODES = 4
ALGORITHMS = ("random_forest", "woe_logistic")
MIN_TRAINING_ROWS = 50
_EPS = 1e-4  # PD is clipped to [_EPS, 1 - _EPS] for scores and log-odds
_CHUNK = 256  # rows per attribution block in predict_many (bounds memory)


class ScorecardError(ValueError):
    """Base class of this module's errors; the message says where and what."""


class TrainingDataError(ScorecardError):
    """The training frame is unusable (missing columns, bad values, too few rows or labels)."""


class ScorecardInputError(ScorecardError):
    """An applicant value cannot be scored (wrong type, unknown category, out of bounds)."""


class ModelFormatError(ScorecardError):
    """Serialised model bytes are not a scorecard of the format version this code reads."""


@dataclass(frozen=True)
class ScoreScale:
    """Points scale: ``base_points`` at good:bad odds ``base_odds``; ``pdo`` points double the odds."""

    base_points: float = BASE_POINTS
    base_odds: float = BASE_ODDS
    pdo: float = PDO

    @property
    def factor(self) -> float:
        """Points per unit of natural log-odds."""
        return self.pdo / math.log(2)

    @property
    def offset(self) -> float:
        """Score at even (1:1) odds."""
        return self.base_points - self.factor * math.log(self.base_odds)

    def score(self, pd_: np.ndarray) -> np.ndarray:
        """Integer scores of probabilities of default (higher score = lower risk)."""
        p = np.clip(np.asarray(pd_, dtype=float), _EPS, 1 - _EPS)
        return np.rint(self.offset + self.factor * np.log((1 - p) / p)).astype(int)


# --------------------------------------------------------------------------------------------------
# Input coercion
# --------------------------------------------------------------------------------------------------
def _coerce(f: Field, value, where: str):
    """A clean value of field ``f`` (float or canonical category) or None; raises ScorecardInputError."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, str) and not value.strip():
        return None
    if f.kind == "categorical":
        canon = normalise_category(f.name, value) if isinstance(value, str) else None
        if canon is None:
            raise ScorecardInputError(f"{where}, field '{f.name}': {value!r} is not one of the allowed "
                                      f"values: {', '.join(repr(c) for c in f.categories)}")
        return canon
    if isinstance(value, bool):
        raise ScorecardInputError(f"{where}, field '{f.name}': expected a number, got {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ScorecardInputError(f"{where}, field '{f.name}': expected a number, got {value!r}")
    if not math.isfinite(number):
        raise ScorecardInputError(f"{where}, field '{f.name}': expected a finite number, got {value!r}")
    low_ok = f.minimum is None or (number > f.minimum if f.exclusive_minimum else number >= f.minimum)
    if not low_ok or (f.maximum is not None and number > f.maximum):
        raise ScorecardInputError(f"{where}, field '{f.name}': {value!r} is outside the allowed range "
                                  f"{_range_text(f)}")
    return number


def _range_text(f: Field) -> str:
    low = f"> {f.minimum:g}" if f.exclusive_minimum else f">= {f.minimum:g}"
    return f"({low} and <= {f.maximum:g})"


def applicants_to_frame(applicants: Sequence[dict]) -> tuple[pd.DataFrame, list[list[str]]]:
    """The model-input frame of applicant dicts and each row's missing model inputs.

    Numbers become floats (NaN when missing), categories their canonical spelling (None when
    missing). Keys that are not model inputs (protected attributes, ``application_id`` ...) are
    ignored. Raises :class:`ScorecardInputError` naming the applicant index and field.
    """
    columns: dict[str, list] = {name: [] for name in MODEL_INPUTS}
    missing: list[list[str]] = []
    text_cache: dict[tuple[str, str], object] = {}
    for i, applicant in enumerate(applicants):
        if not isinstance(applicant, dict):
            raise ScorecardInputError(f"applicant {i}: expected a dict of fields, got {type(applicant).__name__}")
        row_missing = []
        for name in MODEL_INPUTS:
            raw = applicant.get(name)
            if isinstance(raw, str):  # repeated texts (categories) are checked once per call
                key = (name, raw)
                if key not in text_cache:
                    text_cache[key] = _coerce(FIELDS_BY_NAME[name], raw, f"applicant {i}")
                value = text_cache[key]
            else:
                value = _coerce(FIELDS_BY_NAME[name], raw, f"applicant {i}")
            if value is None:
                row_missing.append(name)
            columns[name].append(value)
        missing.append(row_missing)
    frame = pd.DataFrame({
        name: (pd.array(col, dtype="float64") if FIELDS_BY_NAME[name].kind == "numeric"
               else pd.Series(col, dtype=object))
        for name, col in columns.items()
    })
    for name in MODEL_INPUTS:
        if FIELDS_BY_NAME[name].kind == "numeric":
            frame[name] = frame[name].astype(float)
    return frame, missing


def _training_arrays(df: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray, pd.DataFrame]:
    """(model-input frame, labels 1=bad, protected-attribute frame) of a labelled training frame."""
    if not isinstance(df, pd.DataFrame):
        raise TrainingDataError(f"training data must be a pandas DataFrame, got {type(df).__name__}")
    absent = [c for c in (*MODEL_INPUTS, LABEL_FIELD) if c not in df.columns]
    if absent:
        raise TrainingDataError(f"training data lacks required column(s): {', '.join(absent)}")
    df = df.reset_index(drop=True)
    labels = df[LABEL_FIELD].astype(str).str.strip().str.lower()
    bad_label = ~labels.isin(["good", "bad"])
    if bad_label.any():
        i = int(np.flatnonzero(bad_label.to_numpy())[0])
        raise TrainingDataError(f"row {i + 2}, column '{LABEL_FIELD}': {df[LABEL_FIELD].iloc[i]!r} is not "
                                "'good' or 'bad'")
    y = (labels == "bad").to_numpy(dtype=int)
    X = pd.DataFrame(index=df.index)
    for name in MODEL_INPUTS:
        f = FIELDS_BY_NAME[name]
        col = df[name]
        if f.kind == "categorical":
            mapping = {v: (normalise_category(name, v) if isinstance(v, str) else None) for v in col.unique()}
            clean = col.map(mapping)
        else:
            clean = pd.to_numeric(col, errors="coerce")
        bad = clean.isna().to_numpy()
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise TrainingDataError(f"row {i + 2}, column '{name}': {col.iloc[i]!r} is missing or not a valid "
                                    f"{'category' if f.kind == 'categorical' else 'number'}")
        X[name] = clean.astype(object if f.kind == "categorical" else float)
    if len(X) < MIN_TRAINING_ROWS:
        raise TrainingDataError(f"training data has {len(X)} rows; at least {MIN_TRAINING_ROWS} are needed")
    if min(y.sum(), len(y) - y.sum()) < 10:
        raise TrainingDataError("training data needs at least 10 'good' and 10 'bad' rows")
    protected = df[[c for c in PROTECTED_FIELDS if c in df.columns]].copy()
    return X, y, protected


def data_sha256(df: pd.DataFrame) -> str:
    """SHA-256 of the training frame's inputs and label as CSV (catalogue column order, no index)."""
    cols = [c for c in (*MODEL_INPUTS, *PROTECTED_FIELDS, LABEL_FIELD) if c in df.columns]
    return hashlib.sha256(df[cols].to_csv(index=False).encode("utf-8")).hexdigest()


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


# --------------------------------------------------------------------------------------------------
# Algorithms: fit(X, y), predict_pd(X), explain(X, factor) -> (pd, impact points per input field)
# --------------------------------------------------------------------------------------------------
class _ForestModel:
    """Random forest on one-hot categories + numbers + monthly repayment, Platt-calibrated on OOB."""

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


class _WoeModel:
    """Weight-of-evidence binned logistic regression: the classic points scorecard."""

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
                "coefficients": {n: round(float(c), 4) for n, c in zip(MODEL_INPUTS, self.lr_.coef_[0], strict=True)},
                "intercept": round(float(self.lr_.intercept_[0]), 4)}


def _interval_labels(edges: np.ndarray) -> list[str]:
    if len(edges) == 0:
        return ["all"]
    labels = [f"<= {edges[0]:g}"]
    labels += [f"{lo:g} < x <= {hi:g}" for lo, hi in zip(edges[:-1], edges[1:], strict=True)]
    labels.append(f"> {edges[-1]:g}")
    return labels


def _make(algorithm: str, seed: int):
    if algorithm == "random_forest":
        return _ForestModel(seed=seed)
    if algorithm == "woe_logistic":
        return _WoeModel(seed=seed)
    raise ScorecardError(f"unknown algorithm {algorithm!r}; choose one of {', '.join(ALGORITHMS)} or 'auto'")


# --------------------------------------------------------------------------------------------------
# Cross-validation and training
# --------------------------------------------------------------------------------------------------
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


def cross_validate(df: pd.DataFrame, *, algorithm: str = "random_forest", seed: int = 0, folds: int = 5) -> dict:
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


def check_cutoffs(cutoffs: Sequence[float] | None) -> tuple[float, float]:
    """Validated PD cut-offs ``(c1, c2)`` with 0 < c1 < c2 < 1 (defaults when None)."""
    if cutoffs is None:
        return DEFAULT_CUTOFFS
    try:
        c1, c2 = (float(c) for c in cutoffs)
    except (TypeError, ValueError):
        raise ScorecardError(f"cut-offs must be two probabilities (c1, c2), got {cutoffs!r}")
    if not 0 < c1 < c2 < 1:
        raise ScorecardError(f"cut-offs must satisfy 0 < c1 < c2 < 1, got ({c1}, {c2})")
    return c1, c2


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
    groups = {"age_band": ([metrics.age_band(a) for a in X["age_in_years"]], [b[0] for b in metrics.AGE_BANDS])}
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


# --------------------------------------------------------------------------------------------------
# The trained scorecard
# --------------------------------------------------------------------------------------------------
_UNITS = {
    "duration_in_month": ("{:g} months", "{:g} 个月"),
    "credit_amount": ("{:,.0f} DM", "{:,.0f} 马克"),
    "age_in_years": ("{:g} years", "{:g} 岁"),
    "installment_rate_in_percentage_of_disposable_income": ("class {:g} of 4", "第 {:g} 档（共 4 档）"),
    "present_residence_since": ("class {:g} of 4", "第 {:g} 档（共 4 档）"),
    "number_of_existing_credits_at_this_bank": ("{:g}", "{:g} 笔"),
    "number_of_people_being_liable_to_provide_maintenance_for": ("{:g}", "{:g} 人"),
}


def _value_text(name: str, value, lang: str) -> str:
    f = FIELDS_BY_NAME[name]
    if f.kind == "categorical":
        return f.category_label(value, lang)
    en, zh = _UNITS.get(name, ("{:g}", "{:g}"))
    return (zh if lang.startswith("zh") else en).format(value)


class TrainedScorecard:
    """A trained, explainable scorecard: ``predict``, ``predict_many``, ``metadata``, ``report``."""

    def __init__(self, model, *, scale: ScoreScale, cutoffs: tuple[float, float], metadata: dict, report: dict):
        self._model = model
        self.scale = scale
        self.cutoffs = cutoffs
        self.metadata = metadata
        self.report = report

    @property
    def algorithm(self) -> str:
        """``random_forest`` or ``woe_logistic``."""
        return self._model.name

    def risk_level(self, pd_: float, cutoffs: Sequence[float] | None = None) -> int:
        """1, 2 or 3 for a probability of default under ``cutoffs`` (the model's own when None)."""
        c1, c2 = check_cutoffs(cutoffs) if cutoffs is not None else self.cutoffs
        return 1 if pd_ < c1 else 2 if pd_ < c2 else 3

    def predict(self, applicant: dict, *, cutoffs: Sequence[float] | None = None) -> dict:
        """Score one applicant (field name -> value; None or absent = missing). See :meth:`predict_many`."""
        return self.predict_many([applicant], cutoffs=cutoffs)[0]

    def predict_many(self, applicants: Sequence[dict], *, cutoffs: Sequence[float] | None = None) -> list[dict]:
        """Score many applicants at once.

        Each result: ``{"probability_of_default": float, "score": int, "risk_level": 1|2|3,
        "risk_label": "low"|"medium"|"high", "reason_codes": [{"code", "field", "text_en", "text_zh",
        "impact"}], "missing_fields": [...]}``. Reason codes are the up to four provided fields that
        raised this applicant's risk most; ``impact`` is in score points. Raises
        :class:`ScorecardInputError` for values that cannot be scored.
        """
        c1, c2 = check_cutoffs(cutoffs) if cutoffs is not None else self.cutoffs
        if not applicants:
            return []
        X, missing = applicants_to_frame(applicants)
        pd_, impacts = self._model.explain(X, self.scale.factor)
        pd_ = np.clip(pd_, _EPS, 1 - _EPS)
        scores = self.scale.score(pd_)
        levels = np.digitize(pd_, (c1, c2)) + 1
        values = {name: X[name].to_numpy(dtype=object) for name in MODEL_INPUTS}
        results = []
        for i in range(len(X)):
            row_missing = missing[i]
            results.append({
                "probability_of_default": round(float(pd_[i]), 4),
                "score": int(scores[i]),
                "risk_level": int(levels[i]),
                "risk_label": RISK_LABELS[int(levels[i])],
                "reason_codes": self._reasons(values, i, impacts[i], row_missing),
                "missing_fields": list(row_missing),
            })
        return results

    def _reasons(self, values: dict[str, np.ndarray], i: int, impacts: np.ndarray, missing: list[str]) -> list[dict]:
        reasons = []
        for j in np.argsort(-impacts, kind="stable"):
            name = MODEL_INPUTS[j]
            if impacts[j] <= 0.05 or len(reasons) == MAX_REASON_CODES:
                break
            if name in missing:
                continue
            f = FIELDS_BY_NAME[name]
            reasons.append({
                "code": f.reason_code, "field": name,
                "text_en": f"{f.reason_en}: {_value_text(name, values[name][i], 'en')}",
                "text_zh": f"{f.reason_zh}：{_value_text(name, values[name][i], 'zh')}",
                "impact": round(float(impacts[j]), 1),
            })
        return reasons

    def calibration_plot_png(self, path: str | None = None) -> bytes:
        """PNG reliability diagram of the out-of-fold calibration curve."""
        title = f"Calibration ({self.algorithm}, out-of-fold)"
        return metrics.render_calibration_plot(self.report["calibration"], title=title, path=path)


# --------------------------------------------------------------------------------------------------
# Serialisation
# --------------------------------------------------------------------------------------------------
def dump(model: TrainedScorecard) -> bytes:
    """Serialise a trained scorecard (joblib, compressed) with its format name and version."""
    if not isinstance(model, TrainedScorecard):
        raise ScorecardError(f"dump() expects a TrainedScorecard, got {type(model).__name__}")
    buf = io.BytesIO()
    joblib.dump({"format": FORMAT_NAME, "format_version": FORMAT_VERSION, "model": model}, buf, compress=3)
    return buf.getvalue()


def load(data: bytes) -> TrainedScorecard:
    """Deserialise :func:`dump` output; refuses other formats or versions with :class:`ModelFormatError`.

    Only load bytes this platform wrote itself (they are a pickle).
    """
    if not isinstance(data, bytes | bytearray) or not data:
        raise ModelFormatError("model data is empty or not bytes")
    try:
        payload = joblib.load(io.BytesIO(bytes(data)))
    except (pickle.UnpicklingError, EOFError, ValueError, KeyError, AttributeError, ImportError,
            IndexError, TypeError, OSError) as exc:
        raise ModelFormatError(f"model data cannot be read as a {FORMAT_NAME} file: {exc}") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT_NAME:
        raise ModelFormatError(f"model data is not a {FORMAT_NAME} file")
    version = payload.get("format_version")
    if version != FORMAT_VERSION:
        raise ModelFormatError(f"model format version {version!r} is not supported (this code reads version "
                               f"{FORMAT_VERSION}); retrain the model with train_scorecard")
    model = payload.get("model")
    if not isinstance(model, TrainedScorecard):
        raise ModelFormatError("model data does not contain a TrainedScorecard")
    return model
