"""The original identifiers put back into a de-identified header, for the hospital's own systems."""

from __future__ import annotations

import copy
from typing import Any

from pydicom.dataset import Dataset
from pydicom.multival import MultiValue


def reidentify_header(ds: Dataset, identifiers: dict[str, Any]) -> Dataset:
    """A copy of a de-identified (header-only) data set with the patient, study and UIDs restored.

    For outputs that go back to the hospital's own PACS or EHR (an SR that must reference the
    original study). Never use its result for anything that leaves for the model service.
    """
    out = copy.deepcopy(ds)
    reverse = {new: old for old, new in identifiers.get("uid_map", {}).items()}

    def fix(d: Dataset) -> None:
        for elem in d:
            if elem.VR == "SQ":
                for item in elem.value or []:
                    fix(item)
            elif elem.VR == "UI" and elem.value:
                if isinstance(elem.value, (MultiValue, list)):
                    elem.value = [reverse.get(str(v), str(v)) for v in elem.value]
                else:
                    elem.value = reverse.get(str(elem.value), str(elem.value))

    fix(out)
    if getattr(out, "file_meta", None) is not None and "SOPInstanceUID" in out:
        out.file_meta.MediaStorageSOPInstanceUID = out.SOPInstanceUID
    for key, kw in (
        ("patient_name", "PatientName"),
        ("patient_id", "PatientID"),
        ("patient_birth_date", "PatientBirthDate"),
        ("patient_sex", "PatientSex"),
        ("accession_number", "AccessionNumber"),
        ("study_id", "StudyID"),
        ("study_date", "StudyDate"),
        ("study_time", "StudyTime"),
        ("referring_physician_name", "ReferringPhysicianName"),
        ("study_description", "StudyDescription"),
    ):
        value = identifiers.get(key)
        if isinstance(value, str):
            setattr(out, kw, value)
    out.PatientIdentityRemoved = "NO"
    for kw in ("DeidentificationMethod", "DeidentificationMethodCodeSequence",
               "LongitudinalTemporalInformationModified"):
        if kw in out:
            delattr(out, kw)
    return out
