"""Streaming ingestion of sensor data: CSV uploads (long, wide, C-MAPSS) and REST pushes.

Everything here is Django-free. The entry points are :func:`ingest_csv` (a binary file object,
read in chunks, never whole) and :func:`parse_readings` (a list of JSON items for one machine).
Both return an :class:`IngestResult`.

Recognised layouts (column names are matched case-insensitively, spaces and dashes read as ``_``):

* **long**: ``machine_id``, ``timestamp`` or ``cycle``, ``sensor``, ``value`` (optionally ``unit``
  or ``uom``, the unit of measure of the sensor);
* **wide**: ``machine_id``, ``timestamp`` or ``cycle``, one column per sensor. A header such as
  ``temperature (°C)`` names the sensor ``temperature`` with unit ``°C``. Columns called
  ``op_setting_*``/``setting_*`` are operating settings (kept, not sensors); ``rul``, ``failure``,
  ``failed``, ``fault``, ``label``, ``target`` are label columns (kept, not sensors);
* **cmapss**: the NASA C-MAPSS files, no header, 26 numeric columns separated by spaces, loaded
  with the mapping of :mod:`apps.manufacturing.cmapss` (``unit`` → machine_id, ``cycle``,
  ``op_setting_1..3``, ``sensor_1..21``).

The delimiter is detected from the first 64 KiB (comma, semicolon, tab, pipe, or runs of spaces);
with a semicolon or tab delimiter, decimal commas (``1,5``) are understood.

Data rules (each produces counted warnings or errors naming row, machine and sensor):

* non-numeric values are dropped (error; the cell is then treated as missing);
* rows without a machine id or with an unreadable time are dropped (error);
* timestamps out of order are reordered (warning);
* duplicated (machine, time, sensor) readings: **the last one in the file wins** (warning);
* irregular timestamps are resampled to a regular grid at the machine's median sampling interval
  by linear interpolation in time; missing whole cycles are inserted (warning);
* missing values are filled by linear interpolation along the time axis, forward/backward filled
  at the ends (counted, warning per machine);
* outliers (spikes): robust z-scores of a value against the median of the 5 readings before it
  and of the 5 after it; the scale is the noise σ estimated from first differences
  (1.4826·MAD(Δx)/√2, robust to trends), floored at twice the sensor's quantisation step. A value
  more than 6 σ away from *both* sides, in the same direction, is flagged, counted and by default
  replaced by the median of its 10 neighbours (the original is kept in
  :attr:`IngestResult.outliers`). Level shifts and the end-of-life run-up of a failing machine
  are therefore not outliers; the last two readings of a series cannot be judged until later
  readings arrive;
* sensors constant over the whole fleet are warned about and excluded from
  :attr:`IngestResult.feature_sensors`; a sensor that never changes on one machine while varying
  on others is warned about as possibly stuck.

Row numbers are line numbers in the file (the header is row 1). For pushed readings ``row`` is the
0-based index of the item in the payload.
"""

from __future__ import annotations

import csv
import io
import re
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import IO, Any, Literal

import numpy as np
import pandas as pd

from apps.manufacturing import cmapss

TimeAxis = Literal["cycle", "timestamp"]

SNIFF_BYTES = 65536

MACHINE_ALIASES = (
    "machine_id", "machine", "machineid", "machine_no", "asset_id", "asset", "equipment_id",
    "equipment", "device_id", "device", "engine_id", "engine", "unit_id", "unit_number", "unit",
)
CYCLE_ALIASES = ("cycle", "cycles", "time_cycles", "time_in_cycles", "cycle_no", "cycle_number")
TIMESTAMP_ALIASES = ("timestamp", "time", "datetime", "date_time", "ts", "date")
SENSOR_ALIASES = ("sensor", "sensor_id", "sensor_name", "tag", "signal", "channel", "variable")
VALUE_ALIASES = ("value", "reading", "measurement", "val")
UOM_ALIASES = ("uom", "unit_of_measure", "units", "unit")
LABEL_COLUMNS = ("rul", "failure", "failed", "fault", "label", "target")
SETTING_RE = re.compile(r"^(op_|operational_|operating_)?setting(_?\d+)?$|^op_setting_\w+$")
UNIT_IN_HEADER_RE = re.compile(r"^(.*?)\s*[\(\[]([^\)\]]+)[\)\]]\s*$")
DECIMAL_COMMA_RE = re.compile(r"^-?\d+,\d+$")


class IngestError(ValueError):
    """The input cannot be read at all (empty, no machine or time column, over the size limit...).

    ``source`` names the file, ``missing`` lists missing columns when that is the cause, and
    ``errors`` holds per-item errors (for pushes where no item was usable).
    """

    def __init__(
        self,
        message: str,
        *,
        source: str | None = None,
        missing: list[str] | None = None,
        errors: list[dict[str, Any]] | None = None,
    ) -> None:
        self.source = source
        self.missing = missing or []
        self.errors = errors or []
        super().__init__(f"{source}: {message}" if source else message)


@dataclass
class IngestOptions:
    """Tunable limits of ingestion."""

    chunk_rows: int = 250_000
    max_bytes: int | None = None
    max_messages: int = 50
    outlier_z: float = 6.0
    outlier_window: int = 11
    outlier_action: Literal["replace", "keep"] = "replace"
    fill_missing: bool = True
    resample: bool = True
    max_grid_factor: float = 4.0


@dataclass
class IngestResult:
    """What was read: per-machine series plus everything worth telling the user.

    ``series`` maps machine id → DataFrame indexed by ``cycle`` (int or float) or ``timestamp``
    (DatetimeIndex, UTC-naive), regular, sorted, without duplicates; columns are the sensors,
    then operating settings and label columns if the file had them.
    """

    series: dict[str, pd.DataFrame]
    sensors: list[str]
    time_axis: TimeAxis
    format: str
    source: str = "<upload>"
    delimiter: str | None = None
    settings: list[str] = field(default_factory=list)
    label_columns: list[str] = field(default_factory=list)
    constant_sensors: list[str] = field(default_factory=list)
    units: dict[str, str] = field(default_factory=dict)
    rows: int = 0
    readings: int = 0
    readings_kept: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    errors: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[dict[str, Any]] = field(default_factory=list)
    outliers: list[dict[str, Any]] = field(default_factory=list)
    sampling: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def machines(self) -> list[str]:
        """Machine ids in first-seen order."""
        return list(self.series)

    @property
    def feature_sensors(self) -> list[str]:
        """Sensors usable as model inputs (the constant ones removed)."""
        return [s for s in self.sensors if s not in set(self.constant_sensors)]

    def to_long(self) -> pd.DataFrame:
        """All series as one long frame: ``machine_id``, ``cycle``/``timestamp``, ``sensor``, ``value``."""
        frames = []
        for mid, df in self.series.items():
            cols = [c for c in df.columns if c in set(self.sensors) | set(self.settings)]
            long = df[cols].reset_index().melt(id_vars=df.index.name, var_name="sensor", value_name="value")
            long.insert(0, "machine_id", mid)
            frames.append(long.dropna(subset=["value"]))
        if not frames:
            return pd.DataFrame(columns=["machine_id", self.time_axis, "sensor", "value"])
        return pd.concat(frames, ignore_index=True)

    def to_frame(self) -> pd.DataFrame:
        """All series as one wide frame with ``machine_id`` and the time axis as columns."""
        frames = []
        for mid, df in self.series.items():
            f = df.reset_index()
            f.insert(0, "machine_id", mid)
            frames.append(f)
        if not frames:
            return pd.DataFrame(columns=["machine_id", self.time_axis, *self.sensors])
        return pd.concat(frames, ignore_index=True)

    def summary(self) -> dict[str, Any]:
        """A JSON-serialisable summary (no series data)."""
        return {
            "source": self.source,
            "format": self.format,
            "delimiter": self.delimiter,
            "time_axis": self.time_axis,
            "machines": self.machines,
            "sensors": self.sensors,
            "settings": self.settings,
            "label_columns": self.label_columns,
            "constant_sensors": self.constant_sensors,
            "units": self.units,
            "rows": self.rows,
            "readings": self.readings,
            "readings_kept": self.readings_kept,
            "counts": dict(self.counts),
            "errors": self.errors,
            "warnings": self.warnings,
            "outliers": len(self.outliers),
            "sampling": self.sampling,
        }


# --------------------------------------------------------------------------------------------
# messages


class _Reporter:
    """Collects errors and warnings, keeping the first ``limit`` of each code and counting all."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.errors: list[dict[str, Any]] = []
        self.warnings: list[dict[str, Any]] = []
        self.counts: dict[str, int] = {}
        self._listed: dict[tuple[str, str], int] = {}
        self._covered: dict[tuple[str, str], int] = {}

    def add(
        self,
        kind: Literal["error", "warning"],
        code: str,
        message: str,
        *,
        row: Any = None,
        machine: Any = None,
        sensor: Any = None,
        count: int = 1,
        **extra: Any,
    ) -> None:
        self.counts[code] = self.counts.get(code, 0) + count
        key = (kind, code)
        self._listed.setdefault(key, 0)
        self._covered.setdefault(key, 0)
        if not message or self._listed[key] >= self.limit:
            return  # counted, not listed
        self._listed[key] += 1
        self._covered[key] += count  # one message may stand for several items
        item = {"code": code, "row": row, "machine": machine, "sensor": sensor, "message": message, **extra}
        (self.errors if kind == "error" else self.warnings).append(item)

    def finish(self) -> None:
        """Append one line per code saying how many further messages were left out."""
        for (kind, code), covered in self._covered.items():
            total = self.counts.get(code, covered)
            if total > covered:
                item = {
                    "code": code, "row": None, "machine": None, "sensor": None,
                    "message": f"{total - covered} more '{code}' items not listed ({total} in all)",
                }
                (self.errors if kind == "error" else self.warnings).append(item)


# --------------------------------------------------------------------------------------------
# reading the stream


class _HeadThenRest(io.RawIOBase):
    """A raw stream yielding already-read ``head`` bytes, then the rest of ``stream``; enforces a size limit."""

    def __init__(self, head: bytes, stream: IO[bytes], max_bytes: int | None, source: str) -> None:
        self._head = memoryview(head)
        self._pos = 0
        self._stream = stream
        self._max = max_bytes
        self._source = source
        self.total = 0

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:  # type: ignore[override]
        mv = memoryview(b).cast("B")
        if self._pos < len(self._head):
            n = min(len(mv), len(self._head) - self._pos)
            mv[:n] = self._head[self._pos : self._pos + n]
            self._pos += n
        else:
            data = self._stream.read(len(mv))
            if isinstance(data, str):
                data = data.encode("utf-8")
            n = len(data) if data else 0
            if n:
                mv[:n] = data
        self.total += n
        if self._max is not None and self.total > self._max:
            raise IngestError(f"file exceeds the size limit of {self._max:,} bytes", source=self._source)
        return n


@dataclass
class _Layout:
    delimiter: str | None  # None = runs of whitespace
    decimal: str
    encoding: str
    header: bool
    columns: list[str]  # raw header names (or C-MAPSS names)


def _decode(head: bytes) -> tuple[str, str]:
    for enc in ("utf-8-sig", "cp1252", "latin-1"):
        try:
            return head.decode(enc), enc
        except UnicodeDecodeError as exc:
            if enc == "utf-8-sig" and exc.start >= len(head) - 3:  # multi-byte char cut at the end
                return head[: exc.start].decode(enc), enc
    return head.decode("latin-1", errors="replace"), "latin-1"


def _norm(name: str) -> str:
    return re.sub(r"[\s\-]+", "_", str(name).strip().strip('"').strip("'").strip().lower())


def _is_number(text: str, decimal: str = ".") -> bool:
    t = text.strip()
    if decimal == ",":
        t = t.replace(",", ".")
    try:
        float(t)
        return True
    except ValueError:
        return False


def _split(line: str, delimiter: str | None) -> list[str]:
    if delimiter is None:
        return line.split()
    return next(csv.reader([line], delimiter=delimiter))


def _known_names(fields: list[str]) -> int:
    names = {_norm(f) for f in fields}
    known = set(MACHINE_ALIASES) | set(CYCLE_ALIASES) | set(TIMESTAMP_ALIASES) | set(SENSOR_ALIASES) | set(VALUE_ALIASES)
    return len(names & known)


def _sniff(head: bytes, source: str, complete: bool) -> _Layout:
    text, encoding = _decode(head)
    lines = text.splitlines()
    if not complete and lines:
        lines = lines[:-1]  # the last line may be cut
    lines = [ln for ln in lines if ln.strip()][:50]
    if not lines:
        raise IngestError("the file is empty (no rows)", source=source)
    best: tuple[tuple[int, int], str | None] | None = None
    for d in ("\t", ";", ",", "|", None):
        counts = [len(_split(ln, d)) for ln in lines]
        n0 = counts[0]
        if n0 < 2:
            continue
        agree = sum(c == n0 for c in counts) / len(counts)
        if agree < 0.8:
            continue
        score = (_known_names(_split(lines[0], d)), n0)
        if best is None or score > best[0]:
            best = (score, d)
    if best is None:
        raise IngestError(
            "could not detect the delimiter (expected comma, semicolon, tab or spaces between "
            "at least two columns)",
            source=source,
        )
    delimiter = best[1]
    first = [f.strip() for f in _split(lines[0], delimiter)]
    decimal = "."
    if delimiter in ("\t", ";", "|"):
        sample = [f.strip() for ln in lines[1:20] for f in _split(ln, delimiter)]
        if any(DECIMAL_COMMA_RE.match(f) for f in sample):
            decimal = ","
    header = not all(_is_number(f, decimal) for f in first if f != "")
    return _Layout(delimiter, decimal, encoding, header, first)


def _read_chunks(
    raw: _HeadThenRest, layout: _Layout, names: list[str] | None, dtype: dict[str, Any], opts: IngestOptions,
    skipped: list[int],
) -> Iterable[pd.DataFrame]:
    kwargs: dict[str, Any] = {
        "header": 0 if layout.header else None,
        "chunksize": opts.chunk_rows,
        "skip_blank_lines": False,
        "on_bad_lines": "warn",
        "decimal": layout.decimal,
        "encoding": layout.encoding,
        "dtype": dtype,
        "engine": "c",
        "low_memory": False,
    }
    if names is not None:
        kwargs["names"] = names
    if layout.delimiter is None:
        kwargs["sep"] = r"\s+"
    else:
        kwargs["sep"] = layout.delimiter
    buffered = io.BufferedReader(raw, buffer_size=1 << 20)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        reader = pd.read_csv(buffered, **kwargs)
        with reader:
            for chunk in reader:
                for w in caught:
                    m = re.search(r"Skipping line (\d+): (.*)", str(w.message))
                    if m:
                        skipped.append(int(m.group(1)))
                caught.clear()
                yield chunk
        for w in caught:
            m = re.search(r"Skipping line (\d+)", str(w.message))
            if m:
                skipped.append(int(m.group(1)))


# --------------------------------------------------------------------------------------------
# column mapping


@dataclass
class _Columns:
    kind: str  # long | wide | cmapss
    machine: str
    time: str
    time_axis: TimeAxis
    sensor: str | None = None
    value: str | None = None
    uom: str | None = None
    sensors: list[str] = field(default_factory=list)  # wide: raw column names of sensors
    sensor_names: dict[str, str] = field(default_factory=dict)  # raw → clean name
    settings: list[str] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    units: dict[str, str] = field(default_factory=dict)
    ignored: list[str] = field(default_factory=list)


def _map_columns(columns: list[str], source: str, rep: _Reporter) -> _Columns:
    norm = {c: _norm(c) for c in columns}
    by_norm: dict[str, str] = {}
    for c, n in norm.items():
        by_norm.setdefault(n, c)

    def find(aliases: tuple[str, ...], exclude: set[str] | None = None) -> str | None:
        for a in aliases:
            if a in by_norm and (exclude is None or by_norm[a] not in exclude):
                return by_norm[a]
        return None

    machine = find(MACHINE_ALIASES)
    cycle = find(CYCLE_ALIASES)
    stamp = find(TIMESTAMP_ALIASES)
    sensor = find(SENSOR_ALIASES)
    value = find(VALUE_ALIASES)
    missing = []
    if machine is None:
        missing.append("machine_id")
    if cycle is None and stamp is None:
        missing.append("timestamp or cycle")
    if missing:
        raise IngestError(
            f"no {' and no '.join(missing)} column (found columns: {', '.join(columns) or 'none'}); "
            "expected machine_id, timestamp or cycle, then sensor and value (long form) or one "
            "column per sensor (wide form)",
            source=source,
            missing=missing,
        )
    assert machine is not None
    if cycle is not None:
        time, axis = cycle, "cycle"
        if stamp is not None:
            rep.add("warning", "time_column", f"both {cycle!r} and {stamp!r} present; {cycle!r} is used as the time axis")
    else:
        assert stamp is not None
        time, axis = stamp, "timestamp"
    used = {machine, time}
    if stamp is not None and axis == "cycle":
        used.add(stamp)
    if sensor is not None and value is not None:
        used |= {sensor, value}
        uom = find(UOM_ALIASES, exclude=used)
        if uom:
            used.add(uom)
        extra = [c for c in columns if c not in used]
        if extra:
            rep.add("warning", "ignored_columns", f"columns ignored in long form: {', '.join(extra)}")
        return _Columns("long", machine, time, axis, sensor=sensor, value=value, uom=uom, ignored=extra)
    cols = _Columns("wide", machine, time, axis)
    seen: set[str] = set()
    for c in columns:
        if c in used:
            continue
        n = norm[c]
        if n == "" or n.startswith("unnamed:"):
            cols.ignored.append(c)
            continue
        if n in LABEL_COLUMNS:
            cols.labels.append(c)
            cols.sensor_names[c] = n
            continue
        name, unit = c.strip(), None
        m = UNIT_IN_HEADER_RE.match(name)
        if m:
            name, unit = m.group(1).strip(), m.group(2).strip()
        clean = _norm(name) if SETTING_RE.match(_norm(name)) else name
        if clean in seen:
            rep.add("warning", "duplicate_column", f"column {c!r} repeats sensor {clean!r}; ignored", sensor=clean)
            cols.ignored.append(c)
            continue
        seen.add(clean)
        cols.sensor_names[c] = clean
        if unit:
            cols.units[clean] = unit
        if SETTING_RE.match(_norm(name)):
            cols.settings.append(c)
        else:
            cols.sensors.append(c)
    if not cols.sensors:
        raise IngestError(
            "no sensor columns: give either sensor and value columns (long form) or one column per "
            f"sensor (wide form); found columns: {', '.join(columns)}",
            source=source,
            missing=["sensor"],
        )
    return cols


# --------------------------------------------------------------------------------------------
# accumulating readings


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
            self.rep.add("warning", "numeric_time", "the time column holds numbers; read as Unix epoch seconds (UTC)")
            return "epoch_s"
        if 1e11 <= med < 1e14:
            self.rep.add("warning", "numeric_time", "the time column holds numbers; read as Unix epoch milliseconds (UTC)")
            return "epoch_ms"
        self.rep.add("warning", "numeric_time", "the time column holds plain numbers; they are read as cycles (steps)")
        return "steps"

    def _bad_time(self, mask: np.ndarray, col: pd.Series, rows: np.ndarray, machines: np.ndarray, what: str) -> None:
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


def _machine_column(chunk: pd.DataFrame, col: str, rows: np.ndarray, acc: _Accumulator) -> tuple[np.ndarray, np.ndarray]:
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
                probe = col.astype("string").str.replace(",", ".", regex=False) if layout_decimal == "," else col
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


# --------------------------------------------------------------------------------------------
# assembly


def _line_numbers(idx: np.ndarray, header_lines: int, skipped: list[int]) -> np.ndarray:
    """Map 0-based parsed-row indices to 1-based file line numbers, accounting for skipped bad lines."""
    base = idx.astype(np.int64) + 1 + header_lines
    if not skipped:
        return base
    sk = np.sort(np.asarray(skipped, dtype=np.int64))
    k = np.zeros_like(base)
    for _ in range(len(sk) + 1):
        k_new = np.searchsorted(sk, base + k, side="right")
        if np.array_equal(k_new, k):
            break
        k = k_new
    return base + k


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
        raise IngestError("no readable readings (empty file or every row rejected)", source=source, errors=rep.errors)
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
                f"machine {mnames[m[i]]}, sensor {snames[s[i]]}, {axis} {_time_label(t[i], axis)}: duplicated "
                f"at row {row_of(r[i])} and row {row_of(r[j])}; the last (row {row_of(r[j])}, value {v[j]:g}) is kept",
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
    ordered_cols = sensors + [n for n in all_names if n in setting_set] + [n for n in all_names if n in label_set]
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
    settings_vary = _settings_vary(series, [c for c in ordered_cols if c in setting_set])
    if settings_vary:
        rep.add("warning", "outliers_skipped",
                "operating settings vary: outlier detection is skipped (sensor levels change with the regime)")
    for mid, df in series.items():
        missing_filled += _fill_missing(df, fill_cols, mid, rep, opts)
        if not settings_vary:
            _flag_outliers(df, [c for c in sensors if c not in constant], resolution, mid, axis, rep, opts, outliers)
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
                        f"machine {mid}: no readings at all for sensor {c}; left empty", machine=mid, sensor=c)
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
        integral = bool(np.all(times == np.round(times)))
        if integral and len(times) > 1:
            full = np.arange(times[0], times[-1] + 1)
            n_missing = len(full) - len(times)
            if 0 < n_missing and len(full) <= opts.max_grid_factor * len(times) + 10:
                gaps = np.flatnonzero(np.diff(times) > 1)
                g = gaps[0]
                rep.add("warning", "cycle_gap",
                        f"machine {mid}: {n_missing} missing cycle(s) inserted (first after cycle {int(times[g])}); "
                        "values interpolated", machine=mid, count=n_missing)
                big = np.full((len(full), mat.shape[1]), np.nan)
                big[(times - times[0]).astype(np.int64)] = mat
                times, mat = full, big
            elif n_missing > 0:
                rep.add("warning", "cycle_gap",
                        f"machine {mid}: cycles are sparse ({len(times)} of {len(full)}); kept as they are",
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
            f"({len(times)} readings → {n_grid} points; {long_gaps} gap(s) longer than 3 intervals interpolated)",
            machine=mid)
    rep.counts["resampled_machines"] = rep.counts.get("resampled_machines", 0) + 1
    info.update(resampled=True, grid_points=n_grid, long_gaps=long_gaps)
    index = pd.DatetimeIndex(np.round(grid).astype(np.int64).astype("datetime64[ns]"), name="timestamp")
    return pd.DataFrame(out, index=index, columns=cols), info


def _settings_vary(series: dict[str, pd.DataFrame], settings: list[str]) -> bool:
    """True when the operating settings form several distinct regimes (not just noise)."""
    if not settings:
        return False
    from apps.manufacturing.features import find_regimes

    vals = np.vstack([df[settings].to_numpy(dtype=float) for df in series.values()])
    vals = vals[np.isfinite(vals).all(axis=1)]
    return find_regimes(vals, settings) is not None


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
                            f"machine {mid}: sensor {sensors[j]} never changes ({mn[j]:g}) while it varies on "
                            "other machines; check the sensor", machine=mid, sensor=sensors[j])
    return constant


def _resolutions(series: dict[str, pd.DataFrame], sensors: list[str], sample: int = 200_000) -> dict[str, float]:
    """Smallest step between distinct values of each sensor (its quantisation), over the fleet (sampled)."""
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
    """Median of the ``half`` rows before (``left``) or after (``right``) each row; NaN with < 2 neighbours."""
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
        at_label = at.isoformat() if isinstance(at, pd.Timestamp) else (int(at) if float(at).is_integer() else float(at))
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
                f"(robust z {z[i, j]:+.1f})" + (f"; replaced by {replacement:g}" if opts.outlier_action == "replace" else ""),
                machine=mid, sensor=c, at=at_label)
    if opts.outlier_action == "replace":
        df[sensors] = replaced


# --------------------------------------------------------------------------------------------
# public entry points


def ingest_csv(
    fileobj: IO[bytes],
    *,
    source: str = "<upload>",
    options: IngestOptions | None = None,
) -> IngestResult:
    """Read a sensor CSV from a binary file object, in chunks.

    Detects the delimiter, the layout (long, wide, headerless C-MAPSS) and the time axis, then
    validates, orders, de-duplicates, regularises and cleans the series (see the module docstring
    for the rules). Returns an :class:`IngestResult`. Raises :class:`IngestError` when the file is
    empty, over ``options.max_bytes``, has no machine or time column, or no usable reading.
    """
    opts = options or IngestOptions()
    rep = _Reporter(opts.max_messages)
    head = fileobj.read(SNIFF_BYTES)
    if isinstance(head, str):
        head = head.encode("utf-8")
    if not head or not head.strip():
        raise IngestError("the file is empty", source=source)
    if opts.max_bytes is not None and len(head) > opts.max_bytes:
        raise IngestError(f"file exceeds the size limit of {opts.max_bytes:,} bytes", source=source)
    layout = _sniff(head, source, complete=len(head) < SNIFF_BYTES)
    raw = _HeadThenRest(head, fileobj, opts.max_bytes, source)
    skipped: list[int] = []
    units: dict[str, str] = {}
    if not layout.header:
        if len(layout.columns) != len(cmapss.RAW_COLUMNS):
            raise IngestError(
                f"no header row and {len(layout.columns)} numeric columns; expected a header naming "
                "machine_id, timestamp or cycle and the sensors, or a 26-column C-MAPSS file",
                source=source, missing=["header"],
            )
        cols = _Columns("cmapss", "unit", "cycle", "cycle",
                        sensors=list(cmapss.SENSOR_COLUMNS), settings=list(cmapss.SETTING_COLUMNS))
        cols.sensor_names = {c: c for c in cmapss.SENSOR_COLUMNS + cmapss.SETTING_COLUMNS}
        units = {k: i.unit for k, i in cmapss.CMAPSS_SENSORS.items()}
        names: list[str] | None = list(cmapss.RAW_COLUMNS)
        dtype: dict[str, Any] = {}
        header_lines = 0
    else:
        cols = _map_columns(layout.columns, source, rep)
        units = dict(cols.units)
        names = None
        dtype = {cols.machine: str}
        if cols.kind == "long":
            assert cols.sensor is not None
            dtype[cols.sensor] = str
        if cols.time_axis == "timestamp":
            dtype[cols.time] = str
        header_lines = 1
        layout.columns = [c for c in layout.columns]
    acc = _Accumulator(cols.time_axis, rep, source, decimal=layout.decimal)
    first = True
    try:
        for chunk in _read_chunks(raw, layout, names, dtype, opts, skipped):
            if cols.kind == "long":
                _consume_long(chunk, cols, acc, units)
            else:
                _consume_wide(chunk, cols, acc, first)
            first = False
    except IngestError:
        raise
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise IngestError(f"could not parse the file: {exc}", source=source) from exc
    except KeyError as exc:
        raise IngestError(f"column {exc} missing in part of the file", source=source) from exc
    for ln in skipped[: rep.limit]:
        rep.add("error", "bad_line", f"row {ln}: wrong number of fields; row skipped", row=ln)
    if len(skipped) > rep.limit:
        rep.add("error", "bad_line", "", count=len(skipped) - rep.limit)

    def row_of(i: Any) -> int:
        return int(_line_numbers(np.asarray([i]), header_lines, skipped)[0])

    # convert parsed-row indices already stored in messages into line numbers
    for item in rep.errors + rep.warnings:
        if isinstance(item.get("row"), int) and item["code"] not in ("bad_line",):
            item["row"] = row_of(item["row"])
            item["message"] = item["message"].replace("{row}", str(item["row"]))
    fmt = cols.kind
    result = _assemble(
        acc, rep, opts, fmt=fmt, source=source,
        delimiter=None if layout.delimiter is None else layout.delimiter,
        settings=[cols.sensor_names.get(c, c) for c in cols.settings],
        labels=[cols.sensor_names.get(c, c) for c in cols.labels],
        units=units, row_of=row_of,
    )
    result.counts["bad_line"] = len(skipped)
    if layout.delimiter is None:
        result.delimiter = "whitespace"
    return result


def ingest_path(path: str, *, options: IngestOptions | None = None) -> IngestResult:
    """:func:`ingest_csv` on a file path."""
    with open(path, "rb") as fh:
        return ingest_csv(fh, source=str(path), options=options)


def parse_readings(
    machine_id: str,
    payload: Any,
    *,
    options: IngestOptions | None = None,
    source: str = "<push>",
) -> IngestResult:
    """Validate readings pushed for one machine.

    ``payload`` is a list of items, each ``{"timestamp"|"cycle": t, "sensor": name, "value": x}``
    (long) or ``{"timestamp"|"cycle": t, "<sensor>": x, ...}`` (wide). The first item's time key
    fixes the time axis. Bad items are reported per item (``row`` = item index) and skipped; the
    rest go through the same ordering, de-duplication, resampling and cleaning as uploads.
    Raises :class:`IngestError` if ``payload`` is not a non-empty list or no item is usable.
    """
    opts = options or IngestOptions()
    rep = _Reporter(opts.max_messages)
    mid = str(machine_id).strip() if machine_id is not None else ""
    if not mid:
        raise IngestError("machine_id is empty", source=source, missing=["machine_id"])
    if isinstance(payload, dict) and isinstance(payload.get("readings"), list):
        payload = payload["readings"]
    if not isinstance(payload, list) or not payload:
        raise IngestError("readings must be a non-empty list of objects", source=source)
    axis: TimeAxis | None = None
    time_key: str | None = None
    for item in payload:
        if isinstance(item, dict):
            keys = {_norm(k): k for k in item}
            for a in CYCLE_ALIASES:
                if a in keys:
                    axis, time_key = "cycle", a
                    break
            if axis is None:
                for a in TIMESTAMP_ALIASES:
                    if a in keys:
                        axis, time_key = "timestamp", a
                        break
            break
    if axis is None or time_key is None:
        raise IngestError("the first reading has no timestamp or cycle", source=source,
                          missing=["timestamp or cycle"])
    acc = _Accumulator(axis, rep, source)
    acc.machine_codes[mid] = 0
    times_raw: list[Any] = []
    sensors_l: list[str] = []
    values_raw: list[Any] = []
    rows_l: list[int] = []
    for i, item in enumerate(payload):
        acc.rows += 1
        if not isinstance(item, dict):
            rep.add("error", "bad_item", f"item {i}: not an object", row=i, machine=mid)
            continue
        norm_keys = {_norm(k): k for k in item}
        if time_key not in norm_keys:
            rep.add("error", "bad_time", f"item {i}: no {time_key}", row=i, machine=mid)
            continue
        tval = item[norm_keys[time_key]]
        sensor_key = next((norm_keys[a] for a in SENSOR_ALIASES if a in norm_keys), None)
        value_key = next((norm_keys[a] for a in VALUE_ALIASES if a in norm_keys), None)
        if sensor_key is not None and value_key is not None:
            name = item[sensor_key]
            if name is None or str(name).strip() == "":
                rep.add("error", "no_sensor", f"item {i}: sensor is empty", row=i, machine=mid)
                continue
            pairs = [(str(name).strip(), item[value_key])]
        else:
            skip = {norm_keys[time_key]} | {norm_keys[a] for a in MACHINE_ALIASES if a in norm_keys}
            pairs = [(str(k).strip(), val) for k, val in item.items() if k not in skip]
            if not pairs:
                rep.add("error", "no_sensor", f"item {i}: no sensor values", row=i, machine=mid)
                continue
        for name, val in pairs:
            times_raw.append(tval)
            sensors_l.append(name)
            values_raw.append(val)
            rows_l.append(i)
    if not rows_l:
        rep.finish()
        _itemize(rep.errors)
        raise IngestError("no usable reading in the payload", source=source, errors=rep.errors)
    rows = np.asarray(rows_l, dtype=np.int64)
    n = len(rows)
    machines = np.zeros(n, dtype=np.int32)
    tcol = pd.Series(times_raw, name=time_key, dtype=object)
    if axis == "timestamp" and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in times_raw):
        tcol = tcol.astype(float)
    else:
        tcol = tcol.map(lambda x: None if x is None else str(x))
    t = acc.parse_time(tcol, rows, machines)
    _itemize(rep.errors)
    scodes = np.array([acc.sensor_code(s) for s in sensors_l], dtype=np.int32)
    vcol = pd.Series([_scalar(x) for x in values_raw], dtype=object)
    vals = acc.numeric(vcol, rows, np.zeros(n, dtype=np.int32), lambda j: sensors_l[j])
    acc.readings = n
    acc.rows = len(payload)
    acc.push(np.zeros(n, dtype=np.int32), t, scodes, vals, rows)
    for item in rep.errors + rep.warnings:
        if isinstance(item.get("message"), str):
            item["message"] = item["message"].replace("row {row}", f"item {item.get('row')}")
    settings = [s for s in acc.sensor_codes if SETTING_RE.match(_norm(s))]
    labels = [s for s in acc.sensor_codes if _norm(s) in LABEL_COLUMNS]
    result = _assemble(acc, rep, opts, fmt="readings", source=source, delimiter=None,
                       settings=settings, labels=labels, units={}, row_of=lambda i: int(i))
    _itemize(result.errors + result.warnings)
    return result


def _itemize(items: list[dict[str, Any]]) -> None:
    """In messages about a push, a row is an item of the payload."""
    for item in items:
        item["message"] = re.sub(r"\brow(s?)\b", r"item\1", item["message"].replace("{row}", str(item.get("row"))))


def _scalar(x: Any) -> Any:
    if isinstance(x, bool) or isinstance(x, (dict, list)):
        return str(x)
    return x


def merge_series(existing: pd.DataFrame | None, new: pd.DataFrame) -> pd.DataFrame:
    """Combine a machine's stored series with newly pushed readings.

    Both are frames as in :attr:`IngestResult.series` on the same time axis. Where both have a
    value for the same time and sensor the new one wins (keep last). Returns a sorted frame.
    """
    if existing is None or existing.empty:
        return new.sort_index()
    if existing.index.name != new.index.name:
        raise IngestError(
            f"time axis mismatch: stored readings use {existing.index.name}, new ones {new.index.name}"
        )
    out = new.combine_first(existing)
    return out.sort_index()
