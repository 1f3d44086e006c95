"""One DICOM file read and checked: Part 10 or preamble-less, header repairs, pixel data decodes.

:func:`parse_dicom` turns a file into an :class:`~.records.Instance` or raises :class:`IngestError`
naming the file and the cause; :func:`read_dataset` and :func:`load_dataset` read the data set itself.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import struct
import warnings
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

from .records import IngestError, Instance

_ENCAPSULATED_ITEM = b"\xfe\xff\x00\xe0"
#: the Media Storage Directory Storage SOP Class (a DICOMDIR)
DICOMDIR_CLASS = "1.2.840.10008.1.3.10"


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
            raise IngestError(name, "truncated",
                              f"truncated: the file ends inside a data element ({_summarise(exc)})")
        except Exception as exc:  # pydicom raises many types on malformed input
            raise IngestError(name, "invalid",
                              f"invalid DICOM data ({type(exc).__name__}: {_summarise(exc)})")
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
                f"truncated: element {tag} needs {length} bytes from offset {tell} "
                f"but the data ends at {size}",
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
                raise IngestError(name, "truncated",
                                  f"truncated: pixel data is shorter than the header says ({text})")
            if (isinstance(exc, (AttributeError, KeyError)) and "Missing required element" in text) or (
                isinstance(exc, ValueError) and "invalid literal" in text
            ):
                raise IngestError(name, "invalid",
                                  f"pixel data cannot be decoded: invalid header value ({text})")
            raise IngestError(name, "undecodable",
                              f"pixel data cannot be decoded: transfer syntax {ts_name} ({ts_uid}): {text}")


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
    if DICOMDIR_CLASS in (sop_class, media_class) or "DirectoryRecordSequence" in ds:
        raise IngestError(name, "dicomdir", "DICOMDIR (media directory index), not an image; skipped")
    if not any(kw in ds for kw in ("PixelData", "FloatPixelData", "DoubleFloatPixelData")):
        what = sop_class.name if sop_class and sop_class.is_valid else "object"
        raise IngestError(name, "no_pixel_data",
                          f"no pixel data ({what}): not an image, not used for the draft")
    for kw in ("Rows", "Columns", "BitsAllocated"):
        if _int_or_none(ds.get(kw)) in (None, 0):
            raise IngestError(name, "invalid",
                              f"pixel data cannot be decoded: missing or invalid {kw} in the header")
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


def load_dataset(instance: Instance, *, stop_before_pixels: bool = False,
                 defer_size: int | None = None) -> Dataset:
    """Read an ingested instance from its path, with the same repairs :func:`parse_dicom` applied.

    Raises :class:`IngestError` if the instance has no path (it came as bytes without ``dest_dir``).
    """
    if not instance.path:
        raise IngestError(instance.name, "invalid", "instance has no stored path (ingest it with dest_dir)")
    ds = read_dataset(instance.name, instance.path, stop_before_pixels=stop_before_pixels,
                      defer_size=defer_size)
    ds.StudyInstanceUID = instance.study_instance_uid
    ds.SeriesInstanceUID = instance.series_instance_uid
    ds.SOPInstanceUID = instance.sop_instance_uid
    return ds

