"""CSV uploads: :func:`ingest_csv` (a binary file object, read in chunks) and :func:`ingest_path`."""

from __future__ import annotations

from typing import IO, Any

import numpy as np
import pandas as pd

from apps.manufacturing import cmapss

from .accumulate import _Accumulator, _consume_long, _consume_wide
from .assemble import _assemble
from .columns import _Columns, _map_columns
from .errors import IngestError
from .options import IngestOptions
from .reader import SNIFF_BYTES, _HeadThenRest, _read_chunks, _sniff
from .reporter import _Reporter
from .result import IngestResult


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


def ingest_csv(
    fileobj: IO[bytes],
    *,
    source: str = "<upload>",
    options: IngestOptions | None = None,
) -> IngestResult:
    """Read a sensor CSV from a binary file object, in chunks.

    Detects the delimiter, the layout (long, wide, headerless C-MAPSS) and the time axis, then
    validates, orders, de-duplicates, regularises and cleans the series (see the package docstring
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
        units: dict[str, str] = {k: i.unit for k, i in cmapss.CMAPSS_SENSORS.items()}
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
        delimiter=layout.delimiter,
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
