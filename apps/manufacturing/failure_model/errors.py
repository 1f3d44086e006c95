"""The exceptions of training, prediction and loading."""

from __future__ import annotations


class ModelError(ValueError):
    """Training or prediction cannot proceed; the message says why."""


class ModelFormatError(ModelError):
    """Serialized bytes are not a failure model of a supported format version."""


class SensorMismatchError(ModelError):
    """The series lacks sensors the model was trained on (``missing`` lists them)."""

    def __init__(self, message: str, missing: list[str]) -> None:
        self.missing = missing
        super().__init__(message)
