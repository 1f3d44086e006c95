"""Serialisation of a trained scorecard: the bytes stored in ``CreditModelVersion.artifact``.

An artifact is a joblib pickle of ``{"format", "format_version", "model"}``. A pickle names every class
by ``module.qualname``, and artifacts written before ``apps/finance/scorecard.py`` became this package
name ``apps.finance.scorecard.TrainedScorecard``, ``.ScoreScale``, ``._ForestModel`` and ``._WoeModel``.
Those four classes therefore declare ``__module__ = "apps.finance.scorecard"`` and the package re-exports
them under those names: old artifacts load, and new ones are byte-for-byte the same format (readable by
older code too). Keep both when moving or renaming one of them, or bump ``FORMAT_VERSION``.
"""
from __future__ import annotations

import io
import pickle

import joblib

from .errors import ModelFormatError, ScorecardError
from .scoring import TrainedScorecard

FORMAT_NAME = "finance-scorecard"
FORMAT_VERSION = 1


def dump(model: TrainedScorecard) -> bytes:
    """Serialise a trained scorecard (joblib, compressed) with its format name and version."""
    if not isinstance(model, TrainedScorecard):
        raise ScorecardError(f"dump() expects a TrainedScorecard, got {type(model).__name__}")
    buf = io.BytesIO()
    joblib.dump({"format": FORMAT_NAME, "format_version": FORMAT_VERSION, "model": model}, buf, compress=3)
    return buf.getvalue()


def load(data: bytes) -> TrainedScorecard:
    """Deserialise :func:`dump` output; refuses other formats or versions with :class:`ModelFormatError`.

    Only load bytes this platform wrote itself (they are a pickle).
    """
    if not isinstance(data, bytes | bytearray) or not data:
        raise ModelFormatError("model data is empty or not bytes")
    try:
        payload = joblib.load(io.BytesIO(bytes(data)))
    except (pickle.UnpicklingError, EOFError, ValueError, KeyError, AttributeError, ImportError,
            IndexError, TypeError, OSError) as exc:
        raise ModelFormatError(f"model data cannot be read as a {FORMAT_NAME} file: {exc}") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT_NAME:
        raise ModelFormatError(f"model data is not a {FORMAT_NAME} file")
    version = payload.get("format_version")
    if version != FORMAT_VERSION:
        raise ModelFormatError(f"model format version {version!r} is not supported (this code reads version "
                               f"{FORMAT_VERSION}); retrain the model with train_scorecard")
    model = payload.get("model")
    if not isinstance(model, TrainedScorecard):
        raise ModelFormatError("model data does not contain a TrainedScorecard")
    return model
