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


def _key(secret: str | None = None) -> bytes:
    return hashlib.sha256(b"model-artifact:" + (secret or settings.SECRET_KEY).encode()).digest()


def _verifying_keys() -> list[bytes]:
    """The current key first, then those of ``SECRET_KEY_FALLBACKS`` (a key rotation in progress)."""
    return [_key(), *(_key(old) for old in getattr(settings, "SECRET_KEY_FALLBACKS", []) or [])]


def artifact_sign(payload: bytes) -> bytes:
    """``payload`` with a header and an HMAC-SHA256 over it."""
    return MAGIC + hmac.new(_key(), payload, hashlib.sha256).digest() + payload


def artifact_verify(blob: bytes, *, name: str = "artifact") -> bytes:
    """The payload of a signed artifact; raises :class:`ArtifactSignatureError` if it does not verify."""
    return _verify(blob, name=name)[0]


def artifact_signed_with_current_key(blob: bytes, *, name: str = "artifact") -> bool:
    """Whether a valid artifact was signed with ``SECRET_KEY`` (False: with a fallback key)."""
    return _verify(blob, name=name)[1]


def _verify(blob: bytes, *, name: str) -> tuple[bytes, bool]:
    if not blob.startswith(MAGIC) or len(blob) < len(MAGIC) + _DIGEST:
        raise ArtifactSignatureError(f"{name}: not a signed model artifact (retrain or re-import it)")
    mac = blob[len(MAGIC):len(MAGIC) + _DIGEST]
    payload = blob[len(MAGIC) + _DIGEST:]
    for index, key in enumerate(_verifying_keys()):
        if hmac.compare_digest(mac, hmac.new(key, payload, hashlib.sha256).digest()):
            return payload, index == 0
    raise ArtifactSignatureError(f"{name}: signature does not match (changed in storage, or signed "
                                 "with a key that is neither SECRET_KEY nor in SECRET_KEY_FALLBACKS)")
