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

Modules (import from the package, ``from apps.medical.imaging import ...``):

- :mod:`.pixels` open an instance, decode frames, Modality LUT, windowing, PNG rendering (``render_png``);
- :mod:`.stats` streaming statistics (``RunningStats``, ``StreamingHistogram``);
- :mod:`.metadata` the non-identifying descriptive attributes of an instance (``instance_metadata``);
- :mod:`.features` per-series features and key images (``series_features``), ``study_summary``.
"""

from __future__ import annotations

from .features import HU_CLASSES, KeyImage, SeriesResult, burned_in_risk, series_features, study_summary
from .metadata import instance_metadata
from .pixels import PRESETS, ImagingError, display_frame, frame_count, modality_frame, render_png
from .stats import StreamingHistogram

__all__ = [
    "HU_CLASSES",
    "PRESETS",
    "ImagingError",
    "KeyImage",
    "SeriesResult",
    "StreamingHistogram",
    "display_frame",
    "frame_count",
    "instance_metadata",
    "modality_frame",
    "render_png",
    "burned_in_risk",
    "series_features",
    "study_summary",
]
