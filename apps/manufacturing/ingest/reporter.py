"""Collecting the errors and warnings of one ingestion, listing the first few of each code."""

from __future__ import annotations

from typing import Any, Literal


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
