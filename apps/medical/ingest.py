"""Accept uploaded DICOM files and ZIP archives, parse them, group them into studies and series.

Django-free. The entry point is :func:`ingest`, which takes any mix of

* ``(name, bytes)`` pairs (an uploaded file),
* paths to files on disk,

where a ZIP (recognised by its magic bytes, not its name) is opened safely with
:func:`iter_zip_members` and each member is treated as one more file. Every file ends as either an
:class:`Instance` (parsed header, pixel data checked to decode) or a :class:`FileError` naming the
file and the cause; one bad file never stops the others.

ZIP policy (see :class:`ZipLimits`): a member whose path climbs out of the archive (``..``, an
absolute path, a drive letter), a symlink member, an encrypted member, or an archive past the limits
on member count, total uncompressed size or compression ratio refuses the *whole* archive with
:class:`ZipRefused` (such archives are hostile, not merely damaged). A ZIP inside a ZIP is not opened:
that member gets its own ``nested_zip`` error and the other members go on.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import stat
import struct
import warnings
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.errors import InvalidDicomError
from pydicom.uid import (
    UID,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
)

__all__ = [
    "FileError",
    "IngestError",
    "IngestResult",
    "Instance",
    "SeriesGroup",
    "StudyGroup",
    "ZipLimits",
    "ZipRefused",
    "group_instances",
    "ingest",
    "iter_zip_members",
    "load_dataset",
    "parse_dicom",
    "read_dataset",
]

ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
_IGNORED_MEMBER = re.compile(r"(^|/)(__MACOSX/|\.DS_Store$|Thumbs\.db$|desktop\.ini$)", re.IGNORECASE)


class IngestError(Exception):
    """A problem with one input file; carries the file name and the cause."""

    def __init__(self, name: str, code: str, message: str) -> None:
        super().__init__(f"{name}: {message}")
        self.name = name
        self.code = code
        self.message = message


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


@dataclass
class FileError:
    """One input file that could not be used. ``code`` is a stable machine-readable cause."""

    name: str
    code: str  # not_dicom | truncated | undecodable | invalid | no_pixel_data | dicomdir | nested_zip | empty
    message: str

    def as_dict(self) -> dict[str, str]:
        """JSON-serialisable form."""
        return {"name": self.name, "status": "error", "code": self.code, "error": self.message}

    def __str__(self) -> str:
        return f"{self.name}: {self.message}"


@dataclass
class Instance:
    """A parsed DICOM instance (header facts only; pixel data is not kept)."""

    name: str
    path: str | None
    study_instance_uid: str
    series_instance_uid: str
    sop_instance_uid: str
    sop_class_uid: str
    sop_class_name: str
    modality: str
    transfer_syntax_uid: str
    transfer_syntax_name: str
    photometric_interpretation: str
    rows: int
    columns: int
    number_of_frames: int
    instance_number: int | None
    image_position_patient: list[float] | None
    image_orientation_patient: list[float] | None
    series_number: int | None
    size_bytes: int
    warnings: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """JSON-serialisable form (original UIDs included: keep it on the platform side)."""
        d = dict(self.__dict__)
        d["status"] = "ok"
        return d


@dataclass
class SeriesGroup:
    """Instances of one series, sorted by position along the slice normal, then InstanceNumber."""

    series_instance_uid: str
    modality: str
    series_number: int | None
    instances: list[Instance]

    @property
    def frame_count(self) -> int:
        """Total frames over the series (slices for single-frame series)."""
        return sum(i.number_of_frames for i in self.instances)


@dataclass
class StudyGroup:
    """Series of one study, sorted by SeriesNumber."""

    study_instance_uid: str
    series: list[SeriesGroup]

    @property
    def modalities(self) -> list[str]:
        """Distinct modalities in the study, in series order."""
        seen: list[str] = []
        for s in self.series:
            if s.modality not in seen:
                seen.append(s.modality)
        return seen


@dataclass
class IngestResult:
    """What :func:`ingest` found: usable instances, per-file errors and the study/series grouping."""

    instances: list[Instance]
    errors: list[FileError]
    studies: list[StudyGroup]

    def file_statuses(self) -> list[dict[str, Any]]:
        """One JSON-serialisable row per input file (ok rows first, then errors)."""
        rows: list[dict[str, Any]] = [
            {
                "name": i.name,
                "status": "ok",
                "study_instance_uid": i.study_instance_uid,
                "series_instance_uid": i.series_instance_uid,
                "sop_instance_uid": i.sop_instance_uid,
                "modality": i.modality,
                "transfer_syntax": i.transfer_syntax_name,
                "frames": i.number_of_frames,
                "warnings": list(i.warnings),
            }
            for i in self.instances
        ]
        rows.extend(e.as_dict() for e in self.errors)
        return rows


# --------------------------------------------------------------------------------------------- ZIP


def _is_zip(head: bytes) -> bool:
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
        raise ZipRefused(archive, "encrypted", f"member {raw!r} is encrypted; encrypted ZIPs are not accepted")
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
                f"ZIP expands to {declared_total} bytes, more than the limit of {limits.max_total_uncompressed}",
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
            f"member {rel!r} expands to {size} bytes, more than the limit of {limits.max_member_uncompressed}",
        )
    if size >= limits.ratio_min_size and size > limits.max_ratio * max(compressed, 1):
        raise ZipRefused(
            archive,
            "zip_bomb",
            f"member {rel!r} has compression ratio {size / max(compressed, 1):.0f}:1, "
            f"above the limit of {limits.max_ratio:.0f}:1 (ZIP bomb?)",
        )


def _read_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, archive: str, rel: str, limits: ZipLimits) -> bytes:
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


# ------------------------------------------------------------------------------------------- DICOM

_ENCAPSULATED_ITEM = b"\xfe\xff\x00\xe0"


def _first_group_plausible(data: bytes) -> bool:
    """True if a preamble-less stream starts like a DICOM data set (group 0x0000/0x0002/0x0008)."""
    if len(data) < 8:
        return False
    le = int.from_bytes(data[0:2], "little")
    be = int.from_bytes(data[0:2], "big")
    return le in (0x0000, 0x0002, 0x0008) or be in (0x0002, 0x0008)


def _summarise(exc: BaseException | str, limit: int = 240) -> str:
    msg = " ".join(str(exc).split())
    msg = re.sub(r"\s+in file (?:<[^>]*>|\S+)", "", msg)  # no server paths in messages
    return (msg[: limit - 1] + "…") if len(msg) > limit else (msg or type(exc).__name__)


def read_dataset(
    name: str,
    source: bytes | str | os.PathLike[str],
    *,
    stop_before_pixels: bool = False,
    defer_size: int | None = None,
) -> Dataset:
    """Read one DICOM data set from bytes or a path; raise :class:`IngestError` on any failure.

    Accepts Part 10 files and also preamble-less (ACR-NEMA style, raw data set) streams when they
    start with a plausible DICOM element; fills in a missing Transfer Syntax UID for native pixel
    data from the encoding the file was read with.
    """
    if isinstance(source, (str, os.PathLike)):
        try:
            with open(source, "rb") as fh:
                head = fh.read(132)
        except OSError as exc:
            raise IngestError(name, "invalid", f"cannot open file ({exc.strerror or exc})")
    else:
        head = bytes(source[:132])
    if not head:
        raise IngestError(name, "empty", "empty file (0 bytes)")
    has_preamble = len(head) >= 132 and head[128:132] == b"DICM"
    if not has_preamble and not _first_group_plausible(head):
        raise IngestError(name, "not_dicom", "not a DICOM file (no DICM preamble and no DICOM data elements)")
    src: Any = io.BytesIO(source) if isinstance(source, (bytes, bytearray)) else source
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            ds = pydicom.dcmread(
                src, force=not has_preamble, stop_before_pixels=stop_before_pixels, defer_size=defer_size
            )
        except InvalidDicomError as exc:
            raise IngestError(name, "not_dicom", f"not a DICOM file ({_summarise(exc)})")
        except (EOFError, struct.error) as exc:
            raise IngestError(name, "truncated", f"truncated: the file ends inside a data element ({_summarise(exc)})")
        except Exception as exc:  # pydicom raises many types on malformed input
            raise IngestError(name, "invalid", f"invalid DICOM data ({type(exc).__name__}: {_summarise(exc)})")
    for w in caught:
        text = str(w.message)
        if "End of file reached" in text or "unexpected end" in text.lower() or "ended before" in text:
            raise IngestError(name, "truncated", f"truncated: {_summarise(text)}")
    if not has_preamble and len(ds) == 0:
        raise IngestError(name, "not_dicom", "not a DICOM file (no DICM preamble and no DICOM data elements)")
    if not has_preamble and "SOPClassUID" not in ds and "PixelData" not in ds:
        raise IngestError(name, "not_dicom", "not a DICOM file (no DICM preamble, no SOP Class UID)")
    _check_complete(name, ds, source)
    _ensure_transfer_syntax(ds)
    return ds


def _check_complete(name: str, ds: Dataset, source: bytes | str | os.PathLike[str]) -> None:
    """Raise ``truncated`` if a top-level element's declared value runs past the end of the data."""
    ts = str(getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", "") or "")
    if ts == DeflatedExplicitVRLittleEndian:
        return  # offsets are in the inflated stream; pixel checks catch short data
    size = len(source) if isinstance(source, (bytes, bytearray)) else os.path.getsize(source)
    for tag in ds.keys():
        raw = ds.get_item(tag)
        tell, length = getattr(raw, "value_tell", None), getattr(raw, "length", None)
        if tell is None or length is None or length == 0xFFFFFFFF:
            continue
        if tell + length > size:
            raise IngestError(
                name,
                "truncated",
                f"truncated: element {tag} needs {length} bytes from offset {tell} but the data ends at {size}",
            )


def _ensure_transfer_syntax(ds: Dataset) -> None:
    """Set file_meta.TransferSyntaxUID when missing and the pixel data is native (not encapsulated)."""
    meta = getattr(ds, "file_meta", None)
    if meta is None:
        meta = FileMetaDataset()
        ds.file_meta = meta
    if "TransferSyntaxUID" in meta:
        return
    pixel = ds.get("PixelData")
    if isinstance(pixel, bytes) and pixel[:4] == _ENCAPSULATED_ITEM:
        return  # compressed but the syntax is unknown: decoding will report it
    enc = getattr(ds, "original_encoding", (None, None))
    implicit, little = (enc if enc and enc[0] is not None else (True, True))
    if implicit:
        meta.TransferSyntaxUID = ImplicitVRLittleEndian
    elif little:
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
    else:
        meta.TransferSyntaxUID = ExplicitVRBigEndian


def _ts_name(ds: Dataset) -> tuple[str, str]:
    ts = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
    if not ts:
        return "", "unknown transfer syntax"
    uid = UID(str(ts))
    return str(uid), uid.name if uid.is_transfer_syntax else f"unrecognised transfer syntax {uid}"


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def _floats(value: Any, n: int) -> list[float] | None:
    try:
        vals = [float(v) for v in value]
    except (TypeError, ValueError):
        return None
    return vals if len(vals) == n else None


def check_pixel_data(name: str, ds: Dataset) -> None:
    """Decode the first and last frame; raise :class:`IngestError` naming why it cannot be decoded."""
    from pydicom.pixels import pixel_array

    ts_uid, ts_name = _ts_name(ds)
    frames = _int_or_none(ds.get("NumberOfFrames")) or 1
    for index in sorted({0, max(frames - 1, 0)}):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                pixel_array(ds, index=index)
        except Exception as exc:
            text = _summarise(exc, 400)
            if "less than expected" in text or "truncat" in text.lower() or "too short" in text.lower():
                raise IngestError(name, "truncated", f"truncated: pixel data is shorter than the header says ({text})")
            if (isinstance(exc, (AttributeError, KeyError)) and "Missing required element" in text) or (
                isinstance(exc, ValueError) and "invalid literal" in text
            ):
                raise IngestError(name, "invalid", f"pixel data cannot be decoded: invalid header value ({text})")
            raise IngestError(
                name, "undecodable", f"pixel data cannot be decoded: transfer syntax {ts_name} ({ts_uid}): {text}"
            )


def parse_dicom(
    name: str,
    source: bytes | str | os.PathLike[str],
    *,
    path: str | None = None,
    check_pixels: bool = True,
) -> Instance:
    """Parse one file into an :class:`Instance`; raise :class:`IngestError` if it cannot be used.

    Non-image objects (SR, RT plans, waveforms) and DICOMDIR files raise with code ``no_pixel_data``
    or ``dicomdir`` so the caller can list them as skipped.
    """
    ds = read_dataset(name, source)
    sop_class = UID(str(ds.get("SOPClassUID", "")))
    media_class = str(getattr(getattr(ds, "file_meta", None), "MediaStorageSOPClassUID", ""))
    if sop_class == "1.2.840.10008.1.3.10" or media_class == "1.2.840.10008.1.3.10" or "DirectoryRecordSequence" in ds:
        raise IngestError(name, "dicomdir", "DICOMDIR (media directory index), not an image; skipped")
    if not any(kw in ds for kw in ("PixelData", "FloatPixelData", "DoubleFloatPixelData")):
        what = sop_class.name if sop_class and sop_class.is_valid else "object"
        raise IngestError(name, "no_pixel_data", f"no pixel data ({what}): not an image, not used for the draft")
    for kw in ("Rows", "Columns", "BitsAllocated"):
        if _int_or_none(ds.get(kw)) in (None, 0):
            raise IngestError(name, "invalid", f"pixel data cannot be decoded: missing or invalid {kw} in the header")
    notes = _fill_missing_uids(ds, source)
    if check_pixels:
        check_pixel_data(name, ds)
    ts_uid, ts_name = _ts_name(ds)
    size = len(source) if isinstance(source, (bytes, bytearray)) else os.path.getsize(source)
    return Instance(
        name=name,
        path=path if path is not None else (str(source) if isinstance(source, (str, os.PathLike)) else None),
        study_instance_uid=str(ds.StudyInstanceUID),
        series_instance_uid=str(ds.SeriesInstanceUID),
        sop_instance_uid=str(ds.SOPInstanceUID),
        sop_class_uid=str(sop_class),
        sop_class_name=sop_class.name if sop_class else "",
        modality=str(ds.get("Modality", "") or "OT"),
        transfer_syntax_uid=ts_uid,
        transfer_syntax_name=ts_name,
        photometric_interpretation=str(ds.get("PhotometricInterpretation", "")),
        rows=int(ds.Rows),
        columns=int(ds.Columns),
        number_of_frames=_int_or_none(ds.get("NumberOfFrames")) or 1,
        instance_number=_int_or_none(ds.get("InstanceNumber")),
        image_position_patient=_floats(ds.get("ImagePositionPatient"), 3),
        image_orientation_patient=_floats(ds.get("ImageOrientationPatient"), 6),
        series_number=_int_or_none(ds.get("SeriesNumber")),
        size_bytes=size,
        warnings=notes,
    )


def _derived_uid(*parts: Any) -> str:
    digest = hashlib.sha256("\x1f".join(str(p) for p in parts).encode("utf-8", "replace")).digest()
    return "2.25." + str(int.from_bytes(digest[:16], "big"))


def _fill_missing_uids(ds: Dataset, source: bytes | str | os.PathLike[str]) -> list[str]:
    """Give a non-conformant file lacking Study/Series/SOP Instance UIDs deterministic ones.

    The study UID derives from the patient and study attributes (so the files of one study still
    group together), the series UID from the study UID and series attributes, the SOP Instance UID
    from the file's bytes. Returns the warnings to show for the file.
    """
    notes: list[str] = []
    if not str(ds.get("StudyInstanceUID", "")).strip():
        ds.StudyInstanceUID = _derived_uid(
            "study", ds.get("PatientID", ""), ds.get("PatientName", ""), ds.get("StudyDate", ""),
            ds.get("StudyTime", ""), ds.get("StudyID", ""), ds.get("AccessionNumber", ""),
        )
        notes.append("StudyInstanceUID missing: derived one from the patient and study attributes")
    if not str(ds.get("SeriesInstanceUID", "")).strip():
        ds.SeriesInstanceUID = _derived_uid(
            "series", ds.StudyInstanceUID, ds.get("SeriesNumber", ""), ds.get("Modality", ""),
            ds.get("SeriesDescription", ""), ds.get("Rows", ""), ds.get("Columns", ""),
        )
        notes.append("SeriesInstanceUID missing: derived one from the series attributes")
    if not str(ds.get("SOPInstanceUID", "")).strip():
        h = hashlib.sha256()
        if isinstance(source, (bytes, bytearray)):
            h.update(source)
        else:
            with open(source, "rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    h.update(block)
        ds.SOPInstanceUID = _derived_uid("sop", h.hexdigest())
        notes.append("SOPInstanceUID missing: derived one from the file's content")
    return notes


def load_dataset(instance: Instance, *, stop_before_pixels: bool = False, defer_size: int | None = None) -> Dataset:
    """Read an ingested instance from its path, with the same repairs :func:`parse_dicom` applied.

    Raises :class:`IngestError` if the instance has no path (it came as bytes without ``dest_dir``).
    """
    if not instance.path:
        raise IngestError(instance.name, "invalid", "instance has no stored path (ingest it with dest_dir)")
    ds = read_dataset(instance.name, instance.path, stop_before_pixels=stop_before_pixels, defer_size=defer_size)
    ds.StudyInstanceUID = instance.study_instance_uid
    ds.SeriesInstanceUID = instance.series_instance_uid
    ds.SOPInstanceUID = instance.sop_instance_uid
    return ds


# ---------------------------------------------------------------------------------------- grouping


def _slice_key(inst: Instance) -> tuple[float, float, str]:
    pos, ori = inst.image_position_patient, inst.image_orientation_patient
    along = 0.0
    if pos and ori:
        r, c = ori[:3], ori[3:]
        normal = (r[1] * c[2] - r[2] * c[1], r[2] * c[0] - r[0] * c[2], r[0] * c[1] - r[1] * c[0])
        along = sum(p * n for p, n in zip(pos, normal, strict=True))
    num = float(inst.instance_number) if inst.instance_number is not None else 0.0
    return (along, num, inst.name) if pos and ori else (num, 0.0, inst.name)


def group_instances(instances: Iterable[Instance]) -> list[StudyGroup]:
    """Group instances by StudyInstanceUID and SeriesInstanceUID; drop duplicate SOP Instance UIDs.

    Within a series, instances are sorted by position along the slice normal (from
    ImagePositionPatient/ImageOrientationPatient) when every instance has them, else by InstanceNumber.
    """
    studies: dict[str, dict[str, list[Instance]]] = {}
    seen: set[str] = set()
    for inst in instances:
        if inst.sop_instance_uid in seen:
            inst.warnings.append("duplicate SOP Instance UID: ignored")
            continue
        seen.add(inst.sop_instance_uid)
        studies.setdefault(inst.study_instance_uid, {}).setdefault(inst.series_instance_uid, []).append(inst)
    out: list[StudyGroup] = []
    for study_uid, series in studies.items():
        groups = []
        for series_uid, members in series.items():
            geometric = all(m.image_position_patient and m.image_orientation_patient for m in members)
            if geometric:
                members.sort(key=_slice_key)
            else:
                members.sort(key=lambda m: (m.instance_number if m.instance_number is not None else 0, m.name))
            groups.append(SeriesGroup(series_uid, members[0].modality, members[0].series_number, members))
        groups.sort(key=lambda g: (g.series_number if g.series_number is not None else 1 << 30, g.series_instance_uid))
        out.append(StudyGroup(study_uid, groups))
    return out


# ------------------------------------------------------------------------------------------ ingest

InputItem = tuple[str, bytes] | str | os.PathLike[str]


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

    ``items`` are ``(name, bytes)`` pairs or paths. When ``dest_dir`` is given, each accepted
    instance that arrived as bytes (an upload or a ZIP member) is written there (named after its
    SOP Instance UID) and :attr:`Instance.path` points to it, so later stages can stream from disk.
    A refused ZIP (:class:`ZipRefused`) is recorded as that archive's error; the other items go on.
    """
    instances: list[Instance] = []
    errors: list[FileError] = []
    out_dir = Path(dest_dir) if dest_dir is not None else None
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)

    def handle(name: str, data: bytes | None, path: str | None, depth: int) -> None:
        head = data[:4] if data is not None else _peek(path)
        if _is_zip(head):
            if depth > 0:
                errors.append(FileError(name, "nested_zip", "a ZIP inside a ZIP is not opened; upload it separately"))
                return
            try:
                for rel, member in iter_zip_members(data if data is not None else path, archive_name=name, limits=limits):
                    handle(f"{name}/{rel}", member, None, depth + 1)
            except ZipRefused as exc:
                errors.append(FileError(exc.name, exc.code, exc.message))
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
    return IngestResult(instances, errors, group_instances(instances))


def _peek(path: str | None) -> bytes:
    if path is None:
        return b""
    try:
        with open(path, "rb") as fh:
            return fh.read(4)
    except OSError:
        return b""
