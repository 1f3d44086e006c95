"""Column mapping: recognising the machine, time, sensor, value, unit, setting and label columns."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .errors import IngestError
from .reporter import _Reporter
from .result import TimeAxis

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


def _norm(name: str) -> str:
    return re.sub(r"[\s\-]+", "_", str(name).strip().strip('"').strip("'").strip().lower())


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
            rep.add("warning", "time_column",
                    f"both {cycle!r} and {stamp!r} present; {cycle!r} is used as the time axis")
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
            rep.add("warning", "duplicate_column", f"column {c!r} repeats sensor {clean!r}; ignored",
                    sensor=clean)
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
