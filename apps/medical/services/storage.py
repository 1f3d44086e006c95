"""Stored files: a local path for any stored file (disk or S3), deleting a folder of them, and the raw
(identified) uploads: deleted with retries once ingested, leftovers swept."""
from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import tempfile
import time
from collections.abc import Iterable, Iterator

from django.conf import settings
from django.core.files.storage import default_storage
from django.utils import timezone

logger = logging.getLogger(__name__)

RAW_PREFIX = "medical/uploads/"
#: attempts to delete one raw upload, and the pause before each retry (seconds)
RAW_DELETE_ATTEMPTS = 3
RAW_DELETE_BACKOFF = (0.2, 1.0)


@contextlib.contextmanager
def local_path(name: str) -> Iterator[str]:
    """A local file path for a stored file (the file itself on disk storage, a temp copy on S3)."""
    try:
        yield default_storage.path(name)
        return
    except NotImplementedError:
        pass
    fd, tmp = tempfile.mkstemp(suffix=".dcm")
    try:
        with os.fdopen(fd, "wb") as out, default_storage.open(name, "rb") as src:
            for chunk in iter(lambda: src.read(1 << 20), b""):
                out.write(chunk)
        yield tmp
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)


def delete_prefix(prefix: str) -> None:
    """Delete every stored file under ``prefix`` (a folder ending in ``/``); missing is fine."""
    try:
        dirs, names = default_storage.listdir(prefix)
    except (FileNotFoundError, NotImplementedError, OSError):
        return
    for name in names:
        with contextlib.suppress(Exception):
            default_storage.delete(prefix + name)
    for d in dirs:
        delete_prefix(f"{prefix}{d}/")


def raw_uploads_delete(*, paths: Iterable[str]) -> list[str]:
    """Delete raw (identified) uploads, each retried; answer the paths that are still there.

    A failure is logged with the storage path (pseudonymous: ``medical/uploads/<batch>/00000.upload``)
    and the exception's type, never its message or the file's original name; the sweeper
    (:func:`raw_uploads_sweep`) tries again later.
    """
    left = []
    for path in paths:
        for attempt in range(RAW_DELETE_ATTEMPTS):
            try:
                default_storage.delete(path)
                if not default_storage.exists(path):
                    break
                problem = "still present"
            except Exception as exc:  # storage backends raise anything (OSError, botocore errors)
                problem = type(exc).__name__
            if attempt + 1 < RAW_DELETE_ATTEMPTS:
                time.sleep(RAW_DELETE_BACKOFF[min(attempt, len(RAW_DELETE_BACKOFF) - 1)])
        else:
            left.append(path)
            logger.error("medical: the raw upload %s could not be deleted after %d attempts (%s); "
                         "the sweeper will try again", path, RAW_DELETE_ATTEMPTS, problem)
    return left


def raw_uploads_sweep(*, now: dt.datetime | None = None) -> int:
    """Delete raw uploads left behind: of an upload already ingested (or gone), or older than
    ``MEDICAL_RAW_UPLOAD_MAX_AGE_S`` (default 7 days) whatever its state. Answers the files deleted."""
    from core.models import Batch

    now = now or timezone.now()
    max_age = dt.timedelta(seconds=int(getattr(settings, "MEDICAL_RAW_UPLOAD_MAX_AGE_S", 7 * 86400)))
    try:
        batch_dirs, _files = default_storage.listdir(RAW_PREFIX)
    except (FileNotFoundError, NotImplementedError, OSError):
        return 0
    waiting = {Batch.Status.QUEUED, Batch.Status.PARSING}
    deleted = 0
    for name in batch_dirs:
        batch = Batch.objects.filter(pk=name).only("status", "created_at").first() if _is_uuid(name) else None
        if batch is not None and batch.status in waiting and now - batch.created_at < max_age:
            continue
        try:
            _dirs, files = default_storage.listdir(f"{RAW_PREFIX}{name}/")
        except (FileNotFoundError, OSError):
            continue
        paths = [f"{RAW_PREFIX}{name}/{f}" for f in files]
        left = raw_uploads_delete(paths=paths)
        deleted += len(paths) - len(left)
    if deleted:
        logger.info("medical: the raw-upload sweeper deleted %d leftover file(s)", deleted)
    return deleted


def _is_uuid(text: str) -> bool:
    import uuid

    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True
