"""Benchmark of the medical domain core (no Django): memory of a streamed CT series and throughput.

1. Peak memory of ``series_features`` over an N-slice CT series (default 500) built from pydicom's
   real CT slice ``CT_small.dcm`` (new SOP Instance UIDs and positions, written to a temp folder)
   and streamed from disk: tracemalloc peak (Python allocations incl. numpy) and the ru_maxrss
   delta of the process, next to the size the series' pixels would take if held at once.
2. Files per second of parse + de-identification + features over every file that pydicom and
   pydicom-data ship (errors included: they are part of the work).

Usage: ``PYTHONPATH=. .venv/bin/python benchmarks/medical_core.py [--slices 500] [--upscale 1 4]``
"""

from __future__ import annotations

import argparse
import copy
import gc
import json
import os
import resource
import sys
import tempfile
import time
import tracemalloc
import warnings
from pathlib import Path

import numpy as np
import pydicom
from pydicom.data import get_testdata_file
from pydicom.uid import generate_uid

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from apps.medical.deidentify import deidentify  # noqa: E402
from apps.medical.imaging import ImagingError, series_features  # noqa: E402
from apps.medical.ingest import ingest, load_dataset  # noqa: E402

SALT = "benchmark-salt"


def build_series(folder: Path, slices: int, upscale: int) -> tuple[list[Path], int]:
    """Write ``slices`` copies of CT_small.dcm (optionally upscaled) with new UIDs and positions."""
    base = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    pixels = base.pixel_array
    if upscale > 1:
        pixels = np.kron(pixels, np.ones((upscale, upscale), dtype=pixels.dtype))
        base.Rows, base.Columns = pixels.shape
        base.PixelSpacing = [float(v) / upscale for v in base.PixelSpacing]
    base.PixelData = pixels.tobytes()
    study, series = generate_uid(), generate_uid()
    x, y, z = (float(v) for v in base.ImagePositionPatient)
    paths = []
    for i in range(slices):
        ds = copy.copy(base)  # shares the pixel bytes; only the header elements below are new
        ds.file_meta = copy.deepcopy(base.file_meta)
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series
        ds.SOPInstanceUID = generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.InstanceNumber = i + 1
        ds.ImagePositionPatient = [x, y, z + 1.25 * i]
        path = folder / f"IM{i:05d}.dcm"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths, pixels.nbytes


def _maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def series_memory(slices: int, upscale: int) -> dict:
    """Peak memory and time of series_features over a streamed N-slice series."""
    with tempfile.TemporaryDirectory(prefix="medical-bench-") as tmp:
        paths, slice_bytes = build_series(Path(tmp), slices, upscale)
        gc.collect()
        rss_before = _maxrss_mb()
        t0 = time.perf_counter()
        result = series_features(iter(paths))  # a generator of paths: nothing is listed in memory
        seconds = time.perf_counter() - t0
        rss_delta = _maxrss_mb() - rss_before
        gc.collect()
        tracemalloc.start()
        series_features(iter(paths))
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        disk = sum(p.stat().st_size for p in paths)
    f = result.features
    return {
        "slices": f["frames"],
        "matrix": [f["rows"], f["columns"]],
        "series_pixels_mb": round(slice_bytes * slices / 2**20, 1),
        "files_on_disk_mb": round(disk / 2**20, 1),
        "tracemalloc_peak_mb": round(peak / 2**20, 2),
        "ru_maxrss_delta_mb": round(rss_delta, 2),
        "seconds": round(seconds, 2),
        "slices_per_second": round(f["frames"] / seconds, 1),
        "key_images": len(result.key_images),
        "hu_mean": f["intensity"]["mean"],
    }


def bundled_files() -> list[str]:
    """Every regular file in pydicom's test_files and pydicom-data's data_store."""
    import data_store

    roots = [os.path.dirname(get_testdata_file("CT_small.dcm")),
             os.path.join(os.path.dirname(data_store.__file__), "data")]
    return sorted(os.path.join(d, n) for r in roots for d, _s, names in os.walk(r) for n in names)


def bundled_throughput() -> dict:
    """Parse + de-identify + features for every bundled file, one file at a time."""
    files = bundled_files()
    ok = errors = 0
    size = sum(os.path.getsize(f) for f in files)
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for path in files:
            result = ingest([path])
            if not result.instances:
                errors += 1
                continue
            try:
                deid = deidentify(load_dataset(result.instances[0]), SALT)
                series_features([deid.dataset], key_images=5)
                ok += 1
            except ImagingError:
                errors += 1
    seconds = time.perf_counter() - t0
    return {
        "files": len(files),
        "with_features": ok,
        "per_file_errors": errors,
        "megabytes": round(size / 2**20, 1),
        "seconds": round(seconds, 2),
        "files_per_second": round(len(files) / seconds, 1),
        "megabytes_per_second": round(size / 2**20 / seconds, 1),
    }


def main() -> None:
    """Run the benchmark and print JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slices", type=int, default=500)
    parser.add_argument("--upscale", type=int, nargs="+", default=[1, 4], help="1: 128 px slices, 4: 512 px")
    parser.add_argument("--skip-bundled", action="store_true")
    args = parser.parse_args()
    out: dict = {"series": [series_memory(args.slices, u) for u in args.upscale]}
    if not args.skip_bundled:
        out["bundled"] = bundled_throughput()
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
