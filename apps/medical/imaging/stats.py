"""Exact streaming image statistics: running moments (count, mean, std, min, max) and a streaming
histogram whose bin width doubles as the range grows (width 1 for integer data such as HU, so
percentiles and tissue fractions are exact for typical CT/MR)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

PERCENTILES = (1, 5, 25, 50, 75, 95, 99)
_CHUNK = 1 << 20


class StreamingHistogram:
    """Fixed number of bins whose width (a power of two) doubles as values outside the range arrive."""

    def __init__(self, nbins: int = 4096) -> None:
        self.nbins = nbins
        self.width = 0.0
        self.lo = 0.0
        self.counts: np.ndarray | None = None

    def _covers(self, a: float, b: float) -> bool:
        return a >= self.lo and b < self.lo + self.nbins * self.width

    def add(self, values: np.ndarray) -> None:
        """Count a 1-D float array (finite values only)."""
        if values.size == 0:
            return
        vmin, vmax = float(values.min()), float(values.max())
        if self.counts is None:
            integer = bool(np.all(np.equal(np.mod(values[:4096], 1), 0)))
            span = max(vmax - vmin, 1e-9)
            width = 2.0 ** math.ceil(math.log2(span / (self.nbins - 2)))
            self.width = max(width, 1.0) if integer else width
            self.lo = math.floor(vmin / self.width) * self.width
            self.counts = np.zeros(self.nbins, dtype=np.int64)
        if not self._covers(vmin, vmax):
            self._grow(min(vmin, self.lo), max(vmax, self.lo + self.nbins * self.width - self.width))
        idx = np.floor((values - self.lo) / self.width).astype(np.int64)
        np.clip(idx, 0, self.nbins - 1, out=idx)
        self.counts += np.bincount(idx, minlength=self.nbins)

    def _grow(self, a: float, b: float) -> None:
        assert self.counts is not None
        width = self.width
        while True:
            width *= 2
            lo = math.floor(a / width) * width
            if a >= lo and b < lo + self.nbins * width:
                break
        edges = self.lo + np.arange(self.nbins) * self.width
        new_idx = np.floor((edges - lo) / width + 1e-9).astype(np.int64)
        counts = np.zeros(self.nbins, dtype=np.int64)
        np.add.at(counts, np.clip(new_idx, 0, self.nbins - 1), self.counts)
        self.counts, self.lo, self.width = counts, lo, width

    def percentile(self, q: float) -> float | None:
        """Value below which ``q`` percent of the counted values fall (exact for width-1 integer data)."""
        if self.counts is None or self.counts.sum() == 0:
            return None
        cum = np.cumsum(self.counts)
        target = q / 100.0 * cum[-1]
        i = int(np.searchsorted(cum, max(target, 1), side="left"))
        if self.width == 1.0:
            return float(self.lo + i)
        before = cum[i - 1] if i else 0
        frac = (target - before) / max(self.counts[i], 1)
        return float(self.lo + (i + min(max(frac, 0.0), 1.0)) * self.width)

    def fraction_between(self, a: float, b: float) -> float:
        """Fraction of counted values in [a, b) (bins assigned by their lower edge)."""
        if self.counts is None or self.counts.sum() == 0:
            return 0.0
        edges = self.lo + np.arange(self.nbins) * self.width
        mask = (edges >= a) & (edges < b)
        return float(self.counts[mask].sum() / self.counts.sum())

    def summary(self, vmin: float, vmax: float, bins: int = 16) -> dict[str, list[float]]:
        """Re-bin into ``bins`` equal bins over [vmin, vmax]: edges and fractions."""
        if self.counts is None or self.counts.sum() == 0:
            return {"edges": [], "fractions": []}
        edges_out = np.linspace(vmin, vmax if vmax > vmin else vmin + 1, bins + 1)
        lower = self.lo + np.arange(self.nbins) * self.width
        which = np.clip(np.searchsorted(edges_out, lower, side="right") - 1, 0, bins - 1)
        counts = np.bincount(which, weights=self.counts, minlength=bins)
        total = counts.sum()
        return {
            "edges": [round(float(e), 3) for e in edges_out],
            "fractions": [round(float(c / total), 4) for c in counts],
        }


class RunningStats:
    """Exact count/mean/std/min/max over chunks (Chan's parallel update), plus a histogram."""

    def __init__(self) -> None:
        self.n = 0
        self.mean = 0.0
        self.m2 = 0.0
        self.min = math.inf
        self.max = -math.inf
        self.hist = StreamingHistogram()

    def add(self, values: np.ndarray) -> None:
        """Add a 1-D array of finite values."""
        for start in range(0, values.size, _CHUNK):
            chunk = values[start : start + _CHUNK].astype(np.float64)
            if chunk.size == 0:
                continue
            n_b = chunk.size
            mean_b = float(chunk.mean())
            m2_b = float(((chunk - mean_b) ** 2).sum())
            delta = mean_b - self.mean
            total = self.n + n_b
            self.mean += delta * n_b / total
            self.m2 += m2_b + delta * delta * self.n * n_b / total
            self.n = total
            self.min = min(self.min, float(chunk.min()))
            self.max = max(self.max, float(chunk.max()))
            self.hist.add(chunk)

    def as_dict(self) -> dict[str, Any]:
        """JSON-serialisable summary."""
        if self.n == 0:
            return {"pixels": 0}
        out: dict[str, Any] = {
            "pixels": self.n,
            "min": round(self.min, 3),
            "max": round(self.max, 3),
            "mean": round(self.mean, 3),
            "std": round(math.sqrt(self.m2 / self.n), 3),
        }
        for q in PERCENTILES:
            p = self.hist.percentile(q)
            out[f"p{q}"] = None if p is None else round(p, 3)
        return out
