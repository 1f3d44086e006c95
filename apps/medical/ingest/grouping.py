"""Instances grouped into studies and series, each series in slice order."""

from __future__ import annotations

from collections.abc import Iterable

from .records import Instance, SeriesGroup, StudyGroup


def _slice_key(inst: Instance) -> tuple[float, float, str]:
    pos, ori = inst.image_position_patient, inst.image_orientation_patient
    along = 0.0
    if pos and ori:
        r, c = ori[:3], ori[3:]
        normal = (r[1] * c[2] - r[2] * c[1], r[2] * c[0] - r[0] * c[2], r[0] * c[1] - r[1] * c[0])
        along = sum(p * n for p, n in zip(pos, normal, strict=True))
    num = float(inst.instance_number) if inst.instance_number is not None else 0.0
    return (along, num, inst.name) if pos and ori else (num, 0.0, inst.name)


def _number_key(inst: Instance) -> tuple[int, str]:
    return (inst.instance_number if inst.instance_number is not None else 0, inst.name)


def _series_key(group: SeriesGroup) -> tuple[int, str]:
    """By SeriesNumber, series without one last."""
    return (group.series_number if group.series_number is not None else 1 << 30, group.series_instance_uid)


def group_instances(instances: Iterable[Instance]) -> list[StudyGroup]:
    """Group instances by StudyInstanceUID and SeriesInstanceUID; drop duplicate SOP Instance UIDs.

    Within a series, instances are sorted by position along the slice normal (from
    ImagePositionPatient/ImageOrientationPatient) when every instance has them, else by InstanceNumber.
    """
    studies: dict[str, dict[str, list[Instance]]] = {}
    seen: set[str] = set()
    for inst in instances:
        if inst.sop_instance_uid in seen:
            inst.warnings.append("duplicate SOP Instance UID: ignored")
            continue
        seen.add(inst.sop_instance_uid)
        studies.setdefault(inst.study_instance_uid, {}).setdefault(inst.series_instance_uid, []).append(inst)
    out: list[StudyGroup] = []
    for study_uid, series in studies.items():
        groups = []
        for series_uid, members in series.items():
            geometric = all(m.image_position_patient and m.image_orientation_patient for m in members)
            if geometric:
                members.sort(key=_slice_key)
            else:
                members.sort(key=_number_key)
            groups.append(SeriesGroup(series_uid, members[0].modality, members[0].series_number, members))
        groups.sort(key=_series_key)
        out.append(StudyGroup(study_uid, groups))
    return out

