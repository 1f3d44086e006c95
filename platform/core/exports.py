"""CSV and XLSX exports that spreadsheet programs open safely.

Cells that start with ``=``, ``+``, ``-``, ``@`` (or tab/CR) are prefixed with an apostrophe so a
spreadsheet shows them as text instead of running them as formulas (CSV injection). Numbers stay
numbers.
"""
from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence

from django.http import HttpResponse

DANGEROUS_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def neutralise(value):
    """A cell value safe for spreadsheets: strings starting with a formula character get a leading '."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return value
    text = str(value)
    if text.startswith(DANGEROUS_PREFIXES):
        return "'" + text
    return text


def flatten(record: dict, prefix: str = "") -> dict:
    """Nested dicts become ``parent_child`` columns; lists become '; '-joined text."""
    out: dict = {}
    for key, value in record.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, prefix=f"{name}_"))
        elif isinstance(value, list | tuple):
            out[name] = "; ".join(
                ", ".join(f"{k}={v}" for k, v in item.items()) if isinstance(item, dict) else str(item)
                for item in value
            )
        else:
            out[name] = value
    return out


def rows_to_csv_bytes(columns: Sequence[str], rows: Iterable[dict]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(columns)
    for row in rows:
        writer.writerow([neutralise(row.get(c)) for c in columns])
    # UTF-8 with BOM so Excel opens Chinese text correctly.
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")


def rows_to_csv_response(filename: str, columns: Sequence[str], rows: Iterable[dict]) -> HttpResponse:
    response = HttpResponse(rows_to_csv_bytes(columns, rows), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def rows_to_xlsx_bytes(columns: Sequence[str], rows: Iterable[dict], *, sheet: str = "results") -> bytes:
    from openpyxl import Workbook

    workbook = Workbook(write_only=True)
    worksheet = workbook.create_sheet(title=sheet[:31])
    worksheet.append(list(columns))
    for row in rows:
        worksheet.append([neutralise(row.get(c)) for c in columns])
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def rows_to_xlsx_response(filename: str, columns: Sequence[str], rows: Iterable[dict]) -> HttpResponse:
    response = HttpResponse(
        rows_to_xlsx_bytes(columns, rows),
        content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    )
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
