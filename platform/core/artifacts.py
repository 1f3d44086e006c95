"""Trained models as artifacts: one signed format and one per-process cache for every app's models.

Format (``suite-model`` version 1), signed as a whole by :mod:`core.signing`::

    SUITE-SIGNED-1\\n <HMAC-SHA256> SUITE-MODEL-1\\n <JSON header>\\n <zlib-compressed pickle>

The header (``kind``, ``format_version``, the scikit-learn version, the model's metadata) is readable
without unpickling. The signature is checked before anything is unpickled, so whoever can write to the
database or the bucket where artifacts live cannot run code on the workers; a key rotation is finished
with ``manage.py resign_model_artifacts``.
"""
from __future__ import annotations

import hashlib
import json
import pickle  # nosec B403 - only signed artifacts are unpickled
import threading
import zlib
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from core.signing import artifact_sign, artifact_verify

MAGIC = b"SUITE-MODEL-1\n"
FORMAT_VERSION = 1


class ArtifactError(Exception):
    """The bytes are not an artifact of the expected kind, or they are corrupt."""


def artifact_pack(model: Any, *, kind: str, metadata: dict | None = None) -> bytes:
    """Serialise and sign a trained model of ``kind`` (e.g. ``finance.scorecard``)."""
    import sklearn

    header = {"kind": kind, "format_version": FORMAT_VERSION, "sklearn": sklearn.__version__,
              "metadata": metadata or {}}
    payload = (MAGIC + json.dumps(header, default=str).encode("utf-8") + b"\n"
               + zlib.compress(pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL), 6))
    return artifact_sign(payload)


def artifact_header(blob: bytes, *, name: str = "artifact") -> dict[str, Any]:
    """The header of a signed artifact (verified, not unpickled)."""
    return _split(artifact_verify(bytes(blob), name=name), name=name)[0]


def artifact_unpack(blob: bytes, *, kind: str, name: str = "artifact") -> Any:
    """The model in a signed artifact of ``kind``.

    Raises :class:`core.signing.ArtifactSignatureError` when the signature does not verify and
    :class:`ArtifactError` when the bytes hold another kind, another format version or corrupt data.
    """
    header, body = _split(artifact_verify(bytes(blob), name=name), name=name)
    if header.get("kind") != kind:
        raise ArtifactError(f"{name}: holds a {header.get('kind')!r} model, not {kind!r}")
    if header.get("format_version") != FORMAT_VERSION:
        raise ArtifactError(f"{name}: format version {header.get('format_version')}; this code reads "
                            f"{FORMAT_VERSION}: retrain the model")
    try:
        return pickle.loads(zlib.decompress(body))  # nosec B301 - verified above
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means corrupt or incompatible bytes
        raise ArtifactError(f"{name}: the model cannot be read ({type(exc).__name__}: {exc}); "
                            "retrain it") from None


def is_artifact(blob: bytes) -> bool:
    """Whether signed bytes (verified or not) carry this format; for migrating older artifacts."""
    from core.signing import MAGIC as SIGNED

    return bytes(blob[len(SIGNED) + hashlib.sha256().digest_size:][:len(MAGIC)]) == MAGIC


def _split(payload: bytes, *, name: str) -> tuple[dict[str, Any], bytes]:
    if not payload.startswith(MAGIC):
        raise ArtifactError(f"{name}: not a suite model artifact")
    end = payload.find(b"\n", len(MAGIC))
    if end < 0:
        raise ArtifactError(f"{name}: the artifact header is cut off")
    try:
        header = json.loads(payload[len(MAGIC):end])
    except ValueError as exc:
        raise ArtifactError(f"{name}: the artifact header is not JSON ({exc})") from None
    return header, payload[end + 1:]


class ArtifactCache:
    """Models loaded once per process, keyed by whatever identifies an artifact's bytes (a version's
    primary key and its storage name or digest); the least recently used are dropped past ``size``."""

    def __init__(self, size: int = 8):
        self.size = size
        self._items: OrderedDict[Any, Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Any, load: Callable[[], Any]) -> Any:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        model = load()  # outside the lock: loading can take a while, and another thread may load the same
        with self._lock:
            self._items[key] = model
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return model

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
