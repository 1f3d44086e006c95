"""Uploads (web page, REST, STOW-RS, demo): checked, stored as one batch, queued for ingest, audited.

Nothing is stored when an upload is refused (:class:`~apps.medical.errors.UploadRefused`): nothing
sent, over the upload limit, or a hostile ZIP (climbing paths, symlinks, encryption, declared bombs).
"""
from __future__ import annotations

import io
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.files.base import File
from django.core.files.storage import default_storage
from django.db import transaction

from apps.medical.errors import UploadRefused
from apps.medical.ingest import ZipRefused, is_zip, iter_zip_members
from apps.medical.models import Study, UploadIdentity
from core import services as core_services
from core.audit import audit_record
from core.errors import AppError
from core.models import Batch
from core.uploads import upload_check

from .config import LANGUAGES, zip_limits

#: multipart framing allowed on top of the files themselves when a body's length is judged
MULTIPART_OVERHEAD = 1024 * 1024
#: the audit log's name for where an upload came from (the batch's ``source`` otherwise)
_VIA = {"upload": "web"}


@dataclass
class UploadFile:
    """One file of an upload: a display name and a readable, seekable file object."""

    name: str
    file: Any
    size: int


def as_upload_files(files: Iterable[Any]) -> list[UploadFile]:
    """Django UploadedFiles, ``(name, bytes)`` pairs or Django Files → :class:`UploadFile`."""
    out = []
    for item in files:
        if isinstance(item, tuple):
            name, data = item
            out.append(UploadFile(str(name), io.BytesIO(bytes(data)), len(data)))
        else:
            size = getattr(item, "size", None)
            out.append(UploadFile(str(getattr(item, "name", "") or "upload"), item, int(size or 0)))
    return out


def upload_length_check(content_length: Any) -> None:
    """Refuse an over-limit request from its ``Content-Length``, before its body is read (413)."""
    try:
        length = int(content_length or 0)
    except (TypeError, ValueError):
        length = 0
    limit = settings.UPLOAD_MAX_BYTES
    if length > limit + MULTIPART_OVERHEAD:
        raise UploadRefused(f"the request is {length / 1048576:.1f} MB, over the upload limit of "
                            f"{limit / 1048576:.0f} MB", code="upload_too_large")


def upload_files_check(files: Iterable[Any]) -> None:
    """Core's upload check as an :class:`UploadRefused` with core's code: nothing sent or only empty
    files (``upload_missing``, 400), more than ``UPLOAD_MAX_BYTES`` together (``upload_too_large``, 413)."""
    try:
        upload_check(list(files), field="files")
    except AppError as exc:
        raise UploadRefused(exc.message, code=exc.code) from None


def _is_zip(fileobj) -> bool:
    fileobj.seek(0)
    head = fileobj.read(4)
    fileobj.seek(0)
    return is_zip(head)


def upload_precheck(files: list[UploadFile]) -> None:
    """Refuse hostile ZIPs before anything is stored: member paths climbing out of the archive,
    symlinks, encrypted members and declared sizes or ratios past the limits (a bomb whose headers
    lie is still stopped while it is expanded in the ingest task)."""
    limits = zip_limits()
    for f in files:
        if not _is_zip(f.file):
            continue
        members = iter_zip_members(f.file, archive_name=f.name, limits=limits)
        try:
            next(members, None)
        except ZipRefused as exc:
            raise UploadRefused(str(exc), code=exc.code) from None
        finally:
            members.close()
            f.file.seek(0)


def upload_file_pseudonym(index: int) -> str:
    """The name an upload's ``index``-th file is known by everywhere but its identity row."""
    return f"file-{index + 1:03d}"


def upload_create(*, owner, files: Iterable[Any], indication: str = "", language: str = "en",
                  source: str = "upload", request=None, audit_detail: dict | None = None) -> Batch:
    """Store the uploaded files as one batch and queue its ingest (one Study job per study in it).

    Audited once (``submit``, with ``audit_detail`` added). Raises :class:`UploadRefused` when nothing
    usable was sent, the files are over the upload limit or a ZIP is hostile (nothing is stored then).
    """
    items = as_upload_files(files)
    if not items:
        raise UploadRefused("no files", code="upload_missing")
    upload_files_check(items)
    upload_precheck(items)
    language = language if language in LANGUAGES else "en"
    # File names and ZIP paths often carry the patient's name: the batch, its storage paths and every
    # row keep a pseudonym (file-001...); the originals go to the upload's identity row only.
    batch = Batch(owner=owner, app="medical", kind=Study.job_type,
                  original_filename=f"{len(items)} file{'s' if len(items) != 1 else ''}",
                  size_bytes=sum(f.size for f in items))
    stored, originals = [], {}
    for n, item in enumerate(items):
        item.file.seek(0)
        pseudonym = upload_file_pseudonym(n)
        path = default_storage.save(f"medical/uploads/{batch.id}/{n:05d}.upload", File(item.file))
        stored.append({"name": pseudonym, "path": path, "size": item.size})
        originals[pseudonym] = item.name[:500]
    # the indication as entered may name the patient: the identity row keeps it; the ingest task gives
    # each study (and the batch) the filtered text
    batch.options = {"files": stored, "indication": "", "language": language, "source": source}
    with transaction.atomic():
        batch.save()
        UploadIdentity.objects.create(batch=batch, files=originals, indication=(indication or "")[:4000])
        audit_record(actor=owner, action="submit", obj=batch, request=request,
                     detail={"files": len(items), "via": _VIA.get(source, source), **(audit_detail or {})})
        core_services.batch_enqueue(batch=batch)
    return batch
