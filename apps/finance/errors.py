"""The finance app's user-facing errors, on core's base (:mod:`core.errors`).

Each carries where (``field``: a form field, a request key, a query parameter or the uploaded file)
and what (``message``). The API's exception handler answers any of them in the one JSON error shape
with its status; an HTML view puts them on its form (``core.errors.form_add_error``) or shows them as
a message. Django-free, so the domain helpers (``decisions``) can raise them too.
"""
from __future__ import annotations

from core.errors import ConflictError, InputError


class FinanceInputError(InputError):
    """Bad input from a user (400, code ``invalid``): ``field`` names the field (or row/column) at fault."""


class FinanceConflict(ConflictError):
    """The object's state does not allow the action (409, code ``conflict``): e.g. reviewing an
    assessment that has not finished."""


class FilterError(InputError):
    """A results-table filter or sort value is wrong (400, code ``invalid``); ``field`` names the query
    parameter. The message reads ``"<field>: <reason>"``; ``reason`` is the part after the field."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}", field=field)
        self.reason = message
