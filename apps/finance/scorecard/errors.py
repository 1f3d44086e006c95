"""The scorecard's exceptions: every message says where (row, column, field) and what."""
from __future__ import annotations


class ScorecardError(ValueError):
    """Base class of the scorecard's errors; the message says where and what."""


class TrainingDataError(ScorecardError):
    """The training frame is unusable (missing columns, bad values, too few rows or labels)."""


class ScorecardInputError(ScorecardError):
    """An applicant value cannot be scored (wrong type, unknown category, out of bounds)."""


class ModelFormatError(ScorecardError):
    """Serialised model bytes are not a scorecard of the format version this code reads."""
