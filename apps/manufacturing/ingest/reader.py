"""Opening and streaming a CSV: encoding and delimiter sniffing, the size limit, chunked parsing."""

from __future__ import annotations

import csv
import io
import re
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from typing import IO, Any

import pandas as pd

from .columns import CYCLE_ALIASES, MACHINE_ALIASES, SENSOR_ALIASES, TIMESTAMP_ALIASES, VALUE_ALIASES, _norm
from .errors import IngestError
from .options import IngestOptions

SNIFF_BYTES = 65536
DECIMAL_COMMA_RE = re.compile(r"^-?\d+,\d+$")


class _HeadThenRest(io.RawIOBase):
    """A raw stream yielding already-read ``head`` bytes, then the rest of ``stream``; enforces a size
    limit."""

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
    known = (set(MACHINE_ALIASES) | set(CYCLE_ALIASES) | set(TIMESTAMP_ALIASES) | set(SENSOR_ALIASES)
             | set(VALUE_ALIASES))
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
