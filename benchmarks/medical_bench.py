"""Throughput of the medical app through the whole stack, and peak memory of a 500-slice CT series.

Starts its own processes in a scratch folder with ``benchmarks/stack.py`` (SQLite database, a Redis
of its own, media): the Django web server, a Celery worker and the model service with the embedded
model.

1. Every DICOM file that pydicom and pydicom-data ship, uploaded over REST
   (``POST /api/v1/medical/studies/``, ``--chunk`` files per upload) → ingest task (parse, pixel
   check, de-identification, grouping) → one study job per study (features, key images, draft) →
   done. Files per minute and studies per minute from the first POST to the last terminal study.
   Run with the language model off (``LLM_ENABLED=false``) over all files, because on a 2-core CPU
   the embedded model needs ~20 s per draft.
2. The same stack with the language model on, over ``--llm-studies`` image files (one study each).
3. Peak memory of ``series_features`` over a 500-slice CT series built from a real slice
   (``benchmarks/medical_core.series_memory``) at 128 and 512 px.

Usage: ``.venv/bin/python benchmarks/medical_bench.py [--llm-studies 6] [--chunk 20] [--slices 500]``
(``--skip-all``, ``--skip-llm``, ``--skip-memory`` leave parts out; ``--json`` prints JSON only).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for _path in (ROOT, ROOT / "platform", ROOT / "benchmarks"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))
from stack import PY, Stack  # noqa: E402

QUEUES = "default,medical,maintenance"


class MedicalStack(Stack):
    """The shared stack with the medical specifics: a short job sweep, the medical queues, the worker's
    memory. Lives in ``var/bench-medical`` (removed afterwards unless --keep)."""

    def __init__(self, var: Path, *, concurrency: int):
        super().__init__(var, extra_env={"JOB_SWEEP_INTERVAL": "5"})
        self.concurrency = concurrency

    def setup(self) -> None:
        self.prepare(roles="medical")
        self.start_web("runserver")

    def start_medical_worker(self, *, llm: bool) -> None:
        self.start_worker(queues=QUEUES, concurrency=self.concurrency, env={"LLM_ENABLED": str(llm).lower()})

    def worker_rss_mb(self) -> float:
        import psutil

        proc = self.procs.get("worker")
        if proc is None:
            return 0.0
        try:
            main = psutil.Process(proc.pid)
            return max([main.memory_info().rss]
                       + [c.memory_info().rss for c in main.children(recursive=True)]) / 2**20
        except psutil.Error:
            return 0.0


def bundled_files() -> list[tuple[str, Path]]:
    """(upload name, path) of every file pydicom's test_files and pydicom-data's data_store ship."""
    import data_store
    from pydicom.data import get_testdata_file

    roots = {"pydicom": Path(get_testdata_file("CT_small.dcm")).parent,
             "pydicom-data": Path(data_store.__file__).parent / "data"}
    out = []
    for label, root in roots.items():
        out.extend((f"{label}/{p.relative_to(root)}", p) for p in sorted(root.rglob("*")) if p.is_file())
    return out


def run_uploads(stack: MedicalStack, files: list[tuple[str, Path]], *, chunk: int, timeout: float) -> dict:
    """POST the files in uploads of ``chunk`` files, wait until every upload and study is terminal."""
    import httpx

    api = httpx.Client(base_url=f"http://127.0.0.1:{stack.web_port}", timeout=300,
                       headers={"Authorization": f"Bearer {stack.token}"})
    started = time.monotonic()
    uploads = []
    peak_rss = 0.0
    for i in range(0, len(files), chunk):
        part = files[i:i + chunk]
        multipart = [("files", (name, path.read_bytes(), "application/dicom")) for name, path in part]
        response = api.post("/api/v1/medical/studies/", files=multipart)
        if response.status_code != 202:
            raise RuntimeError(f"upload refused: {response.status_code} {response.text[:300]}")
        uploads.append(response.json()["url"])
        peak_rss = max(peak_rss, stack.worker_rss_mb())
    posted = time.monotonic() - started
    deadline = time.monotonic() + timeout
    final: list[dict] = []
    while time.monotonic() < deadline:
        peak_rss = max(peak_rss, stack.worker_rss_mb())
        final = [api.get(u).json() for u in uploads]
        if all(b["status"] in ("done", "failed") for b in final):
            break
        time.sleep(1.0)
    else:
        raise RuntimeError(f"uploads not finished after {timeout:.0f}s")
    seconds = time.monotonic() - started
    statuses: dict[str, int] = {}
    studies = []
    for b in final:
        for f in b["files"]:
            key = (f["status"] if f["status"] == "ok"
                   else f"{f['status']}:{(f['error'] or {}).get('code', '')}")
            statuses[key] = statuses.get(key, 0) + 1
        studies.extend(b["studies"])
    study_status: dict[str, int] = {}
    for s in studies:
        study_status[s["status"]] = study_status.get(s["status"], 0) + 1
    llm = []
    for s in studies[:50]:
        detail = api.get(s["url"]).json()
        info = (detail.get("result") or {}).get("llm") or {}
        if info.get("enabled"):
            llm.append({"tokens": info.get("usage", {}).get("completion_tokens"),
                        "latency_s": info.get("latency_s"),
                        "finish": info.get("finish_reason"), "ai_draft": detail["report"]["ai_generated"]
                        if detail.get("report") else False})
    n_files = sum(statuses.values())
    out = {
        "files": len(files), "file_rows": n_files, "uploads": len(uploads), "studies": len(studies),
        "seconds": round(seconds, 1), "post_seconds": round(posted, 1),
        "files_per_minute": round(60 * len(files) / seconds, 1),
        "studies_per_minute": round(60 * len(studies) / seconds, 2),
        "file_statuses": dict(sorted(statuses.items())), "study_statuses": study_status,
        "worker_peak_rss_mb": round(peak_rss, 1),
    }
    if llm:
        out["llm"] = {"drafts": len(llm), "ai_drafts": sum(1 for x in llm if x["ai_draft"]),
                      "mean_completion_tokens": round(sum(x["tokens"] or 0 for x in llm) / len(llm), 1),
                      "mean_latency_s": round(sum(x["latency_s"] or 0 for x in llm) / len(llm), 1),
                      "cut_at_max_tokens": sum(1 for x in llm if x["finish"] == "length")}
    return out


def ct_series_through_stack(stack: MedicalStack, slices: int) -> dict:
    """A ``slices``-slice CT series (built from CT_small.dcm) in one REST upload, LLM off: the worker's
    peak RSS over its idle RSS shows the series is streamed, not loaded."""
    import tempfile

    from benchmarks.medical_core import build_series

    with tempfile.TemporaryDirectory(prefix="medical-bench-ct-") as tmp:
        paths, _ = build_series(Path(tmp), slices, 1)
        idle = stack.worker_rss_mb()
        out = run_uploads(stack, [(f"ct{slices}/{p.name}", p) for p in paths], chunk=len(paths), timeout=1800)
    out["worker_idle_rss_mb"] = round(idle, 1)
    return out


def llm_subset(files: list[tuple[str, Path]], n: int) -> list[tuple[str, Path]]:
    """``n`` usable single-file image studies, cycling through the modalities (CT, MR, CR, US, ...)."""
    import warnings

    from apps.medical.ingest import IngestError, parse_dicom

    chosen, seen_study, by_modality = [], set(), {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, path in files:
            try:
                inst = parse_dicom(name, str(path))
            except IngestError:
                continue
            by_modality.setdefault(inst.modality, []).append((name, path, inst.study_instance_uid))
    while len(chosen) < n and any(by_modality.values()):
        for modality in sorted(by_modality):
            items = by_modality[modality]
            while items and items[0][2] in seen_study:
                items.pop(0)
            if items and len(chosen) < n:
                name, path, study = items.pop(0)
                seen_study.add(study)
                chosen.append((name, path))
    return chosen


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--llm-studies", type=int, default=8)
    parser.add_argument("--chunk", type=int, default=1,
                        help="files per REST upload (1: each file pushed alone, as a modality does)")
    parser.add_argument("--concurrency", type=int, default=2, help="worker processes")
    parser.add_argument("--slices", type=int, default=500)
    parser.add_argument("--upscale", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--skip-all", action="store_true")
    parser.add_argument("--skip-llm", action="store_true")
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep var/bench-medical for inspection")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    report: dict = {"machine": {"cpus": os.cpu_count(), "worker_concurrency": args.concurrency}}
    files = bundled_files()
    var = ROOT / "var" / "bench-medical"
    shutil.rmtree(var, ignore_errors=True)
    stack = MedicalStack(var, concurrency=args.concurrency)
    try:
        if not (args.skip_all and args.skip_llm):
            stack.setup()
        if not args.skip_all:
            stack.start_medical_worker(llm=False)
            report["all_files_llm_off"] = run_uploads(stack, files, chunk=args.chunk, timeout=3600)
            report["ct_series_full_stack"] = ct_series_through_stack(stack, args.slices)
        if not args.skip_llm and args.llm_studies > 0:
            report["model_service_start_s"] = round(stack.start_model(), 1)
            stack.start_medical_worker(llm=True)
            subset = llm_subset(files, args.llm_studies)
            report["llm_subset_files"] = [name for name, _ in subset]
            report["subset_llm_on"] = run_uploads(stack, subset, chunk=1, timeout=3600)
    finally:
        stack.stop_all()
        if not args.keep:
            shutil.rmtree(var, ignore_errors=True)
    if not args.skip_memory:
        # a fresh process, so that its peak RSS is the series' own
        out = subprocess.run([PY, str(ROOT / "benchmarks" / "medical_core.py"), "--slices", str(args.slices),
                              "--skip-bundled", "--upscale", *map(str, args.upscale)],
                             cwd=ROOT, capture_output=True, text=True, check=True)
        report["series_memory"] = json.loads(out.stdout)["series"]
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(json.dumps(report, indent=2))
    a, b = report.get("all_files_llm_off"), report.get("subset_llm_on")
    if a:
        print(f"\nall {a['files']} bundled files, LLM off: {a['files_per_minute']} files/min, "
              f"{a['studies_per_minute']} studies/min ({a['studies']} studies in {a['seconds']} s)")
    if b:
        print(f"{b['files']} studies with the LLM: {b['studies_per_minute']} studies/min "
              f"(mean draft {b.get('llm', {}).get('mean_latency_s')} s)")
    c = report.get("ct_series_full_stack")
    if c:
        print(f"{c['files']}-slice CT through the stack: {c['seconds']} s, "
              f"worker peak RSS {c['worker_peak_rss_mb']} MB (idle {c['worker_idle_rss_mb']} MB)")
    for m in report.get("series_memory", []):
        print(f"{m['slices']}-slice CT {m['matrix'][0]}x{m['matrix'][1]}: "
              f"tracemalloc peak {m['tracemalloc_peak_mb']} MB, "
              f"RSS growth {m['ru_maxrss_delta_mb']} MB, pixels if held at once {m['series_pixels_mb']} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
