"""Cleaning the per-machine series: constant/stuck sensors, missing values, outliers."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd

from .options import IngestOptions
from .reporter import _Reporter
from .result import TimeAxis


def _settings_vary(series: dict[str, pd.DataFrame], settings: list[str], *, threads: int | None = 1) -> bool:
    """True when the operating settings form several distinct regimes (not just noise); the regime
    search (k-means) runs on ``threads`` OpenMP threads."""
    if not settings:
        return False
    from apps.manufacturing.features import find_regimes

    vals = np.vstack([df[settings].to_numpy(dtype=float) for df in series.values()])
    vals = vals[np.isfinite(vals).all(axis=1)]
    return find_regimes(vals, settings, threads=threads) is not None


def _constant_sensors(series: dict[str, pd.DataFrame], sensors: list[str], rep: _Reporter) -> list[str]:
    """Sensors that never change over the fleet (warned, returned); per-machine stuck sensors are warned."""
    if not sensors:
        return []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns
        stats = []
        for mid, df in series.items():
            x = df[sensors].to_numpy(dtype=float)
            stats.append((mid, np.nanmin(x, axis=0), np.nanmax(x, axis=0), np.sum(~np.isnan(x), axis=0)))
        lo = np.nanmin(np.vstack([st[1] for st in stats]), axis=0)
        hi = np.nanmax(np.vstack([st[2] for st in stats]), axis=0)
    constant: list[str] = []
    for j, c in enumerate(sensors):
        if np.isnan(lo[j]):
            continue
        if hi[j] - lo[j] <= 1e-9 * max(1.0, abs(lo[j])):
            constant.append(c)
            rep.add("warning", "constant_sensor",
                    f"sensor {c} never changes (always {lo[j]:g}); excluded from features", sensor=c)
    flat_j = [j for j, c in enumerate(sensors) if c not in constant and not np.isnan(lo[j])]
    discrete: dict[int, bool] = {}
    for mid, mn, mx, cnt in stats:
        for j in flat_j:
            if cnt[j] >= 10 and mx[j] == mn[j]:
                if j not in discrete:
                    vals = np.concatenate([df[sensors[j]].dropna().to_numpy() for df in series.values()])
                    discrete[j] = len(np.unique(vals)) <= 3
                if not discrete[j]:  # a quasi-discrete sensor that sits still is not suspicious
                    rep.add("warning", "stuck_sensor",
                            f"machine {mid}: sensor {sensors[j]} never changes ({mn[j]:g}) while it varies "
                            "on other machines; check the sensor", machine=mid, sensor=sensors[j])
    return constant


def _resolutions(series: dict[str, pd.DataFrame], sensors: list[str],
                 sample: int = 200_000) -> dict[str, float]:
    """Smallest step between distinct values of each sensor (its quantisation), over the fleet
    (sampled)."""
    out: dict[str, float] = {}
    for c in sensors:
        vals = np.concatenate([df[c].to_numpy(dtype=float) for df in series.values()])
        vals = vals[~np.isnan(vals)]
        if len(vals) > sample:
            vals = vals[:: len(vals) // sample + 1]
        d = np.diff(np.unique(vals))
        out[c] = float(d.min()) if len(d) else 0.0
    return out


def _fill_missing(df: pd.DataFrame, cols: list[str], mid: str, rep: _Reporter, opts: IngestOptions) -> int:
    sub = df[cols]
    na = sub.isna()
    n_na = int(na.to_numpy().sum())
    if n_na == 0 or not opts.fill_missing:
        return 0
    all_na = na.all()
    fillable = [c for c in cols if not all_na[c]]
    before = int(na[fillable].to_numpy().sum())
    if before == 0:
        return 0
    filled = sub[fillable].interpolate(method="linear", limit_direction="both")
    df[fillable] = filled
    per = na[fillable].sum()
    worst = per[per > 0].sort_values(ascending=False)
    detail = ", ".join(f"{k}: {int(n)}" for k, n in worst.head(5).items())
    rep.add("warning", "missing_values",
            f"machine {mid}: {before} missing value(s) filled by interpolation ({detail})",
            machine=mid, sensor=str(worst.index[0]) if len(worst) else None, count=before)
    return before


def _side_median(x: np.ndarray, half: int, side: str) -> np.ndarray:
    """Median of the ``half`` rows before (``left``) or after (``right``) each row; NaN with < 2
    neighbours."""
    n = x.shape[0]
    edge = x[:1] if side == "left" else x[-1:]
    pad = np.repeat(edge, half, axis=0)
    if side == "left":
        win = np.lib.stride_tricks.sliding_window_view(np.vstack([pad, x]), half, axis=0)[:n]
    else:
        win = np.lib.stride_tricks.sliding_window_view(np.vstack([x, pad]), half, axis=0)[1 : n + 1]
    med = np.median(win, axis=-1)
    if side == "left":
        med[: min(2, n)] = np.nan
    else:
        med[max(n - 2, 0):] = np.nan
    return med


def _flag_outliers(
    df: pd.DataFrame, sensors: list[str], resolution: dict[str, float], mid: str, axis: TimeAxis,
    rep: _Reporter, opts: IngestOptions, out: list[dict[str, Any]],
) -> None:
    if len(df) < 5 or not sensors:
        return
    xv = df[sensors].to_numpy(dtype=float)
    d = np.diff(xv, axis=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        mad = np.nanmedian(np.abs(d - np.nanmedian(d, axis=0)), axis=0)
        centre = np.nanmedian(xv, axis=0)
    floor = np.array([max(2.0 * resolution.get(c, 0.0), 1e-9 * (1.0 + abs(float(centre[j]))))
                      for j, c in enumerate(sensors)])
    scale = np.maximum(1.4826 * mad / np.sqrt(2.0), floor)
    half = max(opts.outlier_window // 2, 2)
    z_left = (xv - _side_median(xv, half, "left")) / scale
    z_right = (xv - _side_median(xv, half, "right")) / scale
    with np.errstate(invalid="ignore"):
        flags = (np.abs(z_left) > opts.outlier_z) & (np.abs(z_right) > opts.outlier_z)
        flags &= np.sign(z_left) == np.sign(z_right)
    if not flags.any():
        return
    z = np.where(np.abs(z_left) < np.abs(z_right), z_left, z_right)
    rr, cc = np.nonzero(flags)
    n = len(xv)
    w = opts.outlier_window // 2
    replaced = xv.copy()
    for i, j in zip(rr, cc, strict=True):
        c = sensors[j]
        at = df.index[i]
        if isinstance(at, pd.Timestamp):
            at_label = at.isoformat()
        else:
            at_label = int(at) if float(at).is_integer() else float(at)
        original = float(xv[i, j])
        neighbours = np.concatenate([xv[max(0, i - w):i, j], xv[i + 1:min(n, i + w + 1), j]])
        replacement = float(np.median(neighbours))
        replaced[i, j] = replacement
        if len(out) < 10_000:
            out.append({"machine": mid, "at": at_label, "sensor": c, "value": original,
                        "z": round(float(z[i, j]), 2),
                        "replaced_with": replacement if opts.outlier_action == "replace" else None})
        rep.add("warning", "outlier",
                f"machine {mid}, sensor {c}, {axis} {at_label}: value {original:g} is an outlier "
                f"(robust z {z[i, j]:+.1f})"
                + (f"; replaced by {replacement:g}" if opts.outlier_action == "replace" else ""),
                machine=mid, sensor=c, at=at_label)
    if opts.outlier_action == "replace":
        df[sensors] = replaced
