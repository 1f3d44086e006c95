"""Each transfer syntax family decodes, through ingest and the feature pipeline, to the right pixels."""

from __future__ import annotations

import copy

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file

from apps.medical.imaging import display_frame, series_features
from apps.medical.ingest import ingest


def _pixels(name: str) -> np.ndarray:
    return pydicom.dcmread(get_testdata_file(name)).pixel_array


LOSSLESS_SAME_AS = {
    # file -> its uncompressed little-endian twin
    "MR_small_implicit.dcm": "MR_small.dcm",
    "MR_small_bigendian.dcm": "MR_small.dcm",
    "MR_small_RLE.dcm": "MR_small.dcm",
    "MR_small_jp2klossless.dcm": "MR_small.dcm",
    "MR_small_jpeg_ls_lossless.dcm": "MR_small.dcm",
    "emri_small_RLE.dcm": "emri_small.dcm",
    "emri_small_big_endian.dcm": "emri_small.dcm",
    "emri_small_jpeg_2k_lossless.dcm": "emri_small.dcm",
    "emri_small_jpeg_ls_lossless.dcm": "emri_small.dcm",
    "SC_rgb_rle.dcm": "SC_rgb.dcm",
    "SC_rgb_expb.dcm": "SC_rgb.dcm",
    "SC_rgb_jpeg_gdcm.dcm": "SC_rgb.dcm",  # JPEG lossless SV1, RGB
    "MR2_J2KR.dcm": "MR2_UNCR.dcm",
}


@pytest.mark.parametrize("name,reference", sorted(LOSSLESS_SAME_AS.items()))
def test_lossless_syntaxes_decode_exactly(name: str, reference: str) -> None:
    result = ingest([get_testdata_file(name)])
    assert not result.errors, result.errors
    assert np.array_equal(_pixels(name), _pixels(reference))


LOSSY_CLOSE_TO = {
    "SC_rgb_jpeg_dcmtk.dcm": ("SC_rgb.dcm", 2.0),  # JPEG baseline, YBR_FULL
    "SC_rgb_dcmtk_+eb+cy+np.dcm": ("SC_rgb.dcm", 5.0),  # JPEG baseline, YBR_FULL_422
    "SC_ybr_full_uncompressed.dcm": ("SC_rgb.dcm", 2.0),  # native YBR_FULL -> RGB
    "SC_ybr_full_422_uncompressed.dcm": ("SC_rgb.dcm", 2.0),  # native YBR_FULL_422 -> RGB
    "SC_rgb_jls_lossy_line.dcm": ("SC_rgb.dcm", 2.0),  # JPEG-LS near-lossless
    "MR2_J2KI.dcm": ("MR2_UNCI.dcm", 1.0),  # JPEG 2000
}


@pytest.mark.parametrize("name,ref_tol", sorted(LOSSY_CLOSE_TO.items()))
def test_lossy_and_color_syntaxes_decode_close(name: str, ref_tol: tuple[str, float]) -> None:
    reference, tolerance = ref_tol
    a, b = _pixels(name).astype(float), _pixels(reference).astype(float)
    assert a.shape == b.shape
    assert np.abs(a - b).mean() <= tolerance


@pytest.mark.parametrize(
    "name,syntax",
    [
        ("JPGExtended.dcm", "1.2.840.10008.1.2.4.51"),  # JPEG extended 12-bit
        ("JPEG-LL.dcm", "1.2.840.10008.1.2.4.70"),  # JPEG lossless SV1
        ("JPGLosslessP14SV1_1s_1f_8b.dcm", "1.2.840.10008.1.2.4.70"),
        ("JPEGLSNearLossless_08.dcm", "1.2.840.10008.1.2.4.81"),
        ("JPEG2000.dcm", "1.2.840.10008.1.2.4.91"),
        ("image_dfl.dcm", "1.2.840.10008.1.2.1.99"),  # deflated
        ("color3d_jpeg_baseline.dcm", "1.2.840.10008.1.2.4.50"),  # multi-frame YBR_FULL_422 JPEG
        ("US1_J2KI.dcm", "1.2.840.10008.1.2.4.91"),  # YBR_ICT
        ("OT-PAL-8-face.dcm", "1.2.840.10008.1.2"),  # no preamble, palette colour
    ],
)
def test_family_decodes_through_the_pipeline(name: str, syntax: str) -> None:
    result = ingest([get_testdata_file(name)])
    assert not result.errors, result.errors
    (inst,) = result.instances
    assert inst.transfer_syntax_uid == syntax
    features = series_features([inst], key_images=2).features
    assert features["frames"] == inst.number_of_frames
    assert features["intensity"]["pixels"] > 0
    assert features["intensity"]["std"] > 0


def test_multiframe_counts_frames_and_picks_key_images() -> None:
    result = series_features([get_testdata_file("emri_small.dcm")], key_images=5)
    assert result.features["frames"] == 10
    assert len(result.key_images) == 5
    assert len({k.frame for k in result.key_images}) == 5


def test_monochrome1_is_inverted_for_display() -> None:
    ds = pydicom.dcmread(get_testdata_file("RG1_UNCI.dcm"))
    assert ds.PhotometricInterpretation == "MONOCHROME1"
    arr = ds.pixel_array
    img1, w1 = display_frame(ds, arr)
    as_mono2 = copy.deepcopy(ds)
    as_mono2.PhotometricInterpretation = "MONOCHROME2"
    img2, w2 = display_frame(as_mono2, arr)
    assert w1 == w2
    assert np.array_equal(img1.astype(int), 255 - img2.astype(int))


def test_ybr_jpeg_is_converted_to_rgb() -> None:
    ds = pydicom.dcmread(get_testdata_file("SC_rgb_jpeg_dcmtk.dcm"))
    img, info = display_frame(ds, ds.pixel_array)
    assert info == {"source": "color"}
    # the first band of SC_rgb is pure red
    assert img[2, 50, 0] > 240 and img[2, 50, 1] < 15 and img[2, 50, 2] < 15


def test_preamble_less_big_endian_file_is_parsed() -> None:
    # an RT Ion Plan without preamble or file meta, big endian: read as DICOM, skipped as a non-image
    result = ingest([get_testdata_file("ExplVR_BigEndNoMeta.dcm")])
    (err,) = result.errors
    assert err.code == "no_pixel_data" and "RT Ion Plan" in err.message
