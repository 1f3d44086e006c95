"""The downloadable CSV template: the wide-form header the upload accepts (:mod:`.columns`) and a few
example rows that read cleanly (no error, no warning).

Django-free: the caller says which sensors and operating settings the columns are (the active failure
model's, or the NASA C-MAPSS ones by default).
"""
from __future__ import annotations

from apps.manufacturing import cmapss

from .columns import CYCLE_ALIASES, MACHINE_ALIASES, SETTING_RE, _norm

#: Early-life levels of the C-MAPSS FD001 engines (cycle 1, fleet mean): believable example values.
TYPICAL: dict[str, float] = {
    "op_setting_1": 0.0, "op_setting_2": 0.0, "op_setting_3": 100.0,
    "sensor_1": 518.67, "sensor_2": 642.40, "sensor_3": 1586.42, "sensor_4": 1402.44, "sensor_5": 14.62,
    "sensor_6": 21.61, "sensor_7": 554.00, "sensor_8": 2388.06, "sensor_9": 9055.84, "sensor_10": 1.30,
    "sensor_11": 47.34, "sensor_12": 521.90, "sensor_13": 2388.05, "sensor_14": 8137.43, "sensor_15": 8.42,
    "sensor_16": 0.03, "sensor_17": 392.10, "sensor_18": 2388.00, "sensor_19": 100.00, "sensor_20": 38.94,
    "sensor_21": 23.36,
}
DEFAULT_SENSORS: list[str] = list(cmapss.SENSOR_COLUMNS)
DEFAULT_SETTINGS: list[str] = list(cmapss.SETTING_COLUMNS)
MACHINES = ("M-001", "M-002")
CYCLES = 5


def template_columns(sensors: list[str] | None = None, settings: list[str] | None = None) -> list[str]:
    """The header: machine id, cycle, the operating settings, then one column per sensor (wide form)."""
    sensors = list(sensors or DEFAULT_SENSORS)
    settings = [s for s in (DEFAULT_SETTINGS if settings is None else settings) if SETTING_RE.match(_norm(s))]
    return [MACHINE_ALIASES[0], CYCLE_ALIASES[0], *settings, *[s for s in sensors if s not in settings]]


def _value(name: str, machine: int, cycle: int, is_setting: bool) -> float:
    """A smooth, slowly drifting value (never constant over the fleet, never a spike)."""
    base = TYPICAL.get(name, 100.0)
    if is_setting:  # one operating regime: the settings only jitter
        return round(base + 0.0001 * ((cycle + machine) % 3), 4)
    scale = abs(base) if base else 1.0
    return round(base + scale * (0.0004 * cycle * (machine + 1) + 0.001 * machine), 4)


def template_rows(sensors: list[str] | None = None, settings: list[str] | None = None,
                  machines: tuple[str, ...] = MACHINES, cycles: int = CYCLES) -> tuple[list[str], list[dict]]:
    """``(columns, rows)``: ``cycles`` cycles of each of ``machines``, each row a dict by column."""
    columns = template_columns(sensors, settings)
    setting_set = {c for c in columns[2:] if SETTING_RE.match(_norm(c))}
    rows = []
    for m, machine in enumerate(machines):
        for cycle in range(1, cycles + 1):
            row = {columns[0]: machine, columns[1]: cycle}
            row.update({c: _value(c, m, cycle, c in setting_set) for c in columns[2:]})
            rows.append(row)
    return columns, rows
