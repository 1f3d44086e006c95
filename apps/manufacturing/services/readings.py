"""Stored readings: sensors, machines, the compact chunks of each delivery and a machine's series."""
from __future__ import annotations

import logging

import pandas as pd
from django.db import transaction

from apps.manufacturing import cmapss
from apps.manufacturing.errors import ReadingsRejected
from apps.manufacturing.ingest import merge_series
from apps.manufacturing.models import Machine, Prediction, ReadingChunk, Sensor
from core.models import Batch

logger = logging.getLogger(__name__)

#: Chunks per machine above which they are folded into one.
COMPACT_AFTER_CHUNKS = 50


def sensors_ensure(*, names: list[str], units: dict[str, str] | None = None,
                   settings_names: list[str] | None = None) -> None:
    """Create rows for sensors not seen before (C-MAPSS sensors get their symbol, description and unit)."""
    units = units or {}
    setting_set = set(settings_names or [])
    existing = set(Sensor.objects.filter(name__in=names).values_list("name", flat=True))
    new = []
    for name in names:
        if name in existing:
            continue
        info = cmapss.CMAPSS_SENSORS.get(name) or cmapss.SETTING_INFO.get(name)
        unit = units.get(name) or (info.unit if info and info.unit != "-" else "")
        new.append(Sensor(
            name=name[:100], unit=unit[:40], symbol=(info.symbol if info else "")[:40],
            description=(info.description_en if info else "")[:200],
            description_zh=(info.description_zh if info else "")[:200], is_setting=name in setting_set,
        ))
    if new:
        Sensor.objects.bulk_create(new, ignore_conflicts=True)
    # a unit learned later (a header "temp (°C)") fills an empty one
    for name, unit in units.items():
        if unit:
            Sensor.objects.filter(name=name, unit="").update(unit=unit[:40])


def machine_get_or_create(*, machine_id: str) -> Machine:
    machine_id = str(machine_id).strip()[:100]
    machine, _created = Machine.objects.get_or_create(machine_id=machine_id)
    return machine


def _time_label(value) -> str:
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    try:
        f = float(value)
    except (TypeError, ValueError):
        return str(value)
    return str(int(f)) if f.is_integer() else str(f)


def chunk_store(*, machine: Machine, frame: pd.DataFrame, time_axis: str, source: str,
                batch: Batch | None = None) -> ReadingChunk:
    """Append one delivery of a machine's cleaned series."""
    frame = frame.sort_index()
    chunk = ReadingChunk.objects.create(
        machine=machine, source=source, batch=batch, time_axis=time_axis,
        columns=[str(c) for c in frame.columns], steps=len(frame),
        readings=int(frame.notna().to_numpy().sum()),
        start=_time_label(frame.index[0]) if len(frame) else "",
        end=_time_label(frame.index[-1]) if len(frame) else "",
        data=ReadingChunk.encode(frame),
    )
    updates = {"last_reading_at": chunk.end}
    if not machine.time_axis:
        updates["time_axis"] = time_axis
    Machine.objects.filter(pk=machine.pk).update(**updates)
    for key, value in updates.items():
        setattr(machine, key, value)
    return chunk


def machine_series(*, machine: Machine, upto_chunk_id: int | None = None) -> pd.DataFrame | None:
    """The machine's whole stored series (chunks merged in order, later readings winning)."""
    chunks = ReadingChunk.objects.filter(machine=machine).order_by("id")
    if upto_chunk_id is not None:
        chunks = chunks.filter(id__lte=upto_chunk_id)
    series = None
    for chunk in chunks:
        series = merge_series(series, chunk.frame())
    return series


def machine_series_compact(*, machine: Machine) -> ReadingChunk | None:
    """Fold all of a machine's chunks into one (same series, fewer rows). Returns the new chunk."""
    with transaction.atomic():
        chunks = list(ReadingChunk.objects.select_for_update().filter(machine=machine).order_by("id"))
        if len(chunks) < 2:
            return None
        series = None
        for chunk in chunks:
            series = merge_series(series, chunk.frame())
        last = chunks[-1]
        merged = ReadingChunk.objects.create(
            machine=machine, source=last.source, batch=last.batch, time_axis=last.time_axis,
            columns=[str(c) for c in series.columns], steps=len(series),
            readings=int(series.notna().to_numpy().sum()), start=_time_label(series.index[0]),
            end=_time_label(series.index[-1]), data=ReadingChunk.encode(series),
        )
        # predictions that pointed at an old chunk now see the merged one (a superset)
        Prediction.objects.filter(chunk__in=chunks).update(chunk=merged)
        ReadingChunk.objects.filter(pk__in=[c.pk for c in chunks]).delete()
    return merged


def machine_series_compact_if_long(*, machine: Machine) -> None:
    """Compact a machine's chunks once there are more than :data:`COMPACT_AFTER_CHUNKS` (best effort)."""
    if ReadingChunk.objects.filter(machine=machine).count() <= COMPACT_AFTER_CHUNKS:
        return
    try:
        machine_series_compact(machine=machine)
    except Exception:  # compaction is an optimisation; the readings are stored either way
        logger.exception("could not compact the readings of machine %s", machine.machine_id)


def axis_mismatch_message(machine: Machine, time_axis: str, what: str = "these use") -> str:
    return (f"machine {machine.machine_id}: stored readings use {machine.time_axis}, {what} {time_axis}")


def check_axis(machine: Machine, time_axis: str) -> None:
    """Refuse readings whose time axis (cycles or timestamps) differs from the machine's stored ones."""
    if machine.time_axis and machine.time_axis != time_axis:
        raise ReadingsRejected(axis_mismatch_message(machine, time_axis)
                               + "; send the same kind of time (cycle numbers or timestamps)",
                               code="time_axis_mismatch")
