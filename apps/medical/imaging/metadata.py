"""Descriptive metadata of one instance for the series features: modality, body part, descriptions,
acquisition parameters. Only the listed, non-identifying attributes are read (no patient attributes).
"""

from __future__ import annotations

import math
from typing import Any

from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.uid import UID

_ACQUISITION = {
    "common": ["Manufacturer", "ManufacturerModelName", "PatientPosition", "ImageType", "ContrastBolusRoute",
               "ScanOptions"],
    "CT": [
        "KVP", "XRayTubeCurrent", "Exposure", "ExposureTime", "CTDIvol", "ConvolutionKernel",
        "SpiralPitchFactor", "ReconstructionDiameter", "GantryDetectorTilt", "SliceThickness",
        "SpacingBetweenSlices",
    ],
    "MR": [
        "MagneticFieldStrength", "RepetitionTime", "EchoTime", "InversionTime", "FlipAngle",
        "EchoTrainLength", "ScanningSequence", "SequenceVariant", "MRAcquisitionType", "NumberOfAverages",
        "PixelBandwidth", "SliceThickness", "SpacingBetweenSlices",
    ],
    "XR": [
        "KVP", "Exposure", "ExposureTime", "XRayTubeCurrent", "ViewPosition", "ImageLaterality", "Laterality",
        "DistanceSourceToDetector", "BodyPartThickness", "CompressionForce", "AnodeTargetMaterial",
        "FilterMaterial", "Grid",
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
