"""Imaging: exact streaming statistics, geometry, key images, windows and memory."""

from __future__ import annotations

import io
import tracemalloc
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.data import get_testdata_file

from apps.medical.imaging import (
    HU_CLASSES,
    PRESETS,
    ImagingError,
    StreamingHistogram,
    render_png,
    series_features,
    study_summary,
)
from apps.medical.ingest import ingest
from apps.medical.tests.conftest import make_ct_series


def _sorted_series(paths: list[Path]):
    (study,) = ingest([str(p) for p in paths]).studies
    (series,) = study.series
    return series


def test_ct_series_statistics_are_exact(tmp_path: Path) -> None:
    paths = make_ct_series(tmp_path, 20, ramp=True)
    series = _sorted_series(paths)
    result = series_features(series.instances)
    f = result.features
    values = []
    for inst in series.instances:
        ds = pydicom.dcmread(inst.path)
        hu = ds.pixel_array.astype(np.float64) * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
        values.append(hu[hu >= -1100].ravel())
    allv = np.concatenate(values)
    inten = f["intensity"]
    assert inten["pixels"] == allv.size
    assert inten["mean"] == pytest.approx(allv.mean(), abs=1e-3)
    assert inten["std"] == pytest.approx(allv.std(), abs=1e-3)
    assert (inten["min"], inten["max"]) == (allv.min(), allv.max())
    for q in (1, 5, 25, 50, 75, 95, 99):
        assert inten[f"p{q}"] == np.percentile(allv, q, method="inverted_cdf")
    for name, lo, hi in HU_CLASSES:
        expected = np.count_nonzero((allv >= lo) & (allv < hi)) / allv.size
        assert f["hu_classes"][name] == pytest.approx(expected, abs=1e-4)
    assert sum(f["histogram"]["fractions"]) == pytest.approx(1.0, abs=1e-3)
    assert len(f["histogram"]["edges"]) == 17
    assert f["units"] == "HU" and f["modality"] == "CT"


def test_geometry_and_key_images(tmp_path: Path) -> None:
    paths = make_ct_series(tmp_path, 23, spacing=2.5)
    series = _sorted_series(paths)
    result = series_features(iter(series.instances), key_images=5)
    f = result.features
    assert f["frames"] == 23 and f["instances"] == 23
    assert f["spacing_between_slices_mm"] == pytest.approx(2.5)
    assert f["extent_mm"] == pytest.approx(2.5 * 22)
    assert f["orientation"] == "axial" and not f["irregular_spacing"]
    assert f["pixel_spacing_mm"] == pytest.approx([0.661468, 0.661468], abs=1e-4)
    indices = [k.index for k in result.key_images]
    assert len(indices) == 5 and indices == sorted(indices)
    assert min(np.diff(indices)) >= 2 and indices[0] <= 4 and indices[-1] >= 18  # spread over the series
    numbers = [k.instance_number for k in result.key_images]
    assert numbers == sorted(numbers)  # in slice order
    for k in result.key_images:
        img = Image.open(io.BytesIO(k.png))
        assert img.size == (128, 128) and img.mode == "L"
    assert [m["index"] for m in f["key_images"]] == indices
    summary = study_summary([f])
    assert summary["modalities"] == ["CT"] and summary["total_frames"] == 23


def test_bad_instance_is_reported_and_series_goes_on(tmp_path: Path) -> None:
    paths = make_ct_series(tmp_path, 4, shuffle=False)
    broken = tmp_path / "broken.dcm"
    broken.write_bytes(paths[1].read_bytes()[:2000])
    result = series_features([paths[0], broken, paths[2], "/nonexistent.dcm"])
    f = result.features
    assert f["frames"] == 2
    assert len(f["errors"]) == 2 and any("broken.dcm" in e for e in f["errors"])
    with pytest.raises(ImagingError, match="no decodable image frames"):
        series_features([broken, get_testdata_file("rtplan.dcm")])


def test_streaming_histogram_grows_and_keeps_counts() -> None:
    h = StreamingHistogram(nbins=64)
    rng = np.random.default_rng(1)
    chunks = [rng.integers(0, 10, 1000).astype(float), np.array([1e6]), np.array([-5e5, 3.0])]
    for c in chunks:
        h.add(c)
    assert h.counts is not None and h.counts.sum() == 1003
    assert h.lo <= -5e5 and h.lo + h.nbins * h.width > 1e6
    data = rng.normal(100, 15, 50_000)
    g = StreamingHistogram()
    for part in np.array_split(data, 7):
        g.add(part)
    assert g.percentile(50) == pytest.approx(np.percentile(data, 50), abs=2 * g.width)
    assert g.fraction_between(-np.inf, 100) == pytest.approx((data < 100).mean(), abs=0.01)


def test_render_png_presets_and_errors() -> None:
    path = get_testdata_file("CT_small.dcm")
    images = {p: render_png(path, preset=p) for p in PRESETS}
    assert len(set(images.values())) == len(images)  # each preset looks different
    assert render_png(path) == images["mediastinum"]  # CT without a window in the file
    big = Image.open(io.BytesIO(render_png(get_testdata_file("RG1_UNCI.dcm"), max_size=300)))
    assert max(big.size) == 300
    with pytest.raises(ValueError, match="preset"):
        render_png(path, preset="abdomen")
    with pytest.raises(ImagingError, match="out of range"):
        render_png(path, frame=3)
    multi = render_png(get_testdata_file("emri_small.dcm"), frame=9)
    assert Image.open(io.BytesIO(multi)).size == (64, 64)
    # a CT preset on MR falls back to the automatic window
    mr = get_testdata_file("MR_small.dcm")
    assert render_png(mr, preset="lung") == render_png(mr)


def _peak(paths: list[Path]) -> tuple[int, dict]:
    tracemalloc.start()
    try:
        result = series_features(paths)
        return tracemalloc.get_traced_memory()[1], result.features
    finally:
        tracemalloc.stop()


def test_series_is_streamed_not_held(tmp_path: Path) -> None:
    paths = make_ct_series(tmp_path, 32, upscale=4)  # 32 × 512×512 int16 = 16 MiB of pixels
    small_peak, _ = _peak(paths[:4])
    big_peak, features = _peak(paths)
    assert features["frames"] == 32 and features["rows"] == 512
    # memory does not grow with the number of slices: one frame's working set, not the series
    assert big_peak < small_peak + 2 * 1024 * 1024, (small_peak, big_peak)
    assert big_peak < 16 * 1024 * 1024
