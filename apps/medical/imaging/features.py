"""Per-series features (metadata, geometry, intensity statistics, HU tissue classes, key images) and
the study summary over them.

:func:`series_features` never holds more than one frame's pixels at a time (plus at most ten
downscaled key-image candidates); statistics are exact running moments plus a streaming histogram
(:mod:`.stats`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image
from pydicom.uid import UID

from .metadata import instance_metadata
from .pixels import (
    ImagingError,
    Source,
    _downscale,
    _fg_value,
    _is_color,
    _iter_raw_frames,
    _luminance,
    _num,
    _open,
    _png,
    display_frame,
    frame_count,
    modality_frame,
)
from .stats import RunningStats

HU_CLASSES: list[tuple[str, float, float]] = [
    ("air", -math.inf, -900.0),
    ("lung", -900.0, -200.0),
    ("fat", -200.0, -30.0),
    ("soft_tissue", -30.0, 300.0),
    ("bone", 300.0, math.inf),
]
CT_OUTSIDE_FOV_HU = -1100.0  # CT values below this are padding/outside the scan circle, not tissue


@dataclass
class KeyImage:
    """A key image: 8-bit PNG plus where it came from (index counts frames across the series)."""

    index: int
    frame: int
    sop_instance_uid: str
    instance_number: int | None
    window: dict[str, Any]
    png: bytes
    width: int
    height: int

    def meta(self) -> dict[str, Any]:
        """JSON-serialisable description (without the PNG bytes)."""
        return {
            "index": self.index,
            "frame": self.frame,
            "sop_instance_uid": self.sop_instance_uid,
            "instance_number": self.instance_number,
            "window": self.window,
            "width": self.width,
            "height": self.height,
        }


@dataclass
class SeriesResult:
    """:func:`series_features` output: JSON-serialisable ``features`` and the key images' PNGs."""

    features: dict[str, Any]
    key_images: list[KeyImage] = field(default_factory=list)



def _orientation_label(iop: list[float] | None) -> str | None:
    if not iop or len(iop) != 6:
        return None
    r, c = np.array(iop[:3]), np.array(iop[3:])
    normal = np.cross(r, c)
    axis = int(np.argmax(np.abs(normal)))
    if abs(normal[axis]) < 0.8:
        return "oblique"
    return ("sagittal", "coronal", "axial")[axis]


def _floats(value: Any, n: int) -> list[float] | None:
    try:
        vals = [float(v) for v in value]
    except (TypeError, ValueError):
        return None
    return vals if len(vals) == n and all(math.isfinite(v) for v in vals) else None


# --------------------------------------------------------------------------------- series features


class _KeyPicker:
    """Keeps evenly strided key-image candidates (≤ 2·k) without knowing the series length."""

    def __init__(self, k: int, max_size: int) -> None:
        self.k = max(k, 0)
        self.max_size = max_size
        self.stride = 1
        self.items: dict[int, tuple[Image.Image, dict[str, Any]]] = {}

    def wants(self, index: int) -> bool:
        return self.k > 0 and index % self.stride == 0

    def add(self, index: int, pil: Image.Image, meta: dict[str, Any]) -> None:
        self.items[index] = (pil, meta)
        while len(self.items) > 2 * self.k:
            self.stride *= 2
            self.items = {i: v for i, v in self.items.items() if i % self.stride == 0}

    def pick(self, total: int) -> list[KeyImage]:
        if not self.items or total == 0:
            return []
        chosen: list[int] = []
        available = sorted(self.items)
        for j in range(min(self.k, len(available))):
            target = (j + 0.5) * total / min(self.k, total)
            best = min((i for i in available if i not in chosen), key=lambda i: abs(i - target))
            chosen.append(best)
        out = []
        for i in sorted(chosen):
            pil, meta = self.items[i]
            out.append(KeyImage(png=_png(pil), width=pil.size[0], height=pil.size[1], index=i, **meta))
        return out


def series_features(
    instances_iter: Iterable[Source],
    *,
    key_images: int = 5,
    max_size: int = 512,
    preset: str = "auto",
) -> SeriesResult:
    """Features of one series from instances given one at a time (paths, Datasets or ingest Instances).

    Pass the instances in slice order (as :func:`apps.medical.ingest.group_instances` sorts them).
    Only one frame's pixels are held at once. An instance that fails to decode is listed in
    ``features["errors"]`` (naming the file) and the others go on; :class:`ImagingError` is raised
    only when no frame at all could be read.
    """
    stats = RunningStats()
    picker = _KeyPicker(key_images, max_size)
    meta: dict[str, Any] | None = None
    errors: list[str] = []
    positions: list[np.ndarray] = []
    iop: list[float] | None = None
    dims: set[tuple[int, int]] = set()
    n_instances = 0
    n_frames = 0
    excluded = 0
    spacing: list[float] | None = None
    thickness: float | None = None
    is_ct = False
    color = False
    burned: set[str] = set()
    transfer_syntaxes: set[str] = set()
    series_uid = None
    last_name = "series"

    for src in instances_iter:
        try:
            ds, name, path = _open(src)
        except ImagingError as exc:
            errors.append(str(exc))
            continue
        last_name = name
        if not any(k in ds for k in ("PixelData", "FloatPixelData", "DoubleFloatPixelData")):
            errors.append(f"{name}: no pixel data: not an image")
            continue
        if meta is None:
            meta = instance_metadata(ds)
            series_uid = str(ds.get("SeriesInstanceUID", "")) or None
            is_ct = meta["modality"] == "CT"
            color = _is_color(ds)
            iop = _floats(ds.get("ImageOrientationPatient"), 6) or _floats(
                _fg_value(ds, 0, "PlaneOrientationSequence", "ImageOrientationPatient"), 6
            )
            spacing = _floats(ds.get("PixelSpacing"), 2) or _floats(
                _fg_value(ds, 0, "PixelMeasuresSequence", "PixelSpacing"), 2
            )
            thickness = _num(ds.get("SliceThickness")) or _num(
                _fg_value(ds, 0, "PixelMeasuresSequence", "SliceThickness")
            )
        ts = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
        if ts:
            transfer_syntaxes.add(UID(str(ts)).name)
        if str(ds.get("BurnedInAnnotation", "")).upper() in ("YES", "NO"):
            burned.add(str(ds.BurnedInAnnotation).upper())
        padding = _num(ds.get("PixelPaddingValue"))
        sop_uid = str(ds.get("SOPInstanceUID", ""))
        inst_no = None
        try:
            inst_no = int(ds.get("InstanceNumber")) if ds.get("InstanceNumber") not in (None, "") else None
        except (TypeError, ValueError):
            inst_no = None
        nf = frame_count(ds)
        got = 0
        try:
            for f, arr in _iter_raw_frames(ds, path, name):
                pos = _floats(ds.get("ImagePositionPatient"), 3) if nf == 1 else _floats(
                    _fg_value(ds, f, "PlanePositionSequence", "ImagePositionPatient"), 3
                )
                if pos is not None:
                    positions.append(np.array(pos))
                dims.add((int(arr.shape[0]), int(arr.shape[1])))
                if _is_color(ds):
                    values = _luminance(arr if arr.ndim == 3 else np.stack([arr] * 3, -1)).reshape(-1)
                else:
                    values = modality_frame(ds, arr, f).reshape(-1)
                    mask = np.isfinite(values)
                    if padding is not None and not _is_color(ds):
                        mask &= arr.reshape(-1) != padding
                    if is_ct:
                        mask &= values >= CT_OUTSIDE_FOV_HU
                    excluded += int(values.size - mask.sum())
                    values = values[mask]
                stats.add(values)
                index = n_frames
                if picker.wants(index):
                    img, window = display_frame(ds, arr, f, preset)
                    picker.add(
                        index,
                        _downscale(img, max_size),
                        {"frame": f, "sop_instance_uid": sop_uid, "instance_number": inst_no,
                         "window": window},
                    )
                n_frames += 1
                got += 1
        except ImagingError as exc:
            errors.append(str(exc))
        except (ValueError, TypeError, IndexError, KeyError, AttributeError) as exc:
            why = " ".join(str(exc).split())[:200]
            errors.append(f"{name}: cannot process pixel data ({type(exc).__name__}: {why})")
        if got:
            n_instances += 1
        del ds

    if meta is None or n_frames == 0:
        first_error = f" ({errors[0]})" if errors else ""
        raise ImagingError(last_name, "no decodable image frames in the series" + first_error)

    features: dict[str, Any] = dict(meta)
    rows, cols = sorted(dims)[0] if dims else (None, None)
    features.update(
        {
            "series_instance_uid": series_uid,
            "instances": n_instances,
            "frames": n_frames,
            "rows": rows,
            "columns": cols,
            "size_varies": len(dims) > 1,
            "color": color,
            "transfer_syntaxes": sorted(transfer_syntaxes),
            "pixel_spacing_mm": [round(v, 4) for v in spacing] if spacing else None,
            "slice_thickness_mm": round(thickness, 3) if thickness else None,
            "orientation": _orientation_label(iop),
            "units": "HU" if is_ct else ("RGB luminance" if color else "stored value after rescale"),
            "intensity": stats.as_dict(),
            "excluded_pixels": excluded,
            "burned_in_annotation": "YES" if "YES" in burned else ("NO" if burned else None),
            "errors": errors[:20],
        }
    )
    features.update(_geometry(positions, iop, thickness))
    if stats.n:
        features["histogram"] = stats.hist.summary(stats.min, stats.max, 16)
        if is_ct:
            features["hu_classes"] = {
                name: round(stats.hist.fraction_between(a, b), 4) for name, a, b in HU_CLASSES
            }
    keys = picker.pick(n_frames)
    withheld = burned_in_risk(features)
    if withheld:  # pixels that may carry a name are never shown as de-identified key images
        keys = []
        features["key_images_withheld"] = withheld
    features["key_images"] = [k.meta() for k in keys]
    return SeriesResult(features, keys)


#: modalities whose images usually carry burned-in text (ultrasound, screenshots, captures, documents)
BURNED_IN_MODALITIES = frozenset({"US", "IVUS", "SC", "OT", "ES", "XC", "DOC", "GM"})


def burned_in_risk(features: dict[str, Any]) -> str | None:
    """Why a series' pixels may show identifying text (``burned_in_annotation``: the file says so;
    ``burned_in_likely``: its modality or SOP class usually carries it and the file does not say NO),
    or None. Such a series gives no key images; the PDF and the study page say so."""
    flag = features.get("burned_in_annotation")
    if flag == "YES":
        return "burned_in_annotation"
    if flag == "NO":
        return None
    sop_class = str(features.get("sop_class") or "").lower()
    if (str(features.get("modality") or "").upper() in BURNED_IN_MODALITIES
            or "secondary capture" in sop_class or "ultrasound" in sop_class or "endoscop" in sop_class):
        return "burned_in_likely"
    return None


def _geometry(positions: list[np.ndarray], iop: list[float] | None,
              thickness: float | None) -> dict[str, Any]:
    out: dict[str, Any] = {"spacing_between_slices_mm": None, "extent_mm": None, "irregular_spacing": False}
    if len(positions) < 2 or not iop:
        return out
    normal = np.cross(np.array(iop[:3]), np.array(iop[3:]))
    along = np.array([float(p @ normal) for p in positions])
    along.sort()
    gaps = np.diff(along)
    gaps = gaps[gaps > 1e-4]
    if gaps.size == 0:
        return out
    median = float(np.median(gaps))
    out["spacing_between_slices_mm"] = round(median, 3)
    out["extent_mm"] = round(float(along[-1] - along[0]), 2)
    out["irregular_spacing"] = bool(gaps.max() - gaps.min() > 0.1 * median)
    return out


def study_summary(series: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Study-level view over series features: modalities, body parts, descriptions, counts."""
    items = list(series)
    modalities: list[str] = []
    body_parts: list[str] = []
    for f in items:
        if f.get("modality") and f["modality"] not in modalities:
            modalities.append(f["modality"])
        if f.get("body_part") and f["body_part"] not in body_parts:
            body_parts.append(f["body_part"])
    return {
        "modalities": modalities,
        "body_parts": body_parts,
        "study_description": next((f["study_description"] for f in items if f.get("study_description")),
                                  None),
        "series_count": len(items),
        "total_frames": sum(int(f.get("frames") or 0) for f in items),
        "burned_in_annotation": "YES" if any(f.get("burned_in_annotation") == "YES" for f in items) else None,
        "key_images_withheld": sum(1 for f in items if f.get("key_images_withheld")),
        "series": items,
    }
