"""What ingest produces: parsed instances, per-file errors, and the study/series grouping types."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


class IngestError(Exception):
    """A problem with one input file; carries the file name and the cause."""

    def __init__(self, name: str, code: str, message: str) -> None:
        super().__init__(f"{name}: {message}")
        self.name = name
        self.code = code
        self.message = message



@dataclass
class FileError:
    """One input file that could not be used. ``code`` is a stable machine-readable cause."""

    name: str
    code: str  # not_dicom | truncated | undecodable | invalid | no_pixel_data | dicomdir | nested_zip | empty
    message: str

    def as_dict(self) -> dict[str, str]:
        """JSON-serialisable form."""
        return {"name": self.name, "status": "error", "code": self.code, "error": self.message}

    def __str__(self) -> str:
        return f"{self.name}: {self.message}"


@dataclass
class Instance:
    """A parsed DICOM instance (header facts only; pixel data is not kept)."""

    name: str
    path: str | None
    study_instance_uid: str
    series_instance_uid: str
    sop_instance_uid: str
    sop_class_uid: str
    sop_class_name: str
    modality: str
    transfer_syntax_uid: str
    transfer_syntax_name: str
    photometric_interpretation: str
    rows: int
    columns: int
    number_of_frames: int
    instance_number: int | None
    image_position_patient: list[float] | None
    image_orientation_patient: list[float] | None
    series_number: int | None
    size_bytes: int
    warnings: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """JSON-serialisable form (original UIDs included: keep it on the platform side)."""
        d = dict(self.__dict__)
        d["status"] = "ok"
        return d


@dataclass
class SeriesGroup:
    """Instances of one series, sorted by position along the slice normal, then InstanceNumber."""

    series_instance_uid: str
    modality: str
    series_number: int | None
    instances: list[Instance]

    @property
    def frame_count(self) -> int:
        """Total frames over the series (slices for single-frame series)."""
        return sum(i.number_of_frames for i in self.instances)


@dataclass
class StudyGroup:
    """Series of one study, sorted by SeriesNumber."""

    study_instance_uid: str
    series: list[SeriesGroup]

    @property
    def modalities(self) -> list[str]:
        """Distinct modalities in the study, in series order."""
        seen: list[str] = []
        for s in self.series:
            if s.modality not in seen:
                seen.append(s.modality)
        return seen


@dataclass
class IngestResult:
    """What :func:`ingest` found: usable instances, per-file errors and the study/series grouping."""

    instances: list[Instance]
    errors: list[FileError]
    studies: list[StudyGroup]
    #: ZIP members are named ``<archive>/<index>`` (paths often carry the patient's name): pseudonym →
    #: the member's path in the archive, for the identity row only
    member_paths: dict[str, str] = field(default_factory=dict)

    def file_statuses(self) -> list[dict[str, Any]]:
        """One JSON-serialisable row per input file (ok rows first, then errors)."""
        rows: list[dict[str, Any]] = [
            {
                "name": i.name,
                "status": "ok",
                "study_instance_uid": i.study_instance_uid,
                "series_instance_uid": i.series_instance_uid,
                "sop_instance_uid": i.sop_instance_uid,
                "modality": i.modality,
                "transfer_syntax": i.transfer_syntax_name,
                "frames": i.number_of_frames,
                "warnings": list(i.warnings),
            }
            for i in self.instances
        ]
        rows.extend(e.as_dict() for e in self.errors)
        return rows

