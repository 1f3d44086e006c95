"""Tunable limits of ingestion (chunk size, size limit, outlier rule, resampling)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass
class IngestOptions:
    """Tunable limits of ingestion."""

    chunk_rows: int = 250_000
    max_bytes: int | None = None
    max_messages: int = 50
    outlier_z: float = 6.0
    outlier_window: int = 11
    outlier_action: Literal["replace", "keep"] = "replace"
    fill_missing: bool = True
    resample: bool = True
    max_grid_factor: float = 4.0
    #: OpenMP threads of the operating-regime search (k-means); the caller decides (Django:
    #: ``settings.MANUFACTURING_THREADS``).
    threads: int = 1
