"""The exception raised when sensor data cannot be read at all."""

from __future__ import annotations

from typing import Any


class IngestError(ValueError):
    """The input cannot be read at all (empty, no machine or time column, over the size limit...).

    ``source`` names the file, ``missing`` lists missing columns when that is the cause, and
    ``errors`` holds per-item errors (for pushes where no item was usable).
    """

    def __init__(
        self,
        message: str,
        *,
        source: str | None = None,
        missing: list[str] | None = None,
        errors: list[dict[str, Any]] | None = None,
    ) -> None:
        self.source = source
        self.missing = missing or []
        self.errors = errors or []
        super().__init__(f"{source}: {message}" if source else message)
