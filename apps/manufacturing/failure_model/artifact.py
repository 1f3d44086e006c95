"""The model's own serialisation, ``dump``/``load``: the form ``FailureModelVersion.artifact`` files had
before they moved to core's one signed artifact format (``core.artifacts``, written by
``apps.manufacturing.services.failure_models``, which still reads these legacy files and re-writes
them on ``manage.py resign_model_artifacts``). Also handy for tests and benchmarks.

An artifact is a magic line, a JSON header (format version, metadata), then a zlib-compressed pickle
of the :class:`FailureModel` (stored signed, see ``core.signing``). A pickle names every class by
``module.qualname``, and artifacts written before ``apps/manufacturing/failure_model.py`` became this
package name ``apps.manufacturing.failure_model.FailureModel`` (the other classes inside come from
``apps.manufacturing.features`` and scikit-learn, which did not move). :class:`FailureModel` therefore
declares ``__module__ = "apps.manufacturing.failure_model"`` and the package re-exports it under that
name: old artifacts load, and new ones name the same path (readable by older code too). Keep both when
moving or renaming the class, or bump ``FORMAT_VERSION``.
"""

from __future__ import annotations

import io
import json
import pickle
import zlib
from typing import Any

import sklearn

from .errors import ModelFormatError
from .model import FORMAT_VERSION, FailureModel

MAGIC = b"MFG-FAILURE-MODEL\n"


def dump(model: FailureModel) -> bytes:
    """Serialise a model: a magic line, a JSON header (format version, metadata), then compressed pickle."""
    header = {"format_version": FORMAT_VERSION, "sklearn": sklearn.__version__, "metadata": model.metadata}
    buf = io.BytesIO()
    buf.write(MAGIC)
    buf.write(json.dumps(header, default=str).encode("utf-8") + b"\n")
    buf.write(zlib.compress(pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL), 6))
    return buf.getvalue()


def read_header(data: bytes) -> dict[str, Any]:
    """The JSON header of serialised model bytes (without unpickling)."""
    if not isinstance(data, (bytes, bytearray)) or not data.startswith(MAGIC):
        raise ModelFormatError("not a serialized failure model (bad magic bytes)")
    end = data.find(b"\n", len(MAGIC))
    if end < 0:
        raise ModelFormatError("truncated failure model header")
    try:
        return json.loads(data[len(MAGIC):end])
    except json.JSONDecodeError as exc:
        raise ModelFormatError(f"corrupt failure model header: {exc}") from exc


def load(data: bytes) -> FailureModel:
    """Load bytes from :func:`dump`. Raises :class:`ModelFormatError` on a wrong format version or corrupt
    data."""
    header = read_header(data)
    version = header.get("format_version")
    if version != FORMAT_VERSION:
        raise ModelFormatError(
            f"failure model format version {version}; this code reads version {FORMAT_VERSION}; "
            "retrain the model"
        )
    end = data.find(b"\n", len(MAGIC))
    try:
        # Bandit B301: callers load only artifacts they verified (core.signing) or built themselves.
        model = pickle.loads(zlib.decompress(data[end + 1:]))  # nosec B301
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means corrupt bytes
        raise ModelFormatError(f"corrupt failure model payload: {exc}") from exc
    if not isinstance(model, FailureModel):
        raise ModelFormatError("payload is not a FailureModel")
    return model
