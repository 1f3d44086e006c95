"""What ingestion returns: :class:`IngestResult` (per-machine series, sensors, messages)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import pandas as pd

TimeAxis = Literal["cycle", "timestamp"]


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
