"""Accept uploaded DICOM files and ZIP archives, parse them, group them into studies and series.

Django-free. The entry point is :func:`ingest`, which takes any mix of

* ``(name, bytes)`` pairs (an uploaded file),
* paths to files on disk,

where a ZIP (recognised by its magic bytes, not its name) is opened safely with
:func:`iter_zip_members` and each member is treated as one more file. Every file ends as either an
:class:`Instance` (parsed header, pixel data checked to decode) or a :class:`FileError` naming the
file and the cause; one bad file never stops the others.

ZIP policy (see :class:`ZipLimits`): a member whose path climbs out of the archive (``..``, an
absolute path, a drive letter), a symlink member, an encrypted member, or an archive past the limits
on member count, total uncompressed size or compression ratio refuses the *whole* archive with
:class:`ZipRefused` (such archives are hostile, not merely damaged). A ZIP inside a ZIP is not opened:
that member gets its own ``nested_zip`` error and the other members go on.

Modules (import from the package, ``from apps.medical.ingest import ...``):

- :mod:`.reader` the entry point :func:`ingest` (files, paths and ZIPs in; instances and errors out);
- :mod:`.zipfiles` the ZIP policy (:class:`ZipLimits`, :class:`ZipRefused`, :func:`iter_zip_members`);
- :mod:`.parse` one DICOM file read and checked (:func:`parse_dicom`, :func:`read_dataset`,
  :func:`load_dataset`, :func:`check_pixel_data`);
- :mod:`.grouping` studies and series in slice order (:func:`group_instances`);
- :mod:`.records` the result types (:class:`Instance`, :class:`FileError`, :class:`IngestResult`,
  :class:`SeriesGroup`, :class:`StudyGroup`) and :class:`IngestError`.
"""

from __future__ import annotations

from .grouping import group_instances
from .parse import check_pixel_data, load_dataset, parse_dicom, read_dataset
from .reader import InputItem, ingest
from .records import FileError, IngestError, IngestResult, Instance, SeriesGroup, StudyGroup
from .zipfiles import ZIP_MAGIC, ZipLimits, ZipRefused, is_zip, iter_zip_members

__all__ = [
    "ZIP_MAGIC",
    "FileError",
    "IngestError",
    "IngestResult",
    "InputItem",
    "Instance",
    "SeriesGroup",
    "StudyGroup",
    "ZipLimits",
    "ZipRefused",
    "check_pixel_data",
    "group_instances",
    "ingest",
    "is_zip",
    "iter_zip_members",
    "load_dataset",
    "parse_dicom",
    "read_dataset",
]
