"""Points scale and risk levels: score = offset + factor·ln(good:bad odds); PD cut-offs to levels 1-3."""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .errors import ScorecardError

BASE_POINTS = 600.0
BASE_ODDS = 50.0  # good:bad odds at BASE_POINTS
PDO = 20.0  # points to double the odds
DEFAULT_CUTOFFS = (0.15, 0.40)  # low < 0.15 <= medium < 0.40 <= high (see docs/finance_model.md)
RISK_LABELS = {1: "low", 2: "medium", 3: "high"}
_EPS = 1e-4  # PD is clipped to [_EPS, 1 - _EPS] for scores and log-odds


@dataclass(frozen=True)
class ScoreScale:
    """Points scale: ``base_points`` at good:bad odds ``base_odds``; ``pdo`` points double the odds."""
    __module__ = "apps.finance.scorecard"  # the path stored artifacts name: see artifact.py

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
