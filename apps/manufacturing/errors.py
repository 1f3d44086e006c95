"""The refusals a manufacturing request can meet, on core's base (:mod:`core.errors`).

The API's exception handler answers each in the one JSON error shape
(``{"error": {"status", "code", "message", "details"?}}``); an HTML view puts it on its form or
shows it as a message, and one it lets through becomes the error page with its status.

The domain modules (``ingest/``, ``failure_model/``, ``features``) stay Django-free and raise their
own ``ValueError``-style exceptions; the services translate those into the classes here.
"""
from __future__ import annotations

from core.errors import ConflictError, InputError


class ReadingsRejected(InputError):
    """Pushed readings that cannot be stored (400): nothing usable, or a time axis that does not match
    the machine's stored readings.

    ``errors`` lists the per-item problems (one line each, naming the item, machine and sensor); the
    API shows the first 50 as ``details.readings``.
    """

    code = "invalid_readings"

    def __init__(self, message: str, *, errors: list[str] | None = None, code: str | None = None):
        self.errors = list(errors or [])
        # no ``field``: without item errors the API answer carries no ``details`` (as it always has)
        super().__init__(message, code=code, details={"readings": self.errors[:50]} if self.errors else None)


class AlertAlreadyResolved(ConflictError):
    """Acknowledging or resolving an alert that is already resolved (409, code ``conflict``)."""
