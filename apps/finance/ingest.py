"""Parse and validate loan applications: uploaded CSV files and single JSON applications (Django-free).

A CSV upload is decoded (UTF-8 with or without BOM, UTF-16 with BOM, GB18030/GBK from Chinese bank
systems; anything else is rejected), its delimiter detected (comma, semicolon or tab) and its header
mapped to the catalogue (field names, English or Chinese labels; see :func:`fields.header_aliases`).

The 20 applicant columns are required (one file-level error lists the missing ones); ``application_id``
and ``report`` are optional; ``creditability`` is accepted only with ``training=True`` (and then
required); other columns are ignored with a warning. Every data row is validated on its own: its
errors name the row and the column and the other rows go on. Row numbers count the header as row 1,
like a spreadsheet (a quoted multi-line report still counts as one row).

Values: numbers must parse (``1169``, ``1169.0``, ``1,169``), whole where the field is whole and inside
the catalogue bounds; categories accept case and whitespace variants and the Chinese display text.
Empty cells and ``NA``/``N/A``/``null``/``NaN``/``-`` are missing: allowed when the row has a report
(the LLM extracts fields from it, the scorecard imputes the rest), an error otherwise.
"""
from __future__ import annotations

import codecs
import csv
import io
import math
import re
from dataclasses import asdict, dataclass, field
from typing import Any, BinaryIO

from .fields import (
    FIELD_NAMES,
    FIELDS_BY_NAME,
    LABEL_FIELD,
    Field,
    header_aliases,
    header_key,
    normalise_category,
)

MAX_FILE_BYTES = 50 * 1024 * 1024
MAX_REPORT_CHARS = 20_000
MAX_ID_CHARS = 100
MISSING_TOKENS = frozenset({"", "na", "n/a", "null", "nan", "#n/a", "-", "缺失"})
_THOUSANDS_RE = re.compile(r"^[+-]?\d{1,3}(,\d{3})+(\.\d+)?$")
_LABELS = {"good": "good", "bad": "bad", "好": "good", "坏": "bad"}
_ALIASES = header_aliases()


class IngestError(ValueError):
    """A whole file cannot be read (encoding, binary content, size); the message says why."""


@dataclass
class ParsedRow:
    """One data row of an applications file."""

    row_number: int
    application_id: str | None
    applicant: dict[str, Any]
    report: str | None = None
    label: str | None = None  # training mode only: "good" or "bad"
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when the row has no errors."""
        return not self.errors

    def as_dict(self) -> dict:
        """Plain-dict form (JSON-serialisable)."""
        return asdict(self)


@dataclass
class ParseResult:
    """The outcome of parsing a file: rows, file-level errors and warnings, what was detected."""

    rows: list[ParsedRow] = field(default_factory=list)
    file_errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    encoding: str | None = None
    delimiter: str | None = None
    columns: dict[str, str] = field(default_factory=dict)  # header as written -> canonical name

    @property
    def ok(self) -> bool:
        """True when the file itself was usable (rows may still carry errors)."""
        return not self.file_errors

    @property
    def valid_rows(self) -> list[ParsedRow]:
        """Rows without errors."""
        return [r for r in self.rows if r.ok]

    @property
    def invalid_rows(self) -> list[ParsedRow]:
        """Rows with at least one error."""
        return [r for r in self.rows if not r.ok]

    def to_dataframe(self):
        """The valid rows as a pandas DataFrame of the 20 fields (+ ``creditability`` in training mode)."""
        import pandas as pd

        records = []
        for r in self.valid_rows:
            rec = dict(r.applicant)
            if r.label is not None:
                rec[LABEL_FIELD] = r.label
            records.append(rec)
        columns = list(FIELD_NAMES) + ([LABEL_FIELD] if any(r.label for r in self.valid_rows) else [])
        return pd.DataFrame.from_records(records, columns=columns)

    def as_dict(self) -> dict:
        """Plain-dict form (JSON-serialisable)."""
        return asdict(self)


# --------------------------------------------------------------------------------------------------
# Decoding
# --------------------------------------------------------------------------------------------------
def decode_bytes(data: bytes, *, name: str = "file") -> tuple[str, str]:
    """(text, encoding) of uploaded bytes; raises :class:`IngestError` when they are not text we read.

    Tried in order: UTF-8 BOM, UTF-16 BOM, plain UTF-8, GB18030 (a superset of GBK and GB2312).
    """
    if data.startswith(b"PK\x03\x04"):
        raise IngestError(f"{name}: this looks like an Excel workbook or ZIP archive; export it as CSV first")
    if data.startswith(codecs.BOM_UTF8):
        try:
            return data[len(codecs.BOM_UTF8):].decode("utf-8"), "utf-8-sig"
        except UnicodeDecodeError as exc:
            raise IngestError(f"{name}: starts with a UTF-8 byte-order mark but is not valid UTF-8 "
                              f"(byte {exc.start})") from None
    for bom, enc in ((codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be")):
        if data.startswith(bom):
            try:
                return data[len(bom):].decode(enc), "utf-16"
            except UnicodeDecodeError:
                raise IngestError(f"{name}: starts with a UTF-16 byte-order mark but is not valid "
                                  "UTF-16") from None
    if b"\x00" in data[:4096]:
        raise IngestError(f"{name}: contains NUL bytes; it is a binary file, not a CSV text file")
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("gb18030"), "gb18030"
    except UnicodeDecodeError as exc:
        raise IngestError(f"{name}: cannot be decoded as UTF-8 or GBK/GB18030 (undecodable byte at "
                          f"offset {exc.start}); save the file as UTF-8 CSV") from None


def detect_delimiter(text: str) -> str:
    """The delimiter of a CSV text: the most frequent of comma, semicolon and tab in its first line
    (quoted parts excluded); comma when none occurs."""
    first = next((line for line in text.splitlines() if line.strip()), "")
    unquoted = re.sub(r'"[^"]*"', "", first)
    counts = {d: unquoted.count(d) for d in (",", ";", "\t")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


# --------------------------------------------------------------------------------------------------
# Values
# --------------------------------------------------------------------------------------------------
def is_missing(value: Any) -> bool:
    """True for None, NaN, empty text and the missing-value tokens (``NA``, ``null``, ``-`` ...)."""
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return isinstance(value, str) and value.strip().lower() in MISSING_TOKENS


def _bounds_text(f: Field) -> str:
    if f.exclusive_minimum and f.minimum is not None:
        return f"greater than {f.minimum:g} and at most {f.maximum:g}"
    return f"between {f.minimum:g} and {f.maximum:g}"


def clean_value(f: Field, value: Any) -> tuple[Any, str | None]:
    """(clean value, None) or (None, problem text) for one non-missing value of field ``f``.

    Numbers come back as int for whole-number fields, float otherwise; categories as their canonical
    CSV spelling.
    """
    if f.kind == "categorical":
        if not isinstance(value, str):
            return None, f"expected text, got {value!r}"
        canon = normalise_category(f.name, value)
        if canon is None:
            allowed = ", ".join(repr(c) for c in f.categories)
            return None, f"{value.strip()!r} is not an allowed value; allowed: {allowed}"
        return canon, None
    if isinstance(value, bool):
        return None, f"expected a number, got {value!r}"
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        text = value.strip()
        if _THOUSANDS_RE.match(text):
            text = text.replace(",", "")
        try:
            number = float(text)
        except ValueError:
            return None, f"{value.strip()!r} is not a number"
    else:
        return None, f"expected a number, got {value!r}"
    if not math.isfinite(number):
        return None, f"{value!r} is not a finite number"
    if f.integer and number != int(number):
        return None, f"{value!r} must be a whole number"
    too_low = f.minimum is not None and (number <= f.minimum if f.exclusive_minimum else number < f.minimum)
    if too_low or (f.maximum is not None and number > f.maximum):
        return None, f"{value!r} is out of range: must be {_bounds_text(f)}"
    return (int(number) if f.integer else number), None


def parse_applicant(data: Any, *, report: str | None = None,
                    where: str = "applicant") -> tuple[dict, list[str]]:
    """Validate one JSON application (the REST API's ``applicant`` object).

    Returns ``(clean, errors)``: ``clean`` has all 20 fields (None for missing or invalid values),
    ``errors`` is a list of messages naming the field. Keys may be field names or their English or
    Chinese labels; unknown keys are errors. Fields may be absent or null only when a non-empty
    ``report`` is given; an application needs fields or a report.
    """
    clean: dict[str, Any] = dict.fromkeys(FIELD_NAMES)
    errors: list[str] = []
    has_report = bool(report and str(report).strip())
    if data is None:
        data = {}
    if not isinstance(data, dict):
        return clean, [f"{where}: expected an object of applicant fields, got {type(data).__name__}"]
    given: dict[str, Any] = {}
    for key, value in data.items():
        name = _ALIASES.get(header_key(str(key)))
        if name not in FIELDS_BY_NAME:
            errors.append(f"{where}: unknown field {str(key)!r}")
            continue
        if name in given:
            errors.append(f"{where}: field {name!r} is given twice")
            continue
        given[name] = value
    if not given and not has_report:
        errors.append(f"{where}: give the applicant fields or a report")
        return clean, errors
    for name in FIELD_NAMES:
        value = given.get(name)
        if is_missing(value):
            if not has_report:
                errors.append(f"{where}: field {name!r} is missing (required when there is no report)")
            continue
        clean[name], problem = clean_value(FIELDS_BY_NAME[name], value)
        if problem:
            errors.append(f"{where}: field {name!r}: {problem}")
    return clean, errors


# --------------------------------------------------------------------------------------------------
# CSV files
# --------------------------------------------------------------------------------------------------
def parse_applications_csv(data: bytes | bytearray | BinaryIO, *, training: bool = False,
                           filename: str = "file") -> ParseResult:
    """Parse an uploaded applications CSV (bytes or a binary file object) into a :class:`ParseResult`.

    Never raises for bad content: file-level problems go to ``file_errors`` (then ``rows`` is empty),
    row problems to each row's ``errors``. ``training=True`` requires and parses ``creditability``.
    """
    result = ParseResult()
    try:
        raw = data.read(MAX_FILE_BYTES + 1) if hasattr(data, "read") else bytes(data)
    except (OSError, TypeError) as exc:
        result.file_errors.append(f"{filename}: cannot be read: {exc}")
        return result
    if not isinstance(raw, bytes | bytearray):
        result.file_errors.append(f"{filename}: expected bytes, got {type(raw).__name__}")
        return result
    if len(raw) > MAX_FILE_BYTES:
        result.file_errors.append(f"{filename}: larger than {MAX_FILE_BYTES // (1024 * 1024)} MB")
        return result
    if not raw.strip():
        result.file_errors.append(f"{filename}: the file is empty")
        return result
    try:
        text, result.encoding = decode_bytes(bytes(raw), name=filename)
    except IngestError as exc:
        result.file_errors.append(str(exc))
        return result
    if result.encoding == "gb18030":
        result.warnings.append(f"{filename}: not UTF-8; read as GB18030/GBK (Chinese) text")
    result.delimiter = detect_delimiter(text)
    try:
        records = list(csv.reader(io.StringIO(text, newline=""), delimiter=result.delimiter))
    except csv.Error as exc:
        result.file_errors.append(f"{filename}: not a readable CSV file: {exc}")
        return result
    while records and not any(cell.strip() for cell in records[-1]):
        records.pop()
    if not records:
        result.file_errors.append(f"{filename}: the file is empty")
        return result
    positions = _map_header(records[0], training, filename, result)
    if result.file_errors:
        return result
    if len(records) == 1:
        result.file_errors.append(f"{filename}: the file has a header but no data rows")
        return result
    _parse_rows(records, positions, training, result)
    return result


def _map_header(header: list[str], training: bool, filename: str, result: ParseResult) -> dict[str, int]:
    """Canonical column -> cell position; records file errors and unknown-column warnings."""
    positions: dict[str, int] = {}
    unknown: list[str] = []
    for i, title in enumerate(header):
        name = _ALIASES.get(header_key(title))
        if name is None:
            if title.strip():
                unknown.append(title.strip())
            continue
        if name in positions:
            result.file_errors.append(f"{filename}: column {name!r} appears twice (columns "
                                      f"{positions[name] + 1} and {i + 1})")
            continue
        positions[name] = i
        result.columns[title] = name
    missing = [n for n in FIELD_NAMES if n not in positions]
    if training and LABEL_FIELD not in positions:
        missing.append(LABEL_FIELD)
    if missing:
        result.file_errors.append(f"{filename}: missing required column(s): {', '.join(missing)}")
    if not training and LABEL_FIELD in positions:
        result.file_errors.append(f"{filename}: column {LABEL_FIELD!r} (the outcome label) is accepted only "
                                  "when training a model; remove it to score applications")
    if unknown:
        result.warnings.append(f"{filename}: ignored unknown column(s): {', '.join(unknown)}")
    return positions


HEADER_PEEK_BYTES = 64 * 1024


@dataclass
class HeaderCheck:
    """The outcome of reading only a file's header (:func:`check_header`): the problems that reject the file
    at once, the required columns missing, and the columns it recognised (as written -> canonical)."""

    errors: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    found: list[str] = field(default_factory=list)  # the header cells as written
    columns: dict[str, str] = field(default_factory=dict)
    unreadable: bool = False  # not text we read (encoding, binary, empty)

    @property
    def ok(self) -> bool:
        return not self.errors


def _head_text(head: bytes, truncated: bool, filename: str) -> str:
    """The text of the first bytes of a file; a cut at the end (mid-character) is trimmed first."""
    if truncated:
        if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            head = head[: len(head) - len(head) % 2]
        else:  # a newline byte never sits inside a UTF-8 or GB18030 character
            cut = head.rfind(b"\n")
            head = head[: cut + 1] if cut > 0 else head
    try:
        return decode_bytes(head, name=filename)[0]
    except IngestError:
        if not truncated:
            raise
        return decode_bytes(head[:-2], name=filename)[0]  # a UTF-16 surrogate pair cut in two


def check_header(head: bytes, *, filename: str = "file", truncated: bool = False,
                 training: bool = False) -> HeaderCheck:
    """Check the header of an applications file from its first bytes only (``truncated``: the file goes on).

    The rule is :func:`parse_applications_csv`'s (same decoding, delimiter and :func:`_map_header`), so a
    file that passes here is refused later only for its rows. Never raises for bad content.
    """
    check = HeaderCheck()
    if not head.strip():
        check.unreadable = True
        check.errors.append(f"{filename}: the file is empty")
        return check
    try:
        text = _head_text(bytes(head), truncated, filename)
    except IngestError as exc:
        check.unreadable = True
        check.errors.append(str(exc))
        return check
    delimiter = detect_delimiter(text)
    try:
        header = next(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter), [])
    except csv.Error as exc:
        check.unreadable = True
        check.errors.append(f"{filename}: not a readable CSV file: {exc}")
        return check
    result = ParseResult()
    positions = _map_header(header, training, filename, result)
    check.errors = list(result.file_errors)
    check.found = [cell.strip() for cell in header if cell.strip()]
    check.columns = dict(result.columns)
    check.missing = [n for n in FIELD_NAMES if n not in positions]
    if training and LABEL_FIELD not in positions:
        check.missing.append(LABEL_FIELD)
    return check


def _parse_rows(records: list[list[str]], positions: dict[str, int], training: bool,
                result: ParseResult) -> None:
    width = len(records[0])
    seen_ids: dict[str, int] = {}
    category_cache: dict[tuple[str, str], tuple[Any, str | None]] = {}
    fields = [(name, FIELDS_BY_NAME[name], positions[name]) for name in FIELD_NAMES]
    id_pos, report_pos = positions.get("application_id"), positions.get("report")
    label_pos = positions.get(LABEL_FIELD)
    for index, cells in enumerate(records[1:], start=2):
        if not any(cell.strip() for cell in cells):
            continue  # a blank line
        row = ParsedRow(row_number=index, application_id=None, applicant=dict.fromkeys(FIELD_NAMES))
        result.rows.append(row)
        if len(cells) != width:
            row.errors.append(f"row {index}: has {len(cells)} cells but the header has {width} columns "
                              "(check quoting of values that contain the delimiter)")
            continue
        if id_pos is not None:
            _read_id(row, cells[id_pos].strip(), seen_ids)
        if report_pos is not None:
            report = cells[report_pos].strip()
            if len(report) > MAX_REPORT_CHARS:
                row.errors.append(f"row {index}, column 'report': longer than {MAX_REPORT_CHARS} characters")
            row.report = report or None
        if training:
            label = _LABELS.get(cells[label_pos].strip().lower())
            if label is None:
                row.errors.append(f"row {index}, column {LABEL_FIELD!r}: {cells[label_pos].strip()!r} is not "
                                  "'good' or 'bad'")
            row.label = label
        may_be_missing = row.report is not None and not training
        for name, f, pos in fields:
            cell = cells[pos]
            if is_missing(cell):
                if not may_be_missing:
                    why = "required for training" if training else "required when the row has no report"
                    row.errors.append(f"row {index}, column {name!r}: missing value ({why})")
                continue
            if f.kind == "categorical":
                key = (name, cell)
                if key not in category_cache:
                    category_cache[key] = clean_value(f, cell)
                value, problem = category_cache[key]
            else:
                value, problem = clean_value(f, cell)
            if problem:
                row.errors.append(f"row {index}, column {name!r}: {problem}")
            else:
                row.applicant[name] = value


def _read_id(row: ParsedRow, text: str, seen: dict[str, int]) -> None:
    if not text or text.lower() in MISSING_TOKENS:
        return
    if len(text) > MAX_ID_CHARS:
        row.errors.append(f"row {row.row_number}, column 'application_id': longer than {MAX_ID_CHARS} "
                          "characters")
        return
    row.application_id = text
    if text in seen:
        row.errors.append(f"row {row.row_number}, column 'application_id': duplicate {text!r}, first used "
                          f"on row {seen[text]}")
    else:
        seen[text] = row.row_number
