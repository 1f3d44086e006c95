"""Shared fixtures for the medical tests: DICOM builders (pure, no Django), then the web and API
tests' users and clients."""

from __future__ import annotations

import copy
import os
import warnings
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.uid import generate_uid

SALT = "test-installation-secret"


def bundled_dicom_files() -> list[str]:
    """Every regular file shipped in pydicom's test_files and in pydicom-data's data_store."""
    import data_store

    roots = [
        os.path.dirname(get_testdata_file("CT_small.dcm")),
        os.path.join(os.path.dirname(data_store.__file__), "data"),
    ]
    files = []
    for root in roots:
        for dirpath, _dirs, names in os.walk(root):
            files.extend(os.path.join(dirpath, n) for n in names)
    return sorted(files)


def make_ct_series(folder: Path, n: int, *, spacing: float = 2.5, shuffle: bool = True,
                   study_uid: str | None = None, ramp: bool = False, upscale: int = 1) -> list[Path]:
    """``n`` CT slices built from CT_small.dcm: new SOP UIDs, positions ``spacing`` mm apart.

    With ``ramp`` each slice's pixels are offset by its index (so statistics differ per slice);
    ``upscale`` repeats each pixel (128 px CT_small -> 512 px with 4).
    Files are written in a shuffled name order to prove sorting works.
    """
    folder.mkdir(parents=True, exist_ok=True)
    base = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    study = study_uid or generate_uid()
    series = generate_uid()
    rng = np.random.default_rng(0)
    order = rng.permutation(n) if shuffle else np.arange(n)
    paths = []
    pixels = base.pixel_array
    if upscale > 1:
        pixels = np.kron(pixels, np.ones((upscale, upscale), dtype=pixels.dtype))
        base.Rows, base.Columns = pixels.shape
        base.PixelData = pixels.tobytes()
        base.PixelSpacing = [float(v) / upscale for v in base.PixelSpacing]
    x, y, z = (float(v) for v in base.ImagePositionPatient)
    for k, i in enumerate(order):
        ds = copy.deepcopy(base)
        ds.StudyInstanceUID = study
        ds.SeriesInstanceUID = series
        ds.SOPInstanceUID = generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.InstanceNumber = int(i) + 1
        ds.ImagePositionPatient = [x, y, z + spacing * int(i)]
        ds.SliceLocation = z + spacing * int(i)
        if ramp:
            ds.PixelData = (pixels + int(i)).astype(pixels.dtype).tobytes()
        path = folder / f"f{k:04d}.dcm"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


@pytest.fixture
def salt() -> str:
    return SALT


# --- the web and API tests' shared fixtures (Django) --------------------------------------------------
@pytest.fixture
def no_llm(settings, tmp_path):
    """Drafts off and media in a temporary folder: the pipeline without the model service."""
    settings.LLM_ENABLED = False
    settings.MEDIA_ROOT = str(tmp_path / "media")


@pytest.fixture
def radiologist(make_user):
    return make_user("rad", "medical")


@pytest.fixture
def api(radiologist, api_client_for):
    """An API client with the radiologist's bearer token."""
    return api_client_for(radiologist)

