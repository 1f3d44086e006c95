"""One base for the errors a user's request can cause, mapped once for the API and once for HTML.

A service raises an :class:`AppError` subclass with a ``code`` (machine-readable), a ``message`` that
names the file, row or field at fault, the ``field`` (a form field or a request key, or "") and the
HTTP ``status``. The API's exception handler (``core.api.errors``) answers it in the one error shape;
an HTML view either puts it on its form (:func:`form_add_error`) or lets it through to
:class:`AppErrorMiddleware`, which renders the error page with that status — never a 500.
"""
from __future__ import annotations

from typing import Any


class AppError(Exception):
    """A request the platform refuses, with where and why."""

    code = "invalid"
    status = 400

    def __init__(self, message: str, *, code: str | None = None, field: str = "", status: int | None = None,
                 details: Any = None):
        super().__init__(message)
        self.message = message
        self.field = field
        self.details = details
        if code:
            self.code = code
        if status:
            self.status = status


class InputError(AppError):
    """Bad input: a field, row or column that does not validate (400)."""


class UploadTooLarge(AppError):
    """An upload over a size or count limit (413)."""

    code = "upload_too_large"
    status = 413


class ConflictError(AppError):
    """The object's state does not allow it (a signed report edited, a model not ready): 409."""

    code = "conflict"
    status = 409


def form_add_error(form, exc: AppError) -> None:
    """Show a service's refusal on the form: on its field when the form has that field, else on top."""
    form.add_error(exc.field if exc.field in getattr(form, "fields", {}) else None, exc.message)


class AppErrorMiddleware:
    """HTML requests: an :class:`AppError` that no view handled becomes the error page with its status."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if not isinstance(exception, AppError):
            return None
        if request.path.startswith("/api/"):
            from core.api.errors import json_error

            return json_error(exception.status, exception.code, exception.message, exception.details)
        from django.shortcuts import render

        return render(request, "core/error.html", {"code": exception.status, "message": exception.message},
                      status=exception.status)
