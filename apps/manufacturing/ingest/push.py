"""Pushed readings: :func:`parse_readings` (REST items for one machine) and :func:`merge_series`."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pandas as pd

from .accumulate import _Accumulator
from .assemble import _assemble
from .columns import (
    CYCLE_ALIASES,
    LABEL_COLUMNS,
    MACHINE_ALIASES,
    SENSOR_ALIASES,
    SETTING_RE,
    TIMESTAMP_ALIASES,
    VALUE_ALIASES,
    _norm,
)
from .errors import IngestError
from .options import IngestOptions
from .reporter import _Reporter
from .result import IngestResult, TimeAxis


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
    if axis == "timestamp" and all(isinstance(x, (int, float)) and not isinstance(x, bool)
                                   for x in times_raw):
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
        message = item["message"].replace("{row}", str(item.get("row")))
        item["message"] = re.sub(r"\brow(s?)\b", r"item\1", message)


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
