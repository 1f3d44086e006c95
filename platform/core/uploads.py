"""Upload checks shared by every app's form and API."""
from __future__ import annotations

from django.conf import settings

from core.errors import InputError, UploadTooLarge


class UploadMissing(InputError):
    """Nothing was uploaded, or only empty files (400)."""

    code = "upload_missing"


def upload_check(files, *, field: str = "file") -> None:
    """Raise a clear 400 when nothing was sent and a 413 when the files exceed ``UPLOAD_MAX_BYTES``."""
    files = [f for f in (files or []) if f is not None]
    if not files:
        raise UploadMissing(f"no file in the multipart field '{field}'", field=field)
    total = sum(getattr(f, "size", 0) or 0 for f in files)
    limit = settings.UPLOAD_MAX_BYTES
    if total > limit:
        names = ", ".join(getattr(f, "name", "?") for f in files[:5])
        raise UploadTooLarge(
            f"{names}: {total / 1048576:.1f} MB is over the upload limit of {limit / 1048576:.0f} MB",
            field=field)
    empty = [getattr(f, "name", "?") for f in files if not getattr(f, "size", 0)]
    if empty and len(empty) == len(files):
        raise UploadMissing(f"{', '.join(empty[:5])}: the file is empty", field=field)
