"""API tokens: created with their secret shown once, stored as a hash, revoked."""
from __future__ import annotations

import hashlib
import secrets

from django.utils import timezone

from core.models import ApiToken

TOKEN_PREFIX = "sk"


def token_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def api_token_create(*, user, name: str) -> tuple[ApiToken, str]:
    """A new token; the plain text is returned once and never stored."""
    prefix = secrets.token_hex(4)
    secret = f"{TOKEN_PREFIX}_{prefix}_{secrets.token_urlsafe(32)}"
    token = ApiToken.objects.create(user=user, name=name[:100], prefix=prefix, key_hash=token_hash(secret))
    return token, secret


def api_token_revoke(*, token: ApiToken) -> None:
    ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
