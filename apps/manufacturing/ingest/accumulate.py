"""Row accumulation: parsed chunks (long or wide) turned into coded reading arrays."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from .columns import _Columns
from .errors import IngestError
from .reporter import _Reporter
from .result import TimeAxis


class _Accumulator:
    """Global code tables and the growing reading arrays (machine, time, sensor, value, row)."""

    def __init__(self, time_axis: TimeAxis, rep: _Reporter, source: str, decimal: str = ".") -> None:
        self.time_axis = time_axis
        self.decimal = decimal
        self.rep = rep
        self.source = source
        self.machine_codes: dict[str, int] = {}
        self.sensor_codes: dict[str, int] = {}
        self.m: list[np.ndarray] = []
        self.t: list[np.ndarray] = []
        self.s: list[np.ndarray] = []
        self.v: list[np.ndarray] = []
        self.r: list[np.ndarray] = []
        self.rows = 0
        self.readings = 0
        self.numeric_time: str | None = None  # None: undecided; "no", "epoch_s", "epoch_ms"

    def codes(self, table: dict[str, int], values: pd.Series) -> np.ndarray:
        """Global codes of text values (stripped); -1 for missing or blank ones."""
        codes, uniques = pd.factorize(values, sort=False, use_na_sentinel=True)
        lut = np.empty(len(uniques) + 1, dtype=np.int32)
        lut[-1] = -1  # the NA sentinel -1 picks this slot
        for i, u in enumerate(uniques):
            key = _text_key(u)
            lut[i] = -1 if key == "" else table.setdefault(key, len(table))
        return lut[codes]

    def sensor_code(self, name: str) -> int:
        return self.sensor_codes.setdefault(name, len(self.sensor_codes))

    def parse_time(self, col: pd.Series, rows: np.ndarray, machines: np.ndarray) -> np.ndarray:
        """Times as float64 (cycles) or int64 ns (timestamps); NaN / INT64 min where unreadable."""
        if self.time_axis == "cycle":
            t = pd.to_numeric(col, errors="coerce").to_numpy(dtype=float)
            bad = ~np.isfinite(t) & col.notna().to_numpy()
            self._bad_time(bad, col, rows, machines, "is not a cycle number")
            self._bad_time(col.isna().to_numpy(), col, rows, machines, "is empty")
            return t
        if self.numeric_time is None:
            self.numeric_time = self._numeric_time_mode(col)
        if self.numeric_time == "steps":
            self.time_axis = "cycle"
            return self.parse_time(col, rows, machines)
        if self.numeric_time in ("epoch_s", "epoch_ms"):
            num = pd.to_numeric(col, errors="coerce")
            unit = "s" if self.numeric_time == "epoch_s" else "ms"
            ts = pd.to_datetime(num, errors="coerce", utc=True, unit=unit)
            text = col.astype("string")
        else:
            text = col.astype("string")
            ts = pd.to_datetime(text, errors="coerce", utc=True)
        failed = ts.isna().to_numpy() & text.notna().to_numpy()
        if failed.any():
            retry = pd.to_datetime(text[failed], errors="coerce", utc=True, format="mixed")
            ts = ts.copy()
            ts[failed] = retry
        out = ts.dt.tz_localize(None).astype("datetime64[ns]").to_numpy().view(np.int64).astype(float)
        nat = ts.isna().to_numpy()
        out[nat] = np.nan
        self._bad_time(nat & text.notna().to_numpy(), col, rows, machines, "is not a readable timestamp")
        self._bad_time(text.isna().to_numpy(), col, rows, machines, "is empty")
        return out

    def _numeric_time_mode(self, col: pd.Series) -> str:
        """Decide, on the first chunk, how a timestamp column of plain numbers is read."""
        present = col.dropna()
        if len(present) == 0:
            return "no"
        num = pd.to_numeric(present, errors="coerce")
        if num.isna().mean() > 0.5:
            return "no"
        med = float(num.median())
        if 1e8 <= med < 1e11:
            self.rep.add("warning", "numeric_time",
                         "the time column holds numbers; read as Unix epoch seconds (UTC)")
            return "epoch_s"
        if 1e11 <= med < 1e14:
            self.rep.add("warning", "numeric_time",
                         "the time column holds numbers; read as Unix epoch milliseconds (UTC)")
            return "epoch_ms"
        self.rep.add("warning", "numeric_time",
                     "the time column holds plain numbers; they are read as cycles (steps)")
        return "steps"

    def _bad_time(self, mask: np.ndarray, col: pd.Series, rows: np.ndarray, machines: np.ndarray,
                  what: str) -> None:
        if not mask.any():
            return
        idx = np.flatnonzero(mask)
        for i in idx[: self.rep.limit]:
            self.rep.add(
                "error", "bad_time", f"row {{row}}: {col.name} {str(col.iloc[i])!r} {what}; row dropped",
                row=int(rows[i]), machine=self.machine_name(int(machines[i])), sensor=None,
            )
        if len(idx) > self.rep.limit:
            self.rep.add("error", "bad_time", "", count=len(idx) - self.rep.limit)

    def numeric(self, col: pd.Series, rows: np.ndarray, machines: np.ndarray, sensor_of: Any) -> np.ndarray:
        """Column values as float64; non-numeric ones become NaN and are reported."""
        if pd.api.types.is_numeric_dtype(col.dtype) and not pd.api.types.is_bool_dtype(col.dtype):
            return col.to_numpy(dtype=float, na_value=np.nan)
        text = col
        if self.decimal == ",":
            text = text.astype("string").str.replace(",", ".", regex=False)
        vals = pd.to_numeric(text, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        bad = np.isnan(vals) & text.notna().to_numpy()
        if bad.any():
            stripped = text[bad].astype("string").str.strip()
            blank = (stripped == "").to_numpy(dtype=bool, na_value=True) | stripped.str.lower().isin(
                ["nan", "na", "n/a", "null", "none", "-"]
            ).to_numpy(dtype=bool, na_value=True)
            idx = np.flatnonzero(bad)[~blank]
            n = len(idx)
            if n:
                for i in idx[: self.rep.limit]:
                    sensor = sensor_of(i)
                    self.rep.add(
                        "error", "non_numeric",
                        f"row {{row}}, sensor {sensor}: value {str(text.iloc[i])!r} is not a number; dropped",
                        row=int(rows[i]), machine=self.machine_name(int(machines[i])), sensor=sensor,
                    )
                if n > self.rep.limit:
                    self.rep.add("error", "non_numeric", "", count=n - self.rep.limit)
        return vals

    def machine_name(self, code: int) -> str:
        if not hasattr(self, "_mnames") or len(self._mnames) != len(self.machine_codes):
            self._mnames = list(self.machine_codes)
        return self._mnames[code]

    def push(self, m: np.ndarray, t: np.ndarray, s: np.ndarray, v: np.ndarray, r: np.ndarray) -> None:
        keep = ~np.isnan(v) & ~np.isnan(t)
        self.m.append(m[keep].astype(np.int32))
        self.t.append(t[keep])
        self.s.append(s[keep].astype(np.int32))
        self.v.append(v[keep])
        self.r.append(r[keep].astype(np.int64))


def _text_key(u: Any) -> str:
    if isinstance(u, (float, np.floating)):
        if np.isnan(u):
            return ""
        if float(u).is_integer():
            return str(int(u))
    return str(u).strip()


def _machine_column(chunk: pd.DataFrame, col: str, rows: np.ndarray,
                    acc: _Accumulator) -> tuple[np.ndarray, np.ndarray]:
    """Returns (valid row mask, machine codes for valid rows); rows without machine id are reported."""
    all_codes = acc.codes(acc.machine_codes, chunk[col])
    empty = all_codes < 0
    if not empty.any():
        return np.ones(len(chunk), dtype=bool), all_codes
    blank_line = chunk[empty].isna().all(axis=1).to_numpy()
    bad = np.zeros(len(chunk), dtype=bool)
    bad[np.flatnonzero(empty)[~blank_line]] = True
    for i in np.flatnonzero(bad)[: acc.rep.limit]:
        acc.rep.add("error", "no_machine", f"row {{row}}: {col} is empty; row dropped", row=int(rows[i]))
    if bad.sum() > acc.rep.limit:
        acc.rep.add("error", "no_machine", "", count=int(bad.sum()) - acc.rep.limit)
    valid = ~empty
    return valid, all_codes[valid]


def _consume_long(chunk: pd.DataFrame, cols: _Columns, acc: _Accumulator, units: dict[str, str]) -> None:
    rows = chunk.index.to_numpy(dtype=np.int64)
    acc.rows += len(chunk)
    valid, mcodes = _machine_column(chunk, cols.machine, rows, acc)
    chunk = chunk[valid]
    rows = rows[valid]
    assert cols.sensor is not None and cols.value is not None
    scodes = acc.codes(acc.sensor_codes, chunk[cols.sensor])
    no_sensor = scodes < 0
    if no_sensor.any():
        for i in np.flatnonzero(no_sensor)[: acc.rep.limit]:
            acc.rep.add("error", "no_sensor", f"row {{row}}: {cols.sensor} is empty; reading dropped",
                        row=int(rows[i]), machine=acc.machine_name(int(mcodes[i])))
        if no_sensor.sum() > acc.rep.limit:
            acc.rep.add("error", "no_sensor", "", count=int(no_sensor.sum()) - acc.rep.limit)
        keep = ~no_sensor
        chunk, rows, mcodes, scodes = chunk[keep], rows[keep], mcodes[keep], scodes[keep]
    names = list(acc.sensor_codes)
    t = acc.parse_time(chunk[cols.time], rows, mcodes)
    vals = acc.numeric(chunk[cols.value], rows, mcodes, lambda i: names[scodes[i]])
    acc.readings += len(chunk)
    if cols.uom is not None:
        pairs = pd.DataFrame({"s": scodes, "u": chunk[cols.uom].astype("string").to_numpy()}).dropna()
        for sc, u in pairs.drop_duplicates("s").itertuples(index=False):
            units.setdefault(names[int(sc)], str(u).strip())
    acc.push(mcodes, t, scodes, vals, rows)


def _consume_wide(
    chunk: pd.DataFrame, cols: _Columns, acc: _Accumulator, first: bool
) -> None:
    layout_decimal = acc.decimal
    rows = chunk.index.to_numpy(dtype=np.int64)
    acc.rows += len(chunk)
    valid, mcodes = _machine_column(chunk, cols.machine, rows, acc)
    chunk = chunk[valid]
    rows = rows[valid]
    t = acc.parse_time(chunk[cols.time], rows, mcodes)
    value_cols = [*cols.sensors, *cols.settings, *cols.labels]
    if first:
        for c in list(value_cols):
            col = chunk[c]
            if col.notna().any() and not pd.api.types.is_numeric_dtype(col.dtype):
                probe = col
                if layout_decimal == ",":
                    probe = col.astype("string").str.replace(",", ".", regex=False)
                if pd.to_numeric(probe, errors="coerce").notna().sum() == 0:
                    acc.rep.add("warning", "non_numeric_column",
                                f"column {c!r} holds no numbers; it is not a sensor and is ignored", sensor=c)
                    for group in (cols.sensors, cols.settings, cols.labels):
                        if c in group:
                            group.remove(c)
                    cols.ignored.append(c)
        if not cols.sensors:
            raise IngestError("no numeric sensor columns", source=acc.source, missing=["sensor"])
        value_cols = [*cols.sensors, *cols.settings, *cols.labels]
    n = len(chunk)
    for c in value_cols:
        name = cols.sensor_names[c]
        code = acc.sensor_code(name)
        vals = acc.numeric(chunk[c], rows, mcodes, lambda _i, name=name: name)
        acc.readings += int(chunk[c].notna().sum())
        acc.push(mcodes, t, np.full(n, code, dtype=np.int32), vals, rows)
