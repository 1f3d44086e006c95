"""Ingestion: ZIP safety, per-file errors, grouping and sorting."""

from __future__ import annotations

import io
import stat
import zipfile
from pathlib import Path

import pytest
from pydicom.data import get_testdata_file

from apps.medical.ingest import (
    ZipLimits,
    ZipRefused,
    group_instances,
    ingest,
    iter_zip_members,
    load_dataset,
    parse_dicom,
)
from apps.medical.tests.conftest import make_ct_series


def _zip(members: dict[str, bytes], *, method: int = zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=method) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def _ct_bytes() -> bytes:
    return Path(get_testdata_file("CT_small.dcm")).read_bytes()


@pytest.mark.parametrize(
    "bad_name", ["../evil.dcm", "a/../../evil.dcm", "/etc/passwd", "C:/windows/x.dcm", "..\\evil.dcm"])
def test_zip_member_climbing_out_refuses_archive(bad_name: str) -> None:
    data = _zip({"ok/ct.dcm": _ct_bytes(), bad_name: b"x"})
    with pytest.raises(ZipRefused) as err:
        list(iter_zip_members(data, archive_name="study.zip"))
    assert err.value.code == "unsafe_path"
    assert "study.zip" in str(err.value)
    result = ingest([("study.zip", data)])
    assert result.instances == []
    assert [e.code for e in result.errors] == ["unsafe_path"]


def test_zip_symlink_member_refused() -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        info = zipfile.ZipInfo("link.dcm")
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(info, "/etc/passwd")
    with pytest.raises(ZipRefused, match="symbolic link"):
        list(iter_zip_members(buf.getvalue()))


def test_zip_bomb_ratio_refused() -> None:
    data = _zip({"zeros.dcm": b"\0" * (8 * 1024 * 1024)})
    assert len(data) < 100_000  # a real high-ratio member
    with pytest.raises(ZipRefused, match="compression ratio"):
        list(iter_zip_members(data, archive_name="bomb.zip"))


def test_zip_total_size_and_member_count_limits() -> None:
    data = _zip({f"f{i}.bin": bytes([i]) * 1000 for i in range(20)}, method=zipfile.ZIP_STORED)
    with pytest.raises(ZipRefused, match="members"):
        list(iter_zip_members(data, limits=ZipLimits(max_members=10)))
    with pytest.raises(ZipRefused, match="expands to"):
        list(iter_zip_members(data, limits=ZipLimits(max_total_uncompressed=5000)))
    assert len(list(iter_zip_members(data))) == 20


def test_zip_with_folders_and_bad_members_goes_on(tmp_path: Path) -> None:
    ct = _ct_bytes()
    mr = Path(get_testdata_file("MR_small.dcm")).read_bytes()
    inner = _zip({"x.dcm": ct})
    data = _zip(
        {
            "PAT/ST1/SE1/IM1": ct,
            "PAT/ST1/SE2/IM1.dcm": mr,
            "PAT/notes.txt": b"hello, not dicom",
            "PAT/half.dcm": ct[: len(ct) // 2],
            "PAT/inner.zip": inner,
            "__MACOSX/._IM1": b"junk",
        }
    )
    result = ingest([("upload.zip", data)], dest_dir=tmp_path / "store")
    assert len(result.instances) == 2
    # members are known by a pseudonym (their paths often carry the patient's name); the map has the paths
    assert all(e.name.startswith("upload.zip/") and e.name[11:].isdigit() for e in result.errors)
    codes = {result.member_paths[e.name]: e.code for e in result.errors}
    assert codes == {
        "PAT/notes.txt": "not_dicom",
        "PAT/half.dcm": "truncated",
        "PAT/inner.zip": "nested_zip",
    }
    assert all("PAT" not in i.name for i in result.instances)
    for inst in result.instances:
        assert inst.path and Path(inst.path).is_file()
        assert load_dataset(inst).SOPInstanceUID == inst.sop_instance_uid
    assert {s.modality for st in result.studies for s in st.series} == {"CT", "MR"}


def test_per_file_errors_name_file_and_cause(tmp_path: Path) -> None:
    ct = _ct_bytes()
    items = [
        ("empty.dcm", b""),
        ("text.dcm", b"just some text, definitely not DICOM" * 10),
        ("cut.dcm", ct[:1000]),
        ("good.dcm", ct),
    ]
    result = ingest(items)
    assert [i.name for i in result.instances] == ["good.dcm"]
    errors = {e.name: e for e in result.errors}
    assert errors["empty.dcm"].code == "empty"
    assert errors["text.dcm"].code == "not_dicom" and "DICM" in errors["text.dcm"].message
    assert errors["cut.dcm"].code == "truncated"
    assert all(str(e).startswith(e.name + ": ") for e in result.errors)
    rows = result.file_statuses()
    assert {r["status"] for r in rows} == {"ok", "error"}


def test_undecodable_pixel_data_names_transfer_syntax() -> None:
    path = get_testdata_file("JPEG2000-embedded-sequence-delimiter.dcm")
    result = ingest([path])
    assert not result.instances
    (err,) = result.errors
    assert err.code == "undecodable"
    assert "pixel data cannot be decoded" in err.message and "JPEG 2000" in err.message


def test_truncated_native_pixel_data() -> None:
    result = ingest([get_testdata_file("MR_truncated.dcm")])
    (err,) = result.errors
    assert err.code == "truncated" and "(7FE0,0010)" in err.message


def test_non_image_objects_and_dicomdir_are_skipped_with_reason() -> None:
    result = ingest([get_testdata_file("rtplan.dcm"), get_testdata_file("DICOMDIR")])
    codes = {e.code for e in result.errors}
    assert codes == {"no_pixel_data", "dicomdir"}


def test_grouping_sorts_by_position_not_file_order(tmp_path: Path) -> None:
    paths = make_ct_series(tmp_path / "s", 12, shuffle=True)
    other = make_ct_series(tmp_path / "t", 3, shuffle=True)
    result = ingest([str(p) for p in paths + other])
    assert len(result.studies) == 2
    series = next(s for st in result.studies for s in st.series if len(s.instances) == 12)
    zs = [i.image_position_patient[2] for i in series.instances]
    assert zs == sorted(zs)
    assert [i.instance_number for i in series.instances] == list(range(1, 13))
    assert series.frame_count == 12


def test_duplicates_are_ignored(tmp_path: Path) -> None:
    path = get_testdata_file("CT_small.dcm")
    inst = parse_dicom("a.dcm", path)
    dup = parse_dicom("b.dcm", path)
    (study,) = group_instances([inst, dup])
    assert len(study.series[0].instances) == 1
    assert "duplicate" in dup.warnings[0]


def test_missing_uids_are_derived_deterministically() -> None:
    path = get_testdata_file("JPEGLSNearLossless_08.dcm")
    a = parse_dicom("a", path)
    b = parse_dicom("b", Path(path).read_bytes())
    assert a.study_instance_uid.startswith("2.25.") and a.study_instance_uid == b.study_instance_uid
    assert a.sop_instance_uid == b.sop_instance_uid
    assert any("StudyInstanceUID missing" in w for w in a.warnings)


def test_zip_member_lying_about_its_size_is_refused() -> None:
    data = bytearray(_zip({"big.dcm": b"A" * 200_000}))
    # declare 1,000 bytes in both the local header and the central directory
    local = data.index(b"PK\x03\x04")
    central = data.index(b"PK\x01\x02")
    data[local + 22 : local + 26] = (1000).to_bytes(4, "little")
    data[central + 24 : central + 28] = (1000).to_bytes(4, "little")
    with pytest.raises(ZipRefused) as err:
        list(iter_zip_members(bytes(data), archive_name="liar.zip"))
    assert err.value.code in ("bad_zip", "zip_bomb")
