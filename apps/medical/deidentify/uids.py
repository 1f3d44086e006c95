"""Replacement UIDs and patient pseudonyms, deterministic per installation (HMAC of a site secret)."""

from __future__ import annotations

import hashlib
import hmac


def salt_bytes(salt: str | bytes) -> bytes:
    """The salt as bytes; an empty salt is refused (it would make every mapping guessable)."""
    raw = salt.encode("utf-8") if isinstance(salt, str) else bytes(salt)
    if not raw:
        raise ValueError("de-identification salt must be a non-empty per-installation secret")
    return raw


def new_uid(original: str, salt: str | bytes) -> str:
    """Deterministic replacement UID: ``2.25.<int>`` of a version-8 UUID from HMAC-SHA256(salt, uid)."""
    message = str(original).strip().encode("ascii", "replace")
    digest = hmac.new(salt_bytes(salt), message, hashlib.sha256).digest()
    n = int.from_bytes(digest[:16], "big")
    n = (n & ~(0xF << 76)) | (0x8 << 76)  # UUID version 8 (custom)
    n = (n & ~(0x3 << 62)) | (0x2 << 62)  # RFC 4122 variant
    return f"2.25.{n}"


def pseudonym(identity: str, salt: str | bytes) -> str:
    """``ANON`` + 12 hex digits: the same patient always gets the same pseudonym at one installation."""
    digest = hmac.new(salt_bytes(salt), ("patient:" + identity).encode("utf-8", "replace"), hashlib.sha256)
    return "ANON" + digest.hexdigest()[:12].upper()
