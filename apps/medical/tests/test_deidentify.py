"""De-identification: planted identifiers never survive, UIDs map consistently, flags and options."""

from __future__ import annotations

import copy
import io
import json
import string
from pathlib import Path

import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from apps.medical.deidentify import (
    DeidOptions,
    deidentify,
    deidentify_file,
    find_phi,
    new_uid,
    phi_strings,
    reidentify_header,
    scrub_text,
)
from apps.medical.imaging import series_features, study_summary
from apps.medical.prompting import draft_variables

PLANTED = ["Zzyzx", "Quintavius", "PID-8675309", "8675309", "19580214", "ACC77123", "Blorbo", "Saint Quux",
           "Qwertyville"]
PROMPTS = Path(__file__).resolve().parents[1] / "prompts"


def _planted_ct() -> Dataset:
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    ds.PatientName = "Zzyzx^Quintavius"
    ds.PatientID = "PID-8675309"
    ds.PatientBirthDate = "19580214"
    ds.OtherPatientIDs = ["8675309", "X-8675309"]
    ds.OtherPatientNames = "Zzyzx^Q"
    ds.PatientAddress = "12 Qwertyville Road"
    ds.AccessionNumber = "ACC77123"
    ds.InstitutionName = "Hospital Saint Quux"
    ds.ReferringPhysicianName = "Blorbo^Kevin"
    ds.StudyDescription = "CT chest for Zzyzx Quintavius 14/02/1958"
    ds.SeriesDescription = "Axial PID-8675309"
    ds.ImageComments = "patient Quintavius, born 1958-02-14"
    req = Dataset()
    req.RequestedProcedureID = "PID-8675309"
    req.ScheduledProcedureStepDescription = "for Zzyzx"
    ds.RequestAttributesSequence = Sequence([req])
    ref = Dataset()
    ref.ReferencedSOPClassUID = "1.2.840.10008.3.1.2.3.1"
    ref.ReferencedSOPInstanceUID = "1.2.3.4.5.8675309"
    ds.ReferencedPatientSequence = Sequence([ref])
    block = ds.private_block(0x0011, "ACME Hospital", create=True)
    block.add_new(0x01, "LO", "Zzyzx Quintavius")
    ds.add_new(0x60003000, "OW", b"\x01\x00" * 64)
    ds.add_new(0x60004000, "LT", "overlay by Blorbo")
    ds.add_new(0x50003000, "OB", b"Zzyzx curve")
    return ds


def _all_text(ds: Dataset) -> str:
    clean = copy.deepcopy(ds)
    if "PixelData" in clean:
        del clean.PixelData
    buf = io.BytesIO()
    clean.save_as(buf, enforce_file_format=False)
    return buf.getvalue().decode("latin-1")


def test_planted_identifiers_are_gone_from_dataset_and_prompt(salt: str) -> None:
    original = _planted_ct()
    result = deidentify(original, salt)
    ds = result.dataset
    text = _all_text(ds).lower()
    for planted in PLANTED:
        assert planted.lower() not in text, planted
    phi = phi_strings(result.identifiers)
    assert {"Zzyzx", "Quintavius", "PID-8675309", "19580214", "ACC77123", "Hospital Saint Quux"} <= phi
    assert find_phi(ds, phi) == []
    # the original is untouched (copy semantics)
    assert str(original.PatientName) == "Zzyzx^Quintavius"

    features = series_features([ds], key_images=1).features
    summary = study_summary([features])
    indication = ("Cough. Patient Zzyzx Quintavius, MRN PID-8675309, born 14.02.1958, seen 2024-03-01, "
                  "tel 555-867-5309")
    for lang in ("en", "zh-hans"):
        variables = draft_variables(summary, indication, lang, phi=phi)
        rendered = json.dumps(variables, ensure_ascii=False).lower()
        for planted in PLANTED + ["1958", "2024-03-01", "555-867"]:
            assert planted.lower() not in rendered, (lang, planted)
        body = (PROMPTS / "radiology_draft_ct" / f"v1.{lang}.txt").read_text(encoding="utf-8")
        prompt = string.Template(body).substitute(variables).lower()
        assert not any(p.lower() in prompt for p in PLANTED)
        assert "cough" in prompt


def test_profile_attributes_and_flags(salt: str) -> None:
    ds = deidentify(_planted_ct(), salt).dataset
    assert ds.PatientIdentityRemoved == "YES"
    assert ds.LongitudinalTemporalInformationModified == "REMOVED"
    codes = [(i.CodeValue, i.CodingSchemeDesignator) for i in ds.DeidentificationMethodCodeSequence]
    assert ("113100", "DCM") in codes and ("113105", "DCM") in codes
    assert ds.DeidentificationMethodCodeSequence[0].CodeMeaning == "Basic Application Confidentiality Profile"
    assert "Basic Profile" in ds.DeidentificationMethod[0]
    assert not any(e.tag.is_private for e in ds)
    assert not any(0x5000 <= e.tag.group <= 0x60FF for e in ds)
    assert "ImageComments" not in ds and "OtherPatientIDs" not in ds and "RequestAttributesSequence" not in ds
    assert "StudyDate" in ds and not ds.StudyDate and not ds.AccessionNumber
    assert ds.PatientID.startswith("ANON") and not ds.PatientBirthDate
    assert "chest" in ds.StudyDescription.lower()  # clean descriptors keep the meaning
    assert ds.KVP == 120  # acquisition parameters are kept
    assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID


def test_uids_are_consistent_and_salted(salt: str) -> None:
    a = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    b = copy.deepcopy(a)
    b.SOPInstanceUID = "1.2.3.999"
    ref = Dataset()
    ref.ReferencedSOPClassUID = a.SOPClassUID
    ref.ReferencedSOPInstanceUID = a.SOPInstanceUID
    b.ReferencedImageSequence = Sequence([ref])
    da, db = deidentify(a, salt), deidentify(b, salt)
    assert da.dataset.StudyInstanceUID == db.dataset.StudyInstanceUID != a.StudyInstanceUID
    assert da.dataset.SeriesInstanceUID == db.dataset.SeriesInstanceUID
    assert da.dataset.SOPInstanceUID != db.dataset.SOPInstanceUID
    assert db.dataset.ReferencedImageSequence[0].ReferencedSOPInstanceUID == da.dataset.SOPInstanceUID
    assert db.dataset.ReferencedImageSequence[0].ReferencedSOPClassUID == a.SOPClassUID  # classes kept
    assert da.dataset.SOPInstanceUID == new_uid(a.SOPInstanceUID, salt)
    assert new_uid(a.SOPInstanceUID, "another-site") != new_uid(a.SOPInstanceUID, salt)
    uid = da.dataset.SOPInstanceUID
    assert uid.startswith("2.25.") and len(uid) <= 64 and pydicom.uid.UID(uid).is_valid
    assert da.identifiers["uid_map"][a.SOPInstanceUID] == uid
    with pytest.raises(ValueError, match="salt"):
        deidentify(a, "")


def test_burned_in_annotation_is_kept_and_flagged(salt: str) -> None:
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    ds.BurnedInAnnotation = "YES"
    result = deidentify(ds, salt)
    assert result.dataset.BurnedInAnnotation == "YES" and result.burned_in_annotation == "YES"
    assert any(f.startswith("burned_in_annotation") for f in result.flags)
    us = pydicom.dcmread(get_testdata_file("US1_UNCI.dcm"))
    if "BurnedInAnnotation" in us:
        del us.BurnedInAnnotation
    assert any("unknown" in f for f in deidentify(us, salt).flags)


def test_options_and_reidentification(salt: str) -> None:
    ds = _planted_ct()
    ds.PatientSex = "F"
    ds.PatientAge = "066Y"
    kept = deidentify(ds, salt, options=DeidOptions(retain_patient_characteristics=True)).dataset
    assert kept.PatientSex == "F" and kept.PatientAge == "066Y"
    assert "113108" in [i.CodeValue for i in kept.DeidentificationMethodCodeSequence]
    result = deidentify(ds, salt)
    assert "PatientAge" not in result.dataset and not result.dataset.PatientSex
    back = reidentify_header(result.dataset, result.identifiers)
    assert back.StudyInstanceUID == ds.StudyInstanceUID and back.SOPInstanceUID == ds.SOPInstanceUID
    assert str(back.PatientName) == "Zzyzx^Quintavius" and back.PatientID == "PID-8675309"
    assert "DeidentificationMethod" not in back


def test_identifiers_are_json_and_file_round_trip(tmp_path: Path, salt: str) -> None:
    src = tmp_path / "in.dcm"
    _planted_ct().save_as(src, enforce_file_format=True)
    result = deidentify_file(src, tmp_path / "out.dcm", salt)
    json.dumps(result.identifiers)
    again = pydicom.dcmread(tmp_path / "out.dcm")
    assert again.PatientIdentityRemoved == "YES"
    assert again.file_meta.MediaStorageSOPInstanceUID == again.SOPInstanceUID
    assert "zzyzx" not in (tmp_path / "out.dcm").read_bytes().decode("latin-1").lower()


def test_scrub_text_and_token_matching() -> None:
    phi = {"Doe", "12345678"}
    out = scrub_text("Mr Doe (12345678) seen 2021-03-04, ref 987654, Doerr unaffected", phi)
    assert "Doe " not in out and "12345678" not in out and "2021" not in out and "987654" not in out
    assert "Doerr" in out  # whole tokens only
    assert find_phi({"a": "uid 2.25.12345678901"}, {"12345678"}) == []
    assert find_phi({"a": ["x", "Mr DOE"]}, {"Doe"}) == ["a.[1]: contains 'DOE'"]
