"""Stored files: a local path for any stored file (disk or S3), and deleting a folder of them."""
from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator

from django.core.files.storage import default_storage


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
