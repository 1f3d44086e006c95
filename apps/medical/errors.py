"""The medical app's user-facing errors, all on core's base (:mod:`core.errors`).

Each carries a machine-readable ``code``, a ``message`` naming the file, field or report at fault and
the HTTP ``status`` the API's exception handler and the HTML error middleware answer with:

* :class:`UploadRefused` (400, or 413 over the upload limit): the whole upload is refused
  before anything is stored (nothing sent, over the upload limit, a hostile ZIP);
* :class:`ReportError` (400): a report that does not have the draft's shape, naming the field; it is
  also a ``ValueError`` because ``core.llm`` expects a validate function to raise one;
* :class:`ReportLocked` (409): a signed report is never edited or signed again;
* :class:`ReportNotFinal` (409): addenda are for signed reports only.

Django-free (core's base is plain Python), so the pure builders (SR, FHIR, PDF) may raise them too.
"""
from __future__ import annotations

from core.errors import ConflictError, InputError

__all__ = ["ReportError", "ReportLocked", "ReportNotFinal", "UploadRefused"]


class UploadRefused(InputError):
    """The whole upload is refused before anything is stored (hostile ZIP, nothing usable, too big).

    The status follows the code, never the message: :attr:`LIMIT_CODES` (the request or its files over
    ``UPLOAD_MAX_BYTES``) answer 413; every other code (``upload_missing``, and a hostile ZIP's
    ``unsafe_path``, ``encrypted``, ``bad_zip``, ``zip_bomb``) 400, as the API always answered them.
    """

    code = "upload_refused"
    #: codes of an upload over the platform's upload limit (HTTP 413)
    LIMIT_CODES = frozenset({"upload_too_large"})

    def __init__(self, message: str, *, code: str = "upload_refused", field: str = ""):
        super().__init__(message, code=code, field=field, status=413 if code in self.LIMIT_CODES else 400)


class ReportError(InputError, ValueError):
    """A report dict that does not have the draft's shape; names the field (400)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"report field {field!r}: {message}", field=field)


class ReportLocked(ConflictError):
    """A signed report is never edited again: add an addendum instead (409)."""

    code = "report_final"


class ReportNotFinal(ConflictError):
    """Addenda are for signed reports; a draft is edited directly (409)."""

    code = "report_not_final"
