"""Assembly: the accumulated readings ordered, de-duplicated, split per machine and regularised."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from .accumulate import _Accumulator
from .cleaning import _constant_sensors, _fill_missing, _flag_outliers, _resolutions, _settings_vary
from .errors import IngestError
from .options import IngestOptions
from .reporter import _Reporter
from .result import IngestResult, TimeAxis


def _time_label(t: float, axis: TimeAxis) -> Any:
    if axis == "cycle":
        return int(t) if float(t).is_integer() else float(t)
    return pd.Timestamp(int(t)).isoformat()


def _assemble(
    acc: _Accumulator,
    rep: _Reporter,
    opts: IngestOptions,
    *,
    fmt: str,
    source: str,
    delimiter: str | None,
    settings: list[str],
    labels: list[str],
    units: dict[str, str],
    row_of: Any,
) -> IngestResult:
    axis = acc.time_axis
    if not acc.m:
        raise IngestError("no readable readings (empty file or every row rejected)", source=source,
                          errors=rep.errors)
    m = np.concatenate(acc.m)
    t = np.concatenate(acc.t)
    s = np.concatenate(acc.s)
    v = np.concatenate(acc.v)
    r = np.concatenate(acc.r)
    if len(m) == 0:
        rep.finish()
        raise IngestError("no readable readings (every row or value was rejected)", source=source,
                          errors=rep.errors)
    mnames = list(acc.machine_codes)
    snames = list(acc.sensor_codes)

    # out-of-order: a reading whose time is earlier than one already seen for its machine (file order)
    order = np.lexsort((r, m))
    m_o, t_o, r_o = m[order], t[order], r[order]
    run_max = pd.Series(t_o).groupby(m_o).cummax().to_numpy()
    prev_max = np.concatenate([[np.nan], run_max[:-1]])
    same_m = np.concatenate([[False], m_o[1:] == m_o[:-1]])
    late = same_m & (t_o < prev_max)
    if late.any():
        idx = np.flatnonzero(late)
        rows_late = np.unique(r_o[idx])
        for mc in np.unique(m_o[idx]):
            sel = idx[m_o[idx] == mc]
            first = sel[0]
            rep.add(
                "warning", "out_of_order",
                f"machine {mnames[mc]}: {len(np.unique(r_o[sel]))} row(s) out of time order (first at row "
                f"{row_of(r_o[first])}, time {_time_label(t_o[first], axis)}); reordered",
                row=int(row_of(r_o[first])), machine=mnames[mc], count=len(np.unique(r_o[sel])),
            )
        rep.counts["out_of_order_rows"] = int(len(rows_late))

    # sort by machine, time, sensor, file row; keep the last of each (machine, time, sensor)
    order = np.lexsort((r, s, t, m))
    m, t, s, v, r = m[order], t[order], s[order], v[order], r[order]
    nxt_same = np.concatenate([(m[1:] == m[:-1]) & (t[1:] == t[:-1]) & (s[1:] == s[:-1]), [False]])
    if nxt_same.any():
        idx = np.flatnonzero(nxt_same)
        for i in idx[: rep.limit]:
            j = i + 1
            while j + 1 < len(m) and nxt_same[j]:
                j += 1
            rep.add(
                "warning", "duplicate",
                f"machine {mnames[m[i]]}, sensor {snames[s[i]]}, {axis} {_time_label(t[i], axis)}: "
                f"duplicated at row {row_of(r[i])} and row {row_of(r[j])}; the last (row {row_of(r[j])}, "
                f"value {v[j]:g}) is kept",
                row=int(row_of(r[i])), machine=mnames[m[i]], sensor=snames[s[i]],
            )
        if len(idx) > rep.limit:
            rep.add("warning", "duplicate", "", count=len(idx) - rep.limit)
        keep = ~nxt_same
        m, t, s, v, r = m[keep], t[keep], s[keep], v[keep], r[keep]

    # sensors vs settings vs labels
    all_names = snames
    setting_set, label_set = set(settings), set(labels)
    sensors = [n for n in all_names if n not in setting_set and n not in label_set]
    ordered_cols = (sensors + [n for n in all_names if n in setting_set]
                    + [n for n in all_names if n in label_set])
    col_pos = np.array([ordered_cols.index(n) for n in all_names], dtype=np.int64)
    n_cols = len(ordered_cols)

    # split per machine
    bounds = np.flatnonzero(np.diff(m)) + 1
    starts = np.concatenate([[0], bounds])
    ends = np.concatenate([bounds, [len(m)]])
    series: dict[str, pd.DataFrame] = {}
    sampling: dict[str, dict[str, Any]] = {}
    missing_filled = 0
    first_seen = {name: i for i, name in enumerate(mnames)}
    for a, b in sorted(zip(starts, ends, strict=True), key=lambda ab: first_seen[mnames[m[ab[0]]]]):
        mid = mnames[m[a]]
        tt, ss, vv = t[a:b], s[a:b], v[a:b]
        times, inv = np.unique(tt, return_inverse=True)
        mat = np.full((len(times), n_cols), np.nan)
        mat[inv, col_pos[ss]] = vv
        df, info = _regularise(times, mat, ordered_cols, axis, mid, rep, opts)
        sampling[mid] = info
        series[mid] = df
    # constant and stuck sensors, missing fill, outliers
    constant = _constant_sensors(series, sensors, rep)
    fill_cols = [c for c in ordered_cols if c not in label_set]
    resolution = _resolutions(series, [c for c in sensors if c not in constant])
    outliers: list[dict[str, Any]] = []
    settings_vary = _settings_vary(series, [c for c in ordered_cols if c in setting_set],
                                   threads=opts.threads)
    if settings_vary:
        rep.add("warning", "outliers_skipped",
                "operating settings vary: outlier detection is skipped (sensor levels change with the "
                "regime)")
    for mid, df in series.items():
        missing_filled += _fill_missing(df, fill_cols, mid, rep, opts)
        if not settings_vary:
            _flag_outliers(df, [c for c in sensors if c not in constant], resolution, mid, axis, rep, opts,
                           outliers)
    for name in mnames:
        if name not in series:
            rep.add("warning", "machine_without_readings",
                    f"machine {name}: no usable reading (every row or value was rejected)", machine=name)
    rep.counts["missing_filled"] = missing_filled
    rep.counts["outliers"] = len(outliers)
    rep.counts.setdefault("non_numeric", 0)
    rep.counts.setdefault("duplicate", 0)
    for mid in series:
        for c in sensors:
            if series[mid][c].isna().all():
                rep.add("warning", "sensor_missing_for_machine",
                        f"machine {mid}: no readings at all for sensor {c}; left empty", machine=mid,
                        sensor=c)
    rep.finish()
    final_units = {k: u for k, u in units.items() if k in set(ordered_cols)}
    return IngestResult(
        series=series,
        sensors=sensors,
        time_axis=axis,
        format=fmt,
        source=source,
        delimiter=delimiter,
        settings=[n for n in all_names if n in setting_set],
        label_columns=[n for n in all_names if n in label_set],
        constant_sensors=constant,
        units=final_units,
        rows=acc.rows,
        readings=acc.readings,
        readings_kept=int(len(v)),
        counts=dict(rep.counts),
        errors=rep.errors,
        warnings=rep.warnings,
        outliers=outliers,
        sampling=sampling,
    )


def _regularise(
    times: np.ndarray, mat: np.ndarray, cols: list[str], axis: TimeAxis, mid: str, rep: _Reporter,
    opts: IngestOptions,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Build the machine's frame on a regular axis (cycles: fill gaps; timestamps: resample)."""
    info: dict[str, Any] = {"points": int(len(times)), "resampled": False}
    if axis == "cycle":
        # whole cycles within float precision (beyond 2**53 a cycle number is no longer exact)
        integral = bool(np.all(times == np.round(times))) and bool(np.all(np.abs(times) < 2.0**53))
        if integral and len(times) > 1:
            span = int(times[-1] - times[0]) + 1  # the whole-cycle grid, sized before it is built
            n_missing = span - len(times)
            if 0 < n_missing and span <= opts.max_grid_factor * len(times) + 10:
                full = np.arange(times[0], times[-1] + 1)
                gaps = np.flatnonzero(np.diff(times) > 1)
                g = gaps[0]
                rep.add("warning", "cycle_gap",
                        f"machine {mid}: {n_missing} missing cycle(s) inserted (first after cycle "
                        f"{int(times[g])}); values interpolated", machine=mid, count=n_missing)
                big = np.full((len(full), mat.shape[1]), np.nan)
                big[(times - times[0]).astype(np.int64)] = mat
                times, mat = full, big
            elif n_missing > 0:
                rep.add("warning", "cycle_gap",
                        f"machine {mid}: cycles are sparse ({len(times)} of {span}); kept as they are",
                        machine=mid)
        index = pd.Index(times.astype(np.int64) if integral else times, name="cycle")
        info["interval"] = 1
        return pd.DataFrame(mat, index=index, columns=cols), info
    # timestamps (ns as float)
    if len(times) < 3 or not opts.resample:
        index = pd.DatetimeIndex(times.astype(np.int64).astype("datetime64[ns]"), name="timestamp")
        return pd.DataFrame(mat, index=index, columns=cols), info
    diffs = np.diff(times)
    step = float(np.median(diffs))
    if step >= 1e9:
        step = float(np.round(step / 1e9) * 1e9)
    info["interval_s"] = step / 1e9
    irregular = bool(np.max(np.abs(diffs - step)) > 0.01 * step)
    if not irregular:
        index = pd.DatetimeIndex(times.astype(np.int64).astype("datetime64[ns]"), name="timestamp")
        return pd.DataFrame(mat, index=index, columns=cols), info
    span = times[-1] - times[0]
    n_grid = int(np.floor(span / step)) + 1
    if n_grid > opts.max_grid_factor * len(times) + 10:
        step = span / (len(times) - 1)
        n_grid = len(times)
        rep.add("warning", "sparse_time", f"machine {mid}: very uneven timestamps; resampled to {len(times)} "
                f"points at the mean interval ({step / 1e9:g} s)", machine=mid)
        info["interval_s"] = step / 1e9
    grid = times[0] + np.arange(n_grid) * step
    out = np.full((n_grid, mat.shape[1]), np.nan)
    for j in range(mat.shape[1]):
        ok = ~np.isnan(mat[:, j])
        if ok.sum() >= 2:
            out[:, j] = np.interp(grid, times[ok], mat[ok, j], left=np.nan, right=np.nan)
        elif ok.sum() == 1:
            out[np.argmin(np.abs(grid - times[ok][0])), j] = mat[ok, j][0]
    long_gaps = int(np.sum(diffs > 3 * step))
    rep.add("warning", "resampled",
            f"machine {mid}: irregular timestamps resampled to a regular {step / 1e9:g} s grid "
            f"({len(times)} readings → {n_grid} points; {long_gaps} gap(s) longer than 3 intervals "
            "interpolated)",
            machine=mid)
    rep.counts["resampled_machines"] = rep.counts.get("resampled_machines", 0) + 1
    info.update(resampled=True, grid_points=n_grid, long_gaps=long_gaps)
    index = pd.DatetimeIndex(np.round(grid).astype(np.int64).astype("datetime64[ns]"), name="timestamp")
    return pd.DataFrame(out, index=index, columns=cols), info
