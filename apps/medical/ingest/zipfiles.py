"""ZIP archives opened safely: paths, symlinks, encryption and bomb limits checked while streaming.

A member whose path climbs out of the archive (``..``, an absolute path, a drive letter), a symlink
member, an encrypted member, or an archive past the limits on member count, total uncompressed size
or compression ratio refuses the *whole* archive with :class:`ZipRefused`.
"""

from __future__ import annotations

import io
import os
import re
import stat
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from .records import IngestError

ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
_IGNORED_MEMBER = re.compile(r"(^|/)(__MACOSX/|\.DS_Store$|Thumbs\.db$|desktop\.ini$)", re.IGNORECASE)


class ZipRefused(IngestError):
    """A whole ZIP archive refused (path traversal, symlink, encryption, bomb limits, corrupt)."""


@dataclass(frozen=True)
class ZipLimits:
    """Limits applied to one ZIP archive; every one is checked while streaming, not only on headers."""

    max_members: int = 20_000
    max_total_uncompressed: int = 4 * 1024**3
    max_member_uncompressed: int = 2 * 1024**3
    max_ratio: float = 200.0
    ratio_min_size: int = 1024 * 1024  # ratio is only judged for members at least this big



def is_zip(head: bytes) -> bool:
    """True when the first bytes of a file are a ZIP's (recognised by its magic, not its name)."""
    return head[:4] in ZIP_MAGIC


def _check_member_path(archive: str, info: zipfile.ZipInfo) -> str | None:
    """Return the member's safe relative path, None for directories; raise ZipRefused if unsafe."""
    raw = info.filename
    if "\x00" in raw:
        raise ZipRefused(archive, "unsafe_path", f"member name contains a NUL byte: {raw!r}")
    norm = raw.replace("\\", "/")
    if norm.startswith("/") or re.match(r"^[A-Za-z]:", norm):
        raise ZipRefused(archive, "unsafe_path", f"member {raw!r} has an absolute path")
    parts = [p for p in PurePosixPath(norm).parts if p not in ("", ".")]
    if any(p == ".." for p in parts):
        raise ZipRefused(archive, "unsafe_path", f"member {raw!r} climbs out of the archive ('..')")
    mode = (info.external_attr >> 16) & 0xFFFF
    if stat.S_ISLNK(mode):
        raise ZipRefused(archive, "unsafe_path", f"member {raw!r} is a symbolic link")
    if info.flag_bits & 0x1:
        raise ZipRefused(archive, "encrypted",
                         f"member {raw!r} is encrypted; encrypted ZIPs are not accepted")
    if info.is_dir() or not parts:
        return None
    return "/".join(parts)


def iter_zip_members(
    source: str | os.PathLike[str] | bytes | io.BufferedIOBase,
    *,
    archive_name: str | None = None,
    limits: ZipLimits | None = None,
) -> Iterator[tuple[str, bytes]]:
    """Yield ``(relative_path, data)`` for each file member of a ZIP, safely.

    All member paths, types and declared sizes are checked before the first member is yielded;
    the actual decompressed byte counts are checked again while reading (a lying header cannot get
    past the limits). Raises :class:`ZipRefused` naming the archive and the cause.
    """
    limits = limits or ZipLimits()
    name = archive_name or (str(source) if isinstance(source, (str, os.PathLike)) else "upload.zip")
    fileobj: Any = io.BytesIO(source) if isinstance(source, (bytes, bytearray)) else source
    try:
        zf = zipfile.ZipFile(fileobj)
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise ZipRefused(name, "bad_zip", f"not a readable ZIP archive ({exc})")
    with zf:
        infos = zf.infolist()
        if len(infos) > limits.max_members:
            raise ZipRefused(
                name, "zip_bomb", f"ZIP has {len(infos)} members, more than the limit of {limits.max_members}"
            )
        members: list[tuple[zipfile.ZipInfo, str]] = []
        declared_total = 0
        for info in infos:
            rel = _check_member_path(name, info)
            if rel is None or _IGNORED_MEMBER.search(rel):
                continue
            declared_total += info.file_size
            _check_size(name, rel, info.file_size, info.compress_size, limits)
            members.append((info, rel))
        if declared_total > limits.max_total_uncompressed:
            raise ZipRefused(
                name,
                "zip_bomb",
                f"ZIP expands to {declared_total} bytes, "
                f"more than the limit of {limits.max_total_uncompressed}",
            )
        total = 0
        for info, rel in members:
            data = _read_member(zf, info, name, rel, limits)
            total += len(data)
            if total > limits.max_total_uncompressed:
                raise ZipRefused(
                    name, "zip_bomb", f"ZIP expands past the limit of {limits.max_total_uncompressed} bytes"
                )
            yield rel, data


def _check_size(archive: str, rel: str, size: int, compressed: int, limits: ZipLimits) -> None:
    if size > limits.max_member_uncompressed:
        raise ZipRefused(
            archive,
            "zip_bomb",
            f"member {rel!r} expands to {size} bytes, "
            f"more than the limit of {limits.max_member_uncompressed}",
        )
    if size >= limits.ratio_min_size and size > limits.max_ratio * max(compressed, 1):
        raise ZipRefused(
            archive,
            "zip_bomb",
            f"member {rel!r} has compression ratio {size / max(compressed, 1):.0f}:1, "
            f"above the limit of {limits.max_ratio:.0f}:1 (ZIP bomb?)",
        )


def _read_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, archive: str, rel: str,
                 limits: ZipLimits) -> bytes:
    chunks: list[bytes] = []
    got = 0
    try:
        with zf.open(info) as fh:
            while True:
                chunk = fh.read(1024 * 1024)
                if not chunk:
                    break
                got += len(chunk)
                if got > limits.max_member_uncompressed or got > max(info.file_size, 0):
                    raise ZipRefused(archive, "zip_bomb", f"member {rel!r} expands past its declared size")
                _check_size(archive, rel, got, info.compress_size, limits)
                chunks.append(chunk)
    except (zipfile.BadZipFile, EOFError, OSError, NotImplementedError) as exc:
        raise ZipRefused(archive, "bad_zip", f"member {rel!r} cannot be read ({exc})")
    return b"".join(chunks)
