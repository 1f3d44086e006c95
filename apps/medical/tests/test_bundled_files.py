"""Every file pydicom and pydicom-data ship: features or a clear per-file error, never a crash."""

from __future__ import annotations

import io
import json
import os

import pytest
from PIL import Image

from apps.medical.deidentify import deidentify, find_phi, phi_strings
from apps.medical.imaging import series_features
from apps.medical.ingest import ingest, load_dataset
from apps.medical.tests.conftest import bundled_dicom_files

FILES = bundled_dicom_files()
# Retained technical attributes where the sample data's "identifiers" recur by coincidence
# (InstitutionName "TOSHIBA"/"OFFIS" = Manufacturer; PatientName "Perfusion^MCA Stroke" vs ImageType).
# The planted-PHI test in test_deidentify.py checks every attribute with no exception.
TECHNICAL = ("Manufacturer:", "file_meta.ImplementationVersionName:", "ImageType:", "FrameType:")
ERROR_CODES = {"not_dicom", "truncated", "undecodable", "invalid", "no_pixel_data", "dicomdir", "empty"}


def _id(path: str) -> str:
    parts = path.replace(os.sep, "/").split("/")
    return "/".join(parts[-2:])


def test_the_bundled_set_is_complete() -> None:
    assert len(FILES) > 240
    assert any("data_store" in f for f in FILES) and any("test_files" in f for f in FILES)


@pytest.mark.parametrize("path", FILES, ids=[_id(f) for f in FILES])
def test_bundled_file(path: str, salt: str) -> None:
    result = ingest([path])
    if result.errors:
        (err,) = result.errors
        assert not result.instances
        assert err.name == path
        assert err.code in ERROR_CODES
        assert 10 < len(err.message) < 700
        return
    (inst,) = result.instances
    deid = deidentify(load_dataset(inst), salt)
    assert deid.dataset.PatientIdentityRemoved == "YES"
    hits = find_phi(deid.dataset, phi_strings(deid.identifiers))
    assert not [h for h in hits if not h.split("].")[-1].startswith(TECHNICAL)]
    out = series_features([deid.dataset], key_images=2, max_size=256)
    features = out.features
    json.dumps(features)  # JSON-serialisable
    assert features["frames"] >= 1 and features["intensity"]["pixels"] > 0
    assert not features["errors"]
    if features.get("key_images_withheld"):  # may show burned-in text: never shown as de-identified
        assert out.key_images == []
    else:
        assert 1 <= len(out.key_images) <= 2
    for key in out.key_images:
        img = Image.open(io.BytesIO(key.png))
        assert img.format == "PNG" and max(img.size) <= 256
