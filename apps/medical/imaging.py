"""Pixel processing and per-series features for DICOM images, streamed one slice/frame at a time.

* Modality LUT: Rescale Slope/Intercept (top level or the enhanced functional groups), or a Modality
  LUT Sequence; CT values are Hounsfield units.
* VOI: the file's VOI LUT Sequence or Window Center/Width, or a preset (CT only: lung -600/1500,
  mediastinum 50/350, bone 400/1800, brain 40/80), or automatic (1st-99th percentile) when the file
  has no window (MR, CR, DX, US, others). CT without a window defaults to the mediastinum preset.
* MONOCHROME1 is inverted for display; RGB/YBR arrive as RGB from pydicom; PALETTE COLOR is expanded.
* :func:`series_features` never holds more than one frame's pixels at a time (plus at most ten
  downscaled key-image candidates); statistics are exact running moments plus a streaming
  histogram whose bin width doubles as the range grows (width 1 for integer data such as HU, so
  percentiles and tissue fractions are exact for typical CT/MR).
"""

from __future__ import annotations

import io
import math
import os
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.uid import UID

from apps.medical.ingest import IngestError, Instance, load_dataset, read_dataset

__all__ = [
    "PRESETS",
    "ImagingError",
    "KeyImage",
    "SeriesResult",
    "display_frame",
    "frame_count",
    "instance_metadata",
    "modality_frame",
    "render_png",
    "series_features",
    "study_summary",
]

PRESETS: dict[str, tuple[float, float]] = {
    "lung": (-600.0, 1500.0),
    "mediastinum": (50.0, 350.0),
    "bone": (400.0, 1800.0),
    "brain": (40.0, 80.0),
}
HU_CLASSES: list[tuple[str, float, float]] = [
    ("air", -math.inf, -900.0),
    ("lung", -900.0, -200.0),
    ("fat", -200.0, -30.0),
    ("soft_tissue", -30.0, 300.0),
    ("bone", 300.0, math.inf),
]
CT_OUTSIDE_FOV_HU = -1100.0  # CT values below this are padding/outside the scan circle, not tissue
PERCENTILES = (1, 5, 25, 50, 75, 95, 99)
_CHUNK = 1 << 20

Source = str | os.PathLike[str] | Dataset | Instance


class ImagingError(Exception):
    """A frame or series that cannot be processed; names the file and the cause."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(f"{name}: {message}")
        self.name = name
        self.message = message


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


# ------------------------------------------------------------------------------------- data access


_DEFER = 64 * 1024  # element values larger than this stay on disk until needed


def _open(src: Source) -> tuple[Dataset, str, str | None]:
    """Return (dataset, name for errors, path or None); large values of files stay deferred."""
    if isinstance(src, Dataset):
        name = str(getattr(src, "filename", "") or src.get("SOPInstanceUID", "dataset"))
        return src, name, None
    if isinstance(src, Instance):
        try:
            return load_dataset(src, defer_size=_DEFER), src.name, src.path
        except IngestError as exc:
            raise ImagingError(exc.name, exc.message)
    path = os.fspath(src)
    try:
        return read_dataset(path, path, defer_size=_DEFER), path, path
    except IngestError as exc:
        raise ImagingError(exc.name, exc.message)


def frame_count(ds: Dataset) -> int:
    """Number of frames (1 for single-frame images)."""
    try:
        return max(int(ds.get("NumberOfFrames", 1) or 1), 1)
    except (TypeError, ValueError):
        return 1


def _fg_value(ds: Dataset, index: int, seq_kw: str, attr_kw: str) -> Any:
    """An attribute from the enhanced functional groups (per-frame first, then shared)."""
    for group_kw, i in (("PerFrameFunctionalGroupsSequence", index), ("SharedFunctionalGroupsSequence", 0)):
        groups = ds.get(group_kw)
        if not groups or i >= len(groups):
            continue
        seq = groups[i].get(seq_kw)
        if seq and attr_kw in seq[0]:
            return seq[0].get(attr_kw)
    return None


def _first(value: Any) -> Any:
    if isinstance(value, (MultiValue, list, tuple)):
        return value[0] if len(value) else None
    return value


def _num(value: Any) -> float | None:
    value = _first(value)
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _is_color(ds: Dataset) -> bool:
    return int(ds.get("SamplesPerPixel", 1) or 1) > 1 or str(ds.get("PhotometricInterpretation", "")) == "PALETTE COLOR"


def _iter_raw_frames(ds: Dataset, path: str | None, name: str) -> Iterator[tuple[int, np.ndarray]]:
    """Yield (frame index, decoded array) one frame at a time; ImagingError on a decode failure.

    From a path, pydicom streams frame by frame from the file; if that cannot start (a file that
    needed repairs on reading), the already-read data set is used instead.
    """
    from pydicom.pixels import iter_pixels

    n = frame_count(ds)
    yielded = 0
    sources: list[Any] = [path, ds] if path is not None else [ds]
    last_exc: Exception | None = None
    for source in sources:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                for i, arr in enumerate(iter_pixels(source)):
                    if i >= n:
                        break
                    yielded += 1
                    yield i, arr
            return
        except Exception as exc:
            last_exc = exc
            if yielded:
                break
    ts = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
    ts_name = UID(str(ts)).name if ts else "unknown"
    detail = " ".join(str(last_exc).split())[:300]
    raise ImagingError(name, f"pixel data cannot be decoded: transfer syntax {ts_name}: {detail}")


def modality_frame(ds: Dataset, arr: np.ndarray, index: int = 0) -> np.ndarray:
    """Apply the Modality LUT (rescale or LUT sequence) to one grayscale frame; float32 out."""
    if "ModalityLUTSequence" in ds:
        from pydicom.pixels import apply_modality_lut

        return np.asarray(apply_modality_lut(arr, ds), dtype=np.float32)
    slope = _num(ds.get("RescaleSlope"))
    intercept = _num(ds.get("RescaleIntercept"))
    if slope is None:
        slope = _num(_fg_value(ds, index, "PixelValueTransformationSequence", "RescaleSlope"))
        intercept = _num(_fg_value(ds, index, "PixelValueTransformationSequence", "RescaleIntercept"))
    values = arr.astype(np.float32, copy=True)
    if slope not in (None, 1.0):
        values *= np.float32(slope)
    if intercept not in (None, 0.0):
        values += np.float32(intercept)
    return values


def _luminance(arr: np.ndarray) -> np.ndarray:
    rgb = arr.astype(np.float32)
    return 0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2]


def _color_to_uint8(ds: Dataset, arr: np.ndarray) -> np.ndarray:
    if str(ds.get("PhotometricInterpretation", "")) == "PALETTE COLOR" and arr.ndim == 2:
        from pydicom.pixels import apply_color_lut

        arr = apply_color_lut(arr, ds)
        top = float(arr.max()) if arr.size else 255.0
        scale = 255.0 / (65535.0 if top > 255 else 255.0)
        return np.clip(arr.astype(np.float32) * scale, 0, 255).astype(np.uint8)
    if arr.dtype == np.uint8:
        return arr
    bits = int(ds.get("BitsStored", 8) or 8)
    top = float((1 << bits) - 1) if bits < 32 else float(arr.max() or 1)
    return np.clip(arr.astype(np.float64) * (255.0 / max(top, 1.0)), 0, 255).astype(np.uint8)


def _file_window(ds: Dataset, index: int) -> tuple[float, float] | None:
    center, width = _num(ds.get("WindowCenter")), _num(ds.get("WindowWidth"))
    if center is None or width is None:
        center = _num(_fg_value(ds, index, "FrameVOILUTSequence", "WindowCenter"))
        width = _num(_fg_value(ds, index, "FrameVOILUTSequence", "WindowWidth"))
    if center is None or width is None or width <= 0:
        return None
    return center, width


def _sample(values: np.ndarray, limit: int = 262_144) -> np.ndarray:
    flat = values.reshape(-1)
    step = max(1, flat.size // limit)
    return flat[::step]


def _auto_window(values: np.ndarray) -> tuple[float, float]:
    sample = _sample(values)
    sample = sample[np.isfinite(sample)]
    if sample.size == 0:
        return 0.0, 1.0
    lo, hi = np.percentile(sample, [1, 99])
    if hi <= lo:
        lo, hi = float(sample.min()), float(sample.max())
    width = max(float(hi - lo), 1.0)
    return float(lo + width / 2), width


def apply_window(values: np.ndarray, center: float, width: float) -> np.ndarray:
    """DICOM linear VOI function mapped to 0..255 uint8."""
    width = max(width, 1.0)
    lo = center - 0.5 - (width - 1) / 2
    out = ((values - (center - 0.5)) / max(width - 1, 1e-6) + 0.5) * 255.0
    out = np.where(values <= lo, 0.0, out)
    out = np.where(values > lo + width - 1, 255.0, out)
    return np.clip(out, 0, 255).astype(np.uint8)


def display_frame(ds: Dataset, arr: np.ndarray, index: int = 0, preset: str = "auto") -> tuple[np.ndarray, dict[str, Any]]:
    """One decoded frame to an 8-bit display image (H×W or H×W×3) and the window used."""
    if preset != "auto" and preset != "file" and preset not in PRESETS:
        raise ValueError(f"unknown window preset {preset!r}; use auto, file or one of {sorted(PRESETS)}")
    if _is_color(ds):
        return _color_to_uint8(ds, arr), {"source": "color"}
    values = modality_frame(ds, arr, index)
    modality = str(ds.get("Modality", "")).upper()
    info: dict[str, Any]
    if preset in PRESETS and modality == "CT":
        center, width = PRESETS[preset]
        info = {"source": f"preset:{preset}"}
    elif "VOILUTSequence" in ds and preset in ("auto", "file"):
        from pydicom.pixels import apply_voi_lut

        out = np.asarray(apply_voi_lut(values, ds, index=0, prefer_lut=True), dtype=np.float64)
        bits = int(ds.VOILUTSequence[0].LUTDescriptor[2]) if "LUTDescriptor" in ds.VOILUTSequence[0] else 16
        img = np.clip(out * (255.0 / float((1 << min(bits, 16)) - 1)), 0, 255).astype(np.uint8)
        if str(ds.get("PhotometricInterpretation", "")) == "MONOCHROME1":
            img = 255 - img
        return img, {"source": "voi_lut"}
    else:
        file_window = _file_window(ds, index)
        if file_window is not None:
            center, width = file_window
            info = {"source": "file"}
        elif modality == "CT":
            center, width = PRESETS["mediastinum"]
            info = {"source": "preset:mediastinum"}
        else:
            center, width = _auto_window(values)
            info = {"source": "auto"}
        if preset in PRESETS:
            info["note"] = f"preset {preset} applies to CT only"
    img = apply_window(values, center, width)
    if str(ds.get("PhotometricInterpretation", "")) == "MONOCHROME1":
        img = 255 - img
    info.update({"center": round(float(center), 2), "width": round(float(width), 2)})
    return img, info


def _downscale(img: np.ndarray, max_size: int) -> Image.Image:
    if img.ndim == 3 and img.shape[-1] == 1:
        img = img[..., 0]
    pil = Image.fromarray(np.ascontiguousarray(img), mode="RGB" if img.ndim == 3 else "L")
    if max(pil.size) > max_size:
        pil.thumbnail((max_size, max_size), Image.Resampling.LANCZOS)
    return pil


def _png(pil: Image.Image) -> bytes:
    buf = io.BytesIO()
    pil.save(buf, format="PNG", optimize=False, compress_level=6)
    return buf.getvalue()


def render_png(src: Source, frame: int = 0, preset: str = "auto", max_size: int = 512) -> bytes:
    """PNG bytes (8-bit, longest side ≤ ``max_size``) of one frame of one instance, for the viewer."""
    from pydicom.pixels import pixel_array

    ds, name, path = _open(src)
    n = frame_count(ds)
    if not 0 <= frame < n:
        raise ImagingError(name, f"frame {frame} out of range (the instance has {n} frame(s))")
    if "PixelData" not in ds and "FloatPixelData" not in ds and "DoubleFloatPixelData" not in ds:
        raise ImagingError(name, "no pixel data: not an image")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            arr = pixel_array(ds, index=frame)
    except Exception as exc:
        raise ImagingError(name, f"pixel data cannot be decoded: {' '.join(str(exc).split())[:300]}")
    img, _ = display_frame(ds, arr, frame, preset)
    return _png(_downscale(img, max_size))


# -------------------------------------------------------------------------------------- statistics


class StreamingHistogram:
    """Fixed number of bins whose width (a power of two) doubles as values outside the range arrive."""

    def __init__(self, nbins: int = 4096) -> None:
        self.nbins = nbins
        self.width = 0.0
        self.lo = 0.0
        self.counts: np.ndarray | None = None

    def _covers(self, a: float, b: float) -> bool:
        return a >= self.lo and b < self.lo + self.nbins * self.width

    def add(self, values: np.ndarray) -> None:
        """Count a 1-D float array (finite values only)."""
        if values.size == 0:
            return
        vmin, vmax = float(values.min()), float(values.max())
        if self.counts is None:
            integer = bool(np.all(np.equal(np.mod(values[:4096], 1), 0)))
            span = max(vmax - vmin, 1e-9)
            width = 2.0 ** math.ceil(math.log2(span / (self.nbins - 2)))
            self.width = max(width, 1.0) if integer else width
            self.lo = math.floor(vmin / self.width) * self.width
            self.counts = np.zeros(self.nbins, dtype=np.int64)
        if not self._covers(vmin, vmax):
            self._grow(min(vmin, self.lo), max(vmax, self.lo + self.nbins * self.width - self.width))
        idx = np.floor((values - self.lo) / self.width).astype(np.int64)
        np.clip(idx, 0, self.nbins - 1, out=idx)
        self.counts += np.bincount(idx, minlength=self.nbins)

    def _grow(self, a: float, b: float) -> None:
        assert self.counts is not None
        width = self.width
        while True:
            width *= 2
            lo = math.floor(a / width) * width
            if a >= lo and b < lo + self.nbins * width:
                break
        edges = self.lo + np.arange(self.nbins) * self.width
        new_idx = np.floor((edges - lo) / width + 1e-9).astype(np.int64)
        counts = np.zeros(self.nbins, dtype=np.int64)
        np.add.at(counts, np.clip(new_idx, 0, self.nbins - 1), self.counts)
        self.counts, self.lo, self.width = counts, lo, width

    def percentile(self, q: float) -> float | None:
        """Value below which ``q`` percent of the counted values fall (exact for width-1 integer data)."""
        if self.counts is None or self.counts.sum() == 0:
            return None
        cum = np.cumsum(self.counts)
        target = q / 100.0 * cum[-1]
        i = int(np.searchsorted(cum, max(target, 1), side="left"))
        if self.width == 1.0:
            return float(self.lo + i)
        before = cum[i - 1] if i else 0
        frac = (target - before) / max(self.counts[i], 1)
        return float(self.lo + (i + min(max(frac, 0.0), 1.0)) * self.width)

    def fraction_between(self, a: float, b: float) -> float:
        """Fraction of counted values in [a, b) (bins assigned by their lower edge)."""
        if self.counts is None or self.counts.sum() == 0:
            return 0.0
        edges = self.lo + np.arange(self.nbins) * self.width
        mask = (edges >= a) & (edges < b)
        return float(self.counts[mask].sum() / self.counts.sum())

    def summary(self, vmin: float, vmax: float, bins: int = 16) -> dict[str, list[float]]:
        """Re-bin into ``bins`` equal bins over [vmin, vmax]: edges and fractions."""
        if self.counts is None or self.counts.sum() == 0:
            return {"edges": [], "fractions": []}
        edges_out = np.linspace(vmin, vmax if vmax > vmin else vmin + 1, bins + 1)
        lower = self.lo + np.arange(self.nbins) * self.width
        which = np.clip(np.searchsorted(edges_out, lower, side="right") - 1, 0, bins - 1)
        counts = np.bincount(which, weights=self.counts, minlength=bins)
        total = counts.sum()
        return {
            "edges": [round(float(e), 3) for e in edges_out],
            "fractions": [round(float(c / total), 4) for c in counts],
        }


class RunningStats:
    """Exact count/mean/std/min/max over chunks (Chan's parallel update), plus a histogram."""

    def __init__(self) -> None:
        self.n = 0
        self.mean = 0.0
        self.m2 = 0.0
        self.min = math.inf
        self.max = -math.inf
        self.hist = StreamingHistogram()

    def add(self, values: np.ndarray) -> None:
        """Add a 1-D array of finite values."""
        for start in range(0, values.size, _CHUNK):
            chunk = values[start : start + _CHUNK].astype(np.float64)
            if chunk.size == 0:
                continue
            n_b = chunk.size
            mean_b = float(chunk.mean())
            m2_b = float(((chunk - mean_b) ** 2).sum())
            delta = mean_b - self.mean
            total = self.n + n_b
            self.mean += delta * n_b / total
            self.m2 += m2_b + delta * delta * self.n * n_b / total
            self.n = total
            self.min = min(self.min, float(chunk.min()))
            self.max = max(self.max, float(chunk.max()))
            self.hist.add(chunk)

    def as_dict(self) -> dict[str, Any]:
        """JSON-serialisable summary."""
        if self.n == 0:
            return {"pixels": 0}
        out: dict[str, Any] = {
            "pixels": self.n,
            "min": round(self.min, 3),
            "max": round(self.max, 3),
            "mean": round(self.mean, 3),
            "std": round(math.sqrt(self.m2 / self.n), 3),
        }
        for q in PERCENTILES:
            p = self.hist.percentile(q)
            out[f"p{q}"] = None if p is None else round(p, 3)
        return out


# -------------------------------------------------------------------------------------- metadata

_ACQUISITION = {
    "common": ["Manufacturer", "ManufacturerModelName", "PatientPosition", "ImageType", "ContrastBolusRoute", "ScanOptions"],
    "CT": [
        "KVP", "XRayTubeCurrent", "Exposure", "ExposureTime", "CTDIvol", "ConvolutionKernel", "SpiralPitchFactor",
        "ReconstructionDiameter", "GantryDetectorTilt", "SliceThickness", "SpacingBetweenSlices",
    ],
    "MR": [
        "MagneticFieldStrength", "RepetitionTime", "EchoTime", "InversionTime", "FlipAngle", "EchoTrainLength",
        "ScanningSequence", "SequenceVariant", "MRAcquisitionType", "NumberOfAverages", "PixelBandwidth",
        "SliceThickness", "SpacingBetweenSlices",
    ],
    "XR": [
        "KVP", "Exposure", "ExposureTime", "XRayTubeCurrent", "ViewPosition", "ImageLaterality", "Laterality",
        "DistanceSourceToDetector", "BodyPartThickness", "CompressionForce", "AnodeTargetMaterial", "FilterMaterial",
        "Grid",
    ],
    "PT": ["Units", "CorrectedImage", "DecayCorrection", "SliceThickness"],
    "NM": ["Units", "SliceThickness"],
    "US": ["TransducerData", "ProcessingFunction"],
}
_XR = {"CR", "DX", "DR", "MG", "RF", "XA", "IO", "PX"}


def _jsonable(value: Any) -> Any:
    if isinstance(value, (MultiValue, list, tuple)):
        return [_jsonable(v) for v in value][:16]
    if isinstance(value, (bytes, bytearray)):
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        f = float(value)
        return None if not math.isfinite(f) else (int(value) if isinstance(value, int) else round(f, 4))
    if hasattr(value, "real") and not isinstance(value, str):
        try:
            return round(float(value), 4)
        except (TypeError, ValueError):
            pass
    text = str(value).strip()
    return text[:128] if text else None


def instance_metadata(ds: Dataset) -> dict[str, Any]:
    """Non-identifying descriptive metadata of one instance (modality, descriptions, acquisition)."""
    modality = str(ds.get("Modality", "") or "OT").upper()
    group = "XR" if modality in _XR else modality
    acq: dict[str, Any] = {}
    for kw in _ACQUISITION["common"] + _ACQUISITION.get(group, []):
        if kw in ds:
            value = _jsonable(ds.get(kw))
            if value not in (None, [], ""):
                acq[kw] = value
    sop = UID(str(ds.get("SOPClassUID", "")))
    return {
        "modality": modality,
        "body_part": str(ds.get("BodyPartExamined", "") or "").strip().upper() or None,
        "study_description": str(ds.get("StudyDescription", "") or "").strip() or None,
        "series_description": str(ds.get("SeriesDescription", "") or "").strip() or None,
        "protocol_name": str(ds.get("ProtocolName", "") or "").strip() or None,
        "sop_class": sop.name if sop else None,
        "photometric_interpretation": str(ds.get("PhotometricInterpretation", "")) or None,
        "bits_stored": _jsonable(ds.get("BitsStored")),
        "acquisition": acq,
    }


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
            thickness = _num(ds.get("SliceThickness")) or _num(_fg_value(ds, 0, "PixelMeasuresSequence", "SliceThickness"))
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
                        {"frame": f, "sop_instance_uid": sop_uid, "instance_number": inst_no, "window": window},
                    )
                n_frames += 1
                got += 1
        except ImagingError as exc:
            errors.append(str(exc))
        except (ValueError, TypeError, IndexError, KeyError, AttributeError) as exc:
            errors.append(f"{name}: cannot process pixel data ({type(exc).__name__}: {' '.join(str(exc).split())[:200]})")
        if got:
            n_instances += 1
        del ds

    if meta is None or n_frames == 0:
        raise ImagingError(last_name, "no decodable image frames in the series" + (f" ({errors[0]})" if errors else ""))

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
    features["key_images"] = [k.meta() for k in keys]
    return SeriesResult(features, keys)


def _geometry(positions: list[np.ndarray], iop: list[float] | None, thickness: float | None) -> dict[str, Any]:
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
        "study_description": next((f["study_description"] for f in items if f.get("study_description")), None),
        "series_count": len(items),
        "total_frames": sum(int(f.get("frames") or 0) for f in items),
        "burned_in_annotation": "YES" if any(f.get("burned_in_annotation") == "YES" for f in items) else None,
        "series": items,
    }
