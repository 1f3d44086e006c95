"""One JSON error shape for the whole API::

    {"error": {"status": 400, "code": "invalid", "message": "...", "details": {...}}}
"""
from __future__ import annotations

import logging

from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, JsonResponse
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from core.errors import AppError

logger = logging.getLogger(__name__)


def error_body(status_code: int, code: str, message: str, details=None) -> dict:
    body = {"error": {"status": status_code, "code": code, "message": message}}
    if details:
        body["error"]["details"] = details
    return body


def _first_message(detail) -> str:
    if isinstance(detail, list) and detail:
        return _first_message(detail[0])
    if isinstance(detail, dict) and detail:
        key, value = next(iter(detail.items()))
        inner = _first_message(value)
        return inner if key in ("non_field_errors", "detail") else f"{key}: {inner}"
    return str(detail)


def exception_handler(exc, context):
    if isinstance(exc, AppError):
        details = exc.details if exc.details is not None else ({"field": exc.field} if exc.field else None)
        return Response(error_body(exc.status, exc.code, exc.message, details), status=exc.status)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied(str(exc) or None)
    elif isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(exc.message_dict if hasattr(exc, "error_dict") else exc.messages)
    response = drf_exception_handler(exc, context)
    if response is None:
        logger.exception("unhandled API error", exc_info=exc)
        return Response(error_body(500, "server_error", "internal error; it has been logged"),
                        status=status.HTTP_500_INTERNAL_SERVER_ERROR)
    if isinstance(exc, exceptions.ValidationError):
        code, message, details = "invalid", _first_message(exc.detail), exc.detail
    else:
        codes = exc.get_codes() if hasattr(exc, "get_codes") else "error"
        code = codes if isinstance(codes, str) else "error"
        message, details = _first_message(exc.detail), None
    response.data = error_body(response.status_code, code, message, details)
    return response


def json_error(status_code: int, code: str, message: str, details=None) -> JsonResponse:
    """The same shape from plain Django views (404/500 handlers under /api/, STOW-RS)."""
    return JsonResponse(error_body(status_code, code, message, details), status=status_code)
