"""Signed model artifacts: a trained model that lives in shared storage (media folder, S3) is checked
before it is unpickled, so whoever can write to the bucket cannot run code on the workers."""
from __future__ import annotations

import hashlib
import hmac

from django.conf import settings

MAGIC = b"SUITE-SIGNED-1\n"
_DIGEST = hashlib.sha256().digest_size


class ArtifactSignatureError(Exception):
    """The artifact is unsigned, truncated or was changed after it was written."""


def _key() -> bytes:
    return hashlib.sha256(b"model-artifact:" + settings.SECRET_KEY.encode()).digest()


def artifact_sign(payload: bytes) -> bytes:
    """``payload`` with a header and an HMAC-SHA256 over it."""
    return MAGIC + hmac.new(_key(), payload, hashlib.sha256).digest() + payload


def artifact_verify(blob: bytes, *, name: str = "artifact") -> bytes:
    """The payload of a signed artifact; raises :class:`ArtifactSignatureError` if it does not verify."""
    if not blob.startswith(MAGIC) or len(blob) < len(MAGIC) + _DIGEST:
        raise ArtifactSignatureError(f"{name}: not a signed model artifact (retrain or re-import it)")
    mac = blob[len(MAGIC):len(MAGIC) + _DIGEST]
    payload = blob[len(MAGIC) + _DIGEST:]
    if not hmac.compare_digest(mac, hmac.new(_key(), payload, hashlib.sha256).digest()):
        raise ArtifactSignatureError(f"{name}: signature does not match (changed in storage, or SECRET_KEY changed)")
    return payload
