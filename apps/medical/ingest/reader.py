"""The entry point: any mix of uploaded files, paths and ZIPs → instances, per-file errors, grouping."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path

from .grouping import group_instances
from .parse import parse_dicom
from .records import FileError, IngestError, IngestResult, Instance
from .zipfiles import ZipLimits, ZipRefused, is_zip, iter_zip_members

InputItem = tuple[str, bytes] | str | os.PathLike[str]


_QUOTED = re.compile(r"member (?:name )?(?:'[^']*'|\"[^\"]*\"|b'[^']*')")


def _safe_stem(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text)[-80:] or "file"


def ingest(
    items: Iterable[InputItem],
    *,
    dest_dir: str | os.PathLike[str] | None = None,
    limits: ZipLimits | None = None,
    check_pixels: bool = True,
) -> IngestResult:
    """Parse uploaded files and ZIPs; return instances, per-file errors and the study grouping.

    ``items`` are ``(name, bytes)`` pairs or paths. A ZIP member is named ``<archive name>/<index>``
    (00001, 00002...); its path in the archive is in :attr:`IngestResult.member_paths` only. When
    ``dest_dir`` is given, each accepted instance that arrived as bytes (an upload or a ZIP member) is
    written there (named after its SOP Instance UID) and :attr:`Instance.path` points to it, so later
    stages can stream from disk.
    A refused ZIP (:class:`ZipRefused`) is recorded as that archive's error; the other items go on.
    """
    instances: list[Instance] = []
    errors: list[FileError] = []
    member_paths: dict[str, str] = {}
    out_dir = Path(dest_dir) if dest_dir is not None else None
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)

    def handle(name: str, data: bytes | None, path: str | None, depth: int) -> None:
        head = data[:4] if data is not None else _peek(path)
        if is_zip(head):
            if depth > 0:
                errors.append(FileError(name, "nested_zip",
                                        "a ZIP inside a ZIP is not opened; upload it separately"))
                return
            try:
                source = data if data is not None else path
                for k, (rel, member) in enumerate(iter_zip_members(source, archive_name=name, limits=limits)):
                    pseudonym = f"{name}/{k + 1:05d}"
                    member_paths[pseudonym] = rel
                    handle(pseudonym, member, None, depth + 1)
            except ZipRefused as exc:
                # the message quotes the member's path: it may carry a name, so it is left out
                errors.append(FileError(exc.name, exc.code, _QUOTED.sub("a member", exc.message)))
            return
        try:
            inst = parse_dicom(name, data if data is not None else path, path=path, check_pixels=check_pixels)
        except IngestError as exc:
            errors.append(FileError(exc.name, exc.code, exc.message))
            return
        if out_dir is not None and data is not None:
            target = out_dir / f"{_safe_stem(inst.sop_instance_uid)}.dcm"
            target.write_bytes(data)
            inst.path = str(target)
        instances.append(inst)

    for item in items:
        if isinstance(item, tuple):
            name, data = item
            handle(str(name), bytes(data), None, 0)
        else:
            p = os.fspath(item)
            if not os.path.isfile(p):
                errors.append(FileError(p, "invalid", "no such file"))
                continue
            handle(p, None, p, 0)
    return IngestResult(instances, errors, group_instances(instances), member_paths)


def _peek(path: str | None) -> bytes:
    if path is None:
        return b""
    try:
        with open(path, "rb") as fh:
            return fh.read(4)
    except OSError:
        return b""
