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

Modules: :mod:`.upload` (:func:`ingest_csv`, :func:`ingest_path`) and :mod:`.push`
(:func:`parse_readings`, :func:`merge_series`) are the entry points; :mod:`.reader` sniffs and streams
the file, :mod:`.columns` maps its columns, :mod:`.accumulate` turns chunks into coded readings,
:mod:`.assemble` orders, de-duplicates and regularises them per machine, :mod:`.cleaning` handles
constant sensors, missing values and outliers; :mod:`.result`, :mod:`.options`, :mod:`.errors` and
:mod:`.reporter` hold the shared types.
"""
from __future__ import annotations

from .columns import SETTING_RE
from .errors import IngestError
from .options import IngestOptions
from .push import merge_series, parse_readings
from .result import IngestResult
from .upload import ingest_csv, ingest_path

__all__ = [
    "SETTING_RE",
    "IngestError",
    "IngestOptions",
    "IngestResult",
    "ingest_csv",
    "ingest_path",
    "merge_series",
    "parse_readings",
]
