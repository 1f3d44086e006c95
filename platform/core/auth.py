"""Bearer-token authentication for the REST API, and role checks for pages and endpoints."""
from __future__ import annotations

import hmac
from functools import wraps

from django.core.exceptions import PermissionDenied
from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions, permissions

from core.models import ApiToken
from core.roles import user_has_role
from core.services import token_hash


class BearerTokenAuthentication(authentication.BaseAuthentication):
    """``Authorization: Bearer sk_<prefix>_<secret>``; only the hash is stored; revoked tokens fail."""

    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode("latin-1")
        if not header:
            return None
        parts = header.split()
        if parts[0].lower() != self.keyword.lower():
            return None
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed("Authorization header must be 'Bearer <token>'")
        secret = parts[1]
        pieces = secret.split("_", 2)
        if len(pieces) != 3:
            raise exceptions.AuthenticationFailed("invalid token")
        token = ApiToken.objects.select_related("user").filter(prefix=pieces[1]).first()
        if token is None or not hmac.compare_digest(token.key_hash, token_hash(secret)):
            raise exceptions.AuthenticationFailed("invalid token")
        if token.revoked_at is not None:
            raise exceptions.AuthenticationFailed("token revoked")
        if not token.user.is_active:
            raise exceptions.AuthenticationFailed("user inactive")
        now = timezone.now()
        if token.last_used_at is None or (now - token.last_used_at).total_seconds() > 60:
            ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        return token.user, token

    def authenticate_header(self, request):
        return self.keyword


class BearerTokenScheme(OpenApiAuthenticationExtension):
    """Documents the bearer tokens in /api/schema/ (securitySchemes.bearerAuth)."""

    target_class = "core.auth.BearerTokenAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer",
                "description": "An API token: Authorization: Bearer sk_..."}


def HasRole(role: str):  # noqa: N802 - reads like a class in permission_classes
    """A DRF permission class requiring ``role`` (admins have every role)."""

    class _HasRole(permissions.BasePermission):
        message = f"this endpoint needs the '{role}' role"

        def has_permission(self, request, view):
            return bool(request.user and request.user.is_authenticated and user_has_role(request.user, role))

    _HasRole.__name__ = f"HasRole_{role}"
    return _HasRole


def role_required(role: str):
    """Page decorator: log in first, then 403 without ``role``."""

    def decorator(view):
        @wraps(view)
        def wrapped(request, *args, **kwargs):
            if not request.user.is_authenticated:
                from django.contrib.auth.views import redirect_to_login

                return redirect_to_login(request.get_full_path())
            if not user_has_role(request.user, role):
                raise PermissionDenied(f"this page needs the '{role}' role")
            return view(request, *args, **kwargs)

        return wrapped

    return decorator
