"""Pixel data of one DICOM instance: open, decode frame by frame, Modality LUT, VOI windowing, PNGs.

* Modality LUT: Rescale Slope/Intercept (top level or the enhanced functional groups), or a Modality
  LUT Sequence; CT values are Hounsfield units.
* VOI: the file's VOI LUT Sequence or Window Center/Width, or a preset (CT only: lung -600/1500,
  mediastinum 50/350, bone 400/1800, brain 40/80), or automatic (1st-99th percentile) when the file
  has no window (MR, CR, DX, US, others). CT without a window defaults to the mediastinum preset.
* MONOCHROME1 is inverted for display; RGB/YBR arrive as RGB from pydicom; PALETTE COLOR is expanded.
"""

from __future__ import annotations

import io
import math
import os
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np
from PIL import Image
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.uid import UID

from apps.medical.ingest import IngestError, Instance, load_dataset, read_dataset

PRESETS: dict[str, tuple[float, float]] = {
    "lung": (-600.0, 1500.0),
    "mediastinum": (50.0, 350.0),
    "bone": (400.0, 1800.0),
    "brain": (40.0, 80.0),
}

Source = str | os.PathLike[str] | Dataset | Instance


class ImagingError(Exception):
    """A frame or series that cannot be processed; names the file and the cause."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(f"{name}: {message}")
        self.name = name
        self.message = message



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
    samples = int(ds.get("SamplesPerPixel", 1) or 1)
    return samples > 1 or str(ds.get("PhotometricInterpretation", "")) == "PALETTE COLOR"


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


def display_frame(ds: Dataset, arr: np.ndarray, index: int = 0,
                  preset: str = "auto") -> tuple[np.ndarray, dict[str, Any]]:
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
