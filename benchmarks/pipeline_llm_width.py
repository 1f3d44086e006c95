"""Language-model pool width: items per minute one at a time and as a batch, per app, with the LLM on.

The script starts one throw-away stack (``benchmarks/stack.py``) in a scratch folder: a private Redis,
a scratch SQLite database (or ``--database-url``), ``migrate``, the default models trained and
activated the way ``finance_bench.py`` and ``manufacturing_bench.py`` do it, gunicorn, the model
service with the embedded model (response cache off: every call generates), one prefork worker
``worker`` (``-c --cpu-workers``) on the app queues and one thread-pool worker ``llm`` (``-P threads
-c --width``) on queue ``llm``, as in the ``Procfile``. ``LLM_ENABLED=true`` and ``LLM_WIDTH=--width``
for every process. Everything goes through the REST API only.

For each app in ``--apps`` (after ``--warmup`` untimed items):

* single: submit one item, wait until it is final, submit the next (``--*-single`` items);
* batch: ``--*-batch`` items submitted together, timed from the first POST until every item is final.

Items: finance, an application's fields plus a short report (so the judgment call sees a report;
``POST /api/v1/finance/assessments/`` alone, a CSV with ``report`` column through
``POST /api/v1/finance/batches/`` in the batch); manufacturing, FD001 engines (``train_FD001.txt``,
each cut at a random cycle, renumbered so every item is a new machine) as C-MAPSS files through
``POST /api/v1/manufacturing/uploads/``, one engine per upload or N engines in one file; medical,
``CT_small.dcm`` from pydicom's test data with new Study/Series/SOP Instance UIDs per study (one file
per study unless ``--medical-slices``), with an indication, through ``POST /api/v1/medical/studies/``,
one study per upload or N studies in one multipart upload.

Each phase reports items, seconds, items/min, the items' statuses and the language model's status per
item (``result.llm.status`` of an assessment or a study, the ``llm_status`` column of the finance and
manufacturing results CSVs: ``ok``, ``rejected`` (the model answered, the gate refused it),
``unavailable`` (no answer)); a ratio counts only if no item failed and every item has a model answer.
Targets for the ratio batch/single: >= 5x finance and manufacturing, >= 3x medical. ``--fleet`` adds the
100-engine FD001 fleet as one CSV, ``--finance-300`` a 300-application batch (target: under 8 minutes
each on a 2-core machine). The summary is printed and written to
``benchmarks/results/pipeline_llm_width.json``.

Usage: ``.venv/bin/python benchmarks/pipeline_llm_width.py [--apps finance,manufacturing,medical]
[--single 8] [--batch 48] [--medical-batch 12] [--width 32] [--cpu-workers 2] [--fleet] [--finance-300]
[--keep] [--database-url URL]`` (``--help`` lists every size). Exit status: 0 when every phase ran
(whatever the verdicts), 1 when a phase failed or timed out, 2 when the stack did not start.
"""
from __future__ import annotations

import argparse
import copy
import csv
import io
import json
import os
import random
import shutil
import signal
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for _path in (ROOT, ROOT / "benchmarks"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))
from stack import Stack, StackError  # noqa: E402

APPS = ("finance", "manufacturing", "medical")
CPU_QUEUES = "default,finance,medical,manufacturing,maintenance"
TARGETS = {"finance": 5.0, "manufacturing": 5.0, "medical": 3.0}
BIG_TARGET_MINUTES = 8.0
FINAL = {"succeeded", "failed", "needs_review"}
BATCH_FINAL = {"done", "failed"}
RESULTS_JSON = ROOT / "benchmarks" / "results" / "pipeline_llm_width.json"
MODEL_COUNTERS = {"vllm:request_success_total": "requests", "vllm:prompt_tokens_total": "prompt_tokens",
                  "vllm:prefix_cache_hits_total": "prompt_tokens_cached",
                  "vllm:generation_tokens_total": "generated_tokens"}
INDICATIONS = [
    "Persistent headache for two weeks; rule out intracranial mass.",
    "Fall from standing height, on anticoagulants; rule out haemorrhage.",
    "Follow-up of a known lesion; assess interval change.",
    "Chronic cough and weight loss; staging requested.",
]


def finance_csv_path() -> Path:
    return Path(os.environ.get("FINANCE_TRAIN_CSV",
                               ROOT.parent / "shared" / "data" / "finance" / "german_credit_train.csv"))


def cmapss_dir() -> Path:
    return Path(os.environ.get("CMAPSS_DIR", ROOT.parent / "shared" / "data" / "cmapss"))


class PhaseError(RuntimeError):
    """A phase could not finish: a refused request, a timeout, a process of the stack that died."""


# --- items -------------------------------------------------------------------------------------------
class FinanceItems:
    """Applications from the shared German Credit file (cycled), each with a short report of its own."""

    def __init__(self, tag: str):
        with finance_csv_path().open(encoding="utf-8") as fh:
            self.rows = [{k: v for k, v in row.items() if k != "creditability"} for row in csv.DictReader(fh)]
        self.columns = list(self.rows[0])
        self.tag = tag
        self.count = 0

    def next(self) -> tuple[str, dict, str]:
        """(application id, applicant fields, report) of a new application."""
        row = self.rows[self.count % len(self.rows)]
        self.count += 1
        app_id = f"{self.tag}-{self.count:05d}"
        report = (f"Loan application {app_id}. The applicant, aged {row['age_in_years']}, asks for "
                  f"{row['credit_amount']} DM over {row['duration_in_month']} months for {row['purpose']}. "
                  f"Employed {row['present_employment_since']}; housing: {row['housing']}; savings: "
                  f"{row['savings_account_and_bonds']}; checking account: "
                  f"{row['status_of_existing_checking_account']}. Credit history: {row['credit_history']}.")
        return app_id, dict(row), report

    def csv_bytes(self, n: int) -> bytes:
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=["application_id", *self.columns, "report"])
        writer.writeheader()
        for _ in range(n):
            app_id, applicant, report = self.next()
            writer.writerow({"application_id": app_id, **applicant, "report": report})
        return buf.getvalue().encode("utf-8")


class EngineItems:
    """FD001 engines as C-MAPSS text, each cut at a random cycle (> 30) and renumbered, so that every
    item is a machine of its own (a machine id seen before would extend that machine's history)."""

    def __init__(self, *, first_unit: int, seed: int = 0):
        engines: dict[int, list[str]] = {}
        with (cmapss_dir() / "train_FD001.txt").open(encoding="utf-8") as fh:
            for line in fh:
                cells = line.split()
                if len(cells) == 26:
                    engines.setdefault(int(cells[0]), []).append(" ".join(cells[1:]))
        if not engines:
            raise PhaseError(f"no engine in {cmapss_dir() / 'train_FD001.txt'}")
        self.engines = [engines[u] for u in sorted(engines)]
        self.rng = random.Random(seed)
        self.next_unit = first_unit
        self.count = 0

    def file_bytes(self, n: int) -> bytes:
        lines = []
        for _ in range(n):
            rows = self.engines[self.count % len(self.engines)]
            self.count += 1
            cut = self.rng.randint(min(31, len(rows)), len(rows))
            unit, self.next_unit = self.next_unit, self.next_unit + 1
            lines.extend(f"{unit} {row}" for row in rows[:cut])
        return ("\n".join(lines) + "\n").encode()


class StudyItems:
    """Studies made from pydicom's ``CT_small.dcm``: new Study/Series/SOP Instance UIDs (and patient,
    accession) per study; ``slices`` files per study, stacked along z."""

    def __init__(self, *, slices: int = 1, source: str = "CT_small.dcm"):
        import pydicom
        from pydicom.data import get_testdata_file

        self.template = pydicom.dcmread(get_testdata_file(source))
        self.slices = max(1, slices)
        self.count = 0

    def study(self) -> list[tuple[str, bytes]]:
        from pydicom.uid import generate_uid

        self.count += 1
        index = self.count
        study_uid, series_uid = generate_uid(), generate_uid()
        thickness = float(self.template.get("SliceThickness") or 5.0)
        files = []
        for k in range(self.slices):
            ds = copy.deepcopy(self.template)
            sop_uid = generate_uid()
            ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID = study_uid, series_uid, sop_uid
            ds.file_meta.MediaStorageSOPInstanceUID = sop_uid
            ds.PatientID, ds.PatientName = f"BENCH{index:05d}", f"Bench^Patient{index:05d}"
            ds.AccessionNumber, ds.StudyID = f"ACC{index:05d}", str(index)
            ds.InstanceNumber = k + 1
            if k and "ImagePositionPatient" in ds:
                x, y, z = (float(v) for v in ds.ImagePositionPatient)
                ds.ImagePositionPatient = [x, y, z + k * thickness]
            buf = io.BytesIO()
            ds.save_as(buf)
            files.append((f"study{index:04d}/slice{k + 1:03d}.dcm", buf.getvalue()))
        return files

    def indication(self) -> str:
        return INDICATIONS[self.count % len(INDICATIONS)]


# --- the REST client ---------------------------------------------------------------------------------
class Api:
    """httpx against the stack's web server; POSTs wait out 429/503 (``Retry-After``) until ``deadline``;
    every poll checks that the stack's processes are alive."""

    def __init__(self, stack: Stack):
        import httpx

        self.stack = stack
        self.http = httpx.Client(base_url=stack.web_url, timeout=300,
                                 headers={"Authorization": f"Bearer {stack.token}"})

    def post(self, path: str, *, deadline: float, **kwargs) -> dict:
        while True:
            response = self.http.post(path, **kwargs)
            if response.status_code == 202:
                return response.json()
            if response.status_code in (429, 503) and time.monotonic() < deadline:
                time.sleep(min(30.0, float(response.headers.get("Retry-After") or 1)))
                continue
            raise PhaseError(f"POST {path} answered {response.status_code}: {response.text[:500]}")

    def get(self, url: str) -> dict:
        return self._get(url).json()

    def model_counters(self) -> dict[str, float]:
        """The model service's counters now (``/metrics``): requests finished, prompt tokens, prompt tokens
        found in the prefix cache, generated tokens; {} when they cannot be read."""
        import httpx

        try:
            text = httpx.get(f"{self.stack.model_url}/metrics", timeout=10).text
        except httpx.HTTPError:
            return {}
        out = dict.fromkeys(MODEL_COUNTERS.values(), 0.0)
        for line in text.splitlines():
            name = line.split("{", 1)[0].split(" ", 1)[0]
            if name in MODEL_COUNTERS:
                out[MODEL_COUNTERS[name]] += float(line.rsplit(" ", 1)[1])
        return out

    def get_csv(self, url: str) -> list[dict]:
        return list(csv.DictReader(io.StringIO(self._get(url).content.decode("utf-8-sig"))))

    def _get(self, url: str):
        import httpx

        for attempt in range(5):
            try:
                response = self.http.get(url)
            except httpx.TransportError:
                if attempt == 4:
                    raise
                time.sleep(1)
                continue
            if response.status_code < 500 or attempt == 4:
                break
            time.sleep(1)
        if response.status_code != 200:
            raise PhaseError(f"GET {url} answered {response.status_code}: {response.text[:500]}")
        return response

    def wait(self, check: Callable[[], tuple[bool, object]], *, deadline: float, what: str,
             interval: float) -> None:
        """Call ``check`` (-> (finished, state)) until finished; PhaseError at ``deadline``."""
        state: object = None
        while time.monotonic() < deadline:
            self.stack.check_alive()
            finished, state = check()
            if finished:
                return
            time.sleep(interval)
        raise PhaseError(f"timed out (the phase's --timeout) waiting for {what}; "
                         f"last state: {str(state)[:400]}")


def llm_of(status: str, llm_status: str | None) -> str:
    """An item's language-model outcome: ok / rejected / unavailable / none (no record) / failed."""
    if status == "failed":
        return "failed"
    return llm_status or "none"


# --- the apps ----------------------------------------------------------------------------------------
def finance_single(api: Api, items: FinanceItems, *, deadline: float) -> list[dict]:
    app_id, applicant, report = items.next()
    job = api.post("/api/v1/finance/assessments/", deadline=deadline,
                   json={"application_id": app_id, "applicant": applicant, "report": report})
    body: dict = {}

    def check():
        nonlocal body
        body = api.get(job["url"])
        return body["status"] in FINAL, body.get("progress_message") or body["status"]

    api.wait(check, deadline=deadline, what=f"assessment {app_id}", interval=0.25)
    llm = (body.get("result") or {}).get("llm") or {}
    return [{"status": body["status"], "llm": llm_of(body["status"], llm.get("status")),
             "error": (body.get("error") or {}).get("message", "")}]


def finance_batch(api: Api, items: FinanceItems, n: int, *, deadline: float) -> list[dict]:
    batch = api.post("/api/v1/finance/batches/", deadline=deadline,
                     files={"file": ("applications.csv", items.csv_bytes(n), "text/csv")})
    body = _wait_batch(api, batch, deadline=deadline, what=f"the finance batch of {n}")
    rows = api.get_csv(batch["results_url"])
    return _rows_or_errors(rows, body, n, lambda r: r.get("llm_status"))


def engines_upload(api: Api, items: EngineItems, n: int, *, deadline: float) -> list[dict]:
    data = items.file_bytes(n)
    upload = api.post("/api/v1/manufacturing/uploads/", deadline=deadline,
                      files={"file": (f"fd001_{items.next_unit - n}_{n}.txt", data, "text/plain")})
    body = _wait_batch(api, upload, deadline=deadline, what=f"the sensor upload of {n} engines",
                       interval=0.25 if n == 1 else 1.0)
    rows = api.get_csv(upload["results_url"])
    return _rows_or_errors(rows, body, n, lambda r: r.get("llm_status"))


def studies_upload(api: Api, items: StudyItems, n: int, *, deadline: float) -> list[dict]:
    files = []
    for _ in range(n):
        files.extend(items.study())
    multipart = [("files", (name, data, "application/dicom")) for name, data in files]
    upload = api.post("/api/v1/medical/studies/", deadline=deadline, files=multipart,
                      data={"indication": items.indication()})
    body: dict = {}

    def check():
        nonlocal body
        body = api.get(upload["url"])
        studies = body.get("studies") or []
        states = Counter(s["status"] for s in studies)
        done = body["status"] in BATCH_FINAL and all(s["status"] in FINAL for s in studies)
        return done, {"upload": body["status"], "studies": dict(states)}

    api.wait(check, deadline=deadline, what=f"the DICOM upload of {n} studies",
             interval=0.25 if n == 1 else 1.0)
    out = []
    for s in body.get("studies") or []:
        detail = api.get(s["url"])
        llm = (detail.get("result") or {}).get("llm") or {}
        llm_status = llm.get("status") or ("off" if llm.get("enabled") is False else None)
        out.append({"status": detail["status"], "llm": llm_of(detail["status"], llm_status),
                    "error": (detail.get("error") or {}).get("message", "")})
    missing = n - len(out)
    if missing > 0:  # files refused at ingest, or studies merged: count them as failed items
        errors = [f"{f['name']}: {(f.get('error') or {}).get('message', f['status'])}"
                  for f in body.get("files") or [] if f.get("status") != "ok"]
        reason = "; ".join(errors[:3]) or f"{len(out)} studies for {n} submitted"
        out.extend({"status": "failed", "llm": "failed", "error": reason} for _ in range(missing))
    return out


def _wait_batch(api: Api, batch: dict, *, deadline: float, what: str, interval: float = 1.0) -> dict:
    body: dict = {}

    def check():
        nonlocal body
        body = api.get(batch["url"])
        return body["status"] in BATCH_FINAL, body.get("progress")

    api.wait(check, deadline=deadline, what=what, interval=interval)
    return body


def _rows_or_errors(rows: list[dict], body: dict, n: int,
                    llm_status: Callable[[dict], str | None]) -> list[dict]:
    out = [{"status": r["status"], "llm": llm_of(r["status"], llm_status(r)), "error": r.get("error", "")}
           for r in rows]
    if len(out) < n:  # an upload that failed as a whole (or lost rows): the rest count as failed
        reason = "; ".join(str(e) for e in (body.get("errors") or [])[:3]) or f"{len(out)} result rows"
        out.extend({"status": "failed", "llm": "failed", "error": reason} for _ in range(n - len(out)))
    return out


# --- phases ------------------------------------------------------------------------------------------
def summarize(outcomes: list[dict], *, items: int, seconds: float) -> dict:
    statuses = Counter(o["status"] for o in outcomes)
    llm = Counter(o["llm"] for o in outcomes)
    failed = statuses.get("failed", 0)
    no_answer = sum(v for k, v in llm.items() if k not in ("ok", "rejected", "failed"))
    errors = sorted({o["error"] for o in outcomes if o.get("error")})[:5]
    out = {
        "items": items, "seconds": round(seconds, 1),
        "items_per_minute": round(60 * items / seconds, 2) if seconds > 0 else None,
        "statuses": dict(statuses), "llm_status": dict(llm), "failed": failed,
        "llm_unavailable": no_answer, "llm_rejected": llm.get("rejected", 0),
        "valid": failed == 0 and no_answer == 0 and len(outcomes) == items,
    }
    if errors:
        out["errors"] = errors
    return out


def run_phase(label: str, fn: Callable[[float], list[dict]], *, items: int, timeout: float,
              counters: Callable[[], dict] | None = None) -> dict:
    """``fn(deadline)`` -> outcomes; the phase's figures, or ``{"error": ...}``. With ``counters`` (the
    model service's, :meth:`Api.model_counters`), also what the model service did during the phase."""
    print(f"  {label}: {items} item(s) ...", flush=True)
    before = counters() if counters else {}
    started = time.monotonic()
    try:
        outcomes = fn(started + timeout)
    except Exception as exc:  # noqa: BLE001 - a phase that breaks is reported, the next one still runs
        seconds = time.monotonic() - started
        message = str(exc) if isinstance(exc, (PhaseError, StackError)) else f"{type(exc).__name__}: {exc}"
        print(f"  {label}: FAILED after {seconds:.0f} s: {message}", flush=True)
        return {"items": items, "error": message, "seconds": round(seconds, 1), "valid": False}
    out = summarize(outcomes, items=items, seconds=time.monotonic() - started)
    print(f"  {label}: {items} item(s) in {out['seconds']} s = {out['items_per_minute']} items/min; "
          f"statuses {out['statuses']}; llm {out['llm_status']}; failed {out['failed']}, "
          f"LLM unavailable {out['llm_unavailable']}, rejected {out['llm_rejected']}"
          + ("" if out["valid"] else "  [not a valid measurement]"), flush=True)
    for error in out.get("errors", []):
        print(f"      error: {error[:300]}", flush=True)
    after = counters() if counters else {}
    if before and after:
        used = {k: round(after[k] - before[k]) for k in after}
        out["model_service"] = used
        prompt, cached = used["prompt_tokens"], used["prompt_tokens_cached"]
        share = 100 * cached / prompt if prompt else 0
        print(f"      model service: {used['requests']} requests ({used['requests'] / items:.2f} per item), "
              f"{prompt} prompt tokens ({share:.0f} % from the prefix cache, {prompt - cached} computed), "
              f"{used['generated_tokens']} generated", flush=True)
    return out


def sequential(one: Callable[[float], list[dict]], n: int) -> Callable[[float], list[dict]]:
    def run(deadline: float) -> list[dict]:
        outcomes: list[dict] = []
        for _ in range(n):
            outcomes.extend(one(deadline))
        return outcomes

    return run


def app_runners(app: str, api: Api, makers: dict) -> tuple[Callable, Callable]:
    """(one item, n items together) for ``app``; both take ``deadline`` and return outcomes."""
    items = makers[app]
    if app == "finance":
        return (lambda d: finance_single(api, items, deadline=d),
                lambda n, d: finance_batch(api, items, n, deadline=d))
    if app == "manufacturing":
        return (lambda d: engines_upload(api, items, 1, deadline=d),
                lambda n, d: engines_upload(api, items, n, deadline=d))
    return (lambda d: studies_upload(api, items, 1, deadline=d),
            lambda n, d: studies_upload(api, items, n, deadline=d))


def measure_app(app: str, api: Api, makers: dict, *, single: int, batch: int, warmup: int,
                timeout: float) -> dict:
    one, many = app_runners(app, api, makers)
    print(f"{app}:", flush=True)
    out: dict = {"target_ratio": TARGETS[app]}
    if warmup:
        out["warmup"] = run_phase(f"{app} warm-up (not timed)", sequential(one, warmup), items=warmup,
                                  timeout=timeout)
    out["single"] = run_phase(f"{app} one at a time", sequential(one, single), items=single, timeout=timeout,
                              counters=api.model_counters)
    out["batch"] = run_phase(f"{app} batch", lambda d: many(batch, d), items=batch, timeout=timeout,
                             counters=api.model_counters)
    s, b = out["single"].get("items_per_minute"), out["batch"].get("items_per_minute")
    out["ratio"] = round(b / s, 2) if s and b else None
    valid = out["single"].get("valid") and out["batch"].get("valid")
    if out["ratio"] is None:
        out["verdict"], out["why"] = "FAIL", "a phase did not finish"
    elif not valid:
        out["verdict"], out["why"] = "FAIL", "items failed or had no language-model answer"
    else:
        out["verdict"] = "PASS" if out["ratio"] >= TARGETS[app] else "FAIL"
        out["why"] = f"ratio {out['ratio']} vs target >= {TARGETS[app]}"
    print(f"  {app}: batch/single = {out['ratio']} (target >= {TARGETS[app]}x): {out['verdict']} "
          f"({out['why']})", flush=True)
    return out


def measure_big(label: str, fn: Callable[[float], list[dict]], *, items: int, timeout: float,
                counters: Callable[[], dict] | None = None) -> dict:
    print(f"{label}:", flush=True)
    out = run_phase(label, fn, items=items, timeout=timeout, counters=counters)
    if "error" not in out:
        out["minutes"] = round(out["seconds"] / 60, 2)
        ok = out["minutes"] < BIG_TARGET_MINUTES
        out["verdict"] = "PASS" if ok and out["valid"] else "FAIL"
        print(f"  {label}: {out['minutes']} min (target < {BIG_TARGET_MINUTES:g} min): {out['verdict']}"
              + ("" if out["valid"] else " (items failed or had no language-model answer)"), flush=True)
    else:
        out["verdict"] = "FAIL"
    out["target_minutes"] = BIG_TARGET_MINUTES
    return out


# --- the stack ---------------------------------------------------------------------------------------
def stack_start(stack: Stack, *, apps: set[str], width: int, cpu_workers: int, web: str,
                model_args: list[str]) -> dict:
    """Redis, migrate, the API user, the default models, web, model service, ``worker`` and ``llm``."""
    setup: dict = {}
    stack.prepare(roles="finance,medical,manufacturing")
    stack.start_model(model_args, wait=False)  # loads while the models train
    stack.start_web(web, wait=False)
    if "finance" in apps:
        started = time.monotonic()
        out = stack.manage("train_credit_model", "--data", str(finance_csv_path()), "--activate",
                           timeout=900).strip()
        setup["finance_model"] = {"output": out.splitlines()[:1],
                                  "seconds": round(time.monotonic() - started, 1)}
    if "manufacturing" in apps:
        started = time.monotonic()
        out = stack.manage("train_failure_model", "--data", str(cmapss_dir() / "train_FD001.txt"), "--format",
                           "cmapss", "--horizon", "30", "--name", "FD001 bench", "--activate", timeout=1800)
        lines = [ln for ln in out.splitlines() if ln.startswith(("stored", "metrics"))]
        setup["manufacturing_model"] = {"output": lines, "seconds": round(time.monotonic() - started, 1)}
    stack.wait_web()
    started = time.monotonic()
    stack.wait_model(timeout=600)
    setup["model_service_wait_s"] = round(time.monotonic() - started, 1)
    try:  # which precision the model service multiplies in (``--matmul-dtype``; auto by default)
        import httpx

        health = httpx.get(stack.model_url + "/health", timeout=10).json()
        setup["model_service"] = {k: health.get(k) for k in ("runner", "dtype", "matmul_dtype", "threads")}
    except Exception as exc:  # noqa: BLE001 - a report detail only
        setup["model_service"] = {"error": str(exc)}
    stack.start_worker(queues=CPU_QUEUES, concurrency=cpu_workers, name="worker", pool="prefork",
                       env={"OMP_NUM_THREADS": "1"})
    stack.start_worker(queues="llm", concurrency=width, name="llm", pool="threads")
    return setup


# --- output ------------------------------------------------------------------------------------------
def summary_lines(report: dict) -> list[str]:
    head = (f"{'app':<14}{'single':>7}{'s':>8}{'/min':>8}{'batch':>7}{'s':>8}{'/min':>8}{'ratio':>8}"
            f"{'target':>8}  {'verdict':<8}{'failed':>7}{'no LLM':>7}{'rejected':>9}")
    lines = [head, "-" * len(head)]

    def num(value, fmt: str) -> str:
        return format(value, fmt) if isinstance(value, (int, float)) else "-"

    for app, r in report["apps"].items():
        s, b = r["single"], r["batch"]
        failed = s.get("failed", 0) + b.get("failed", 0)
        no_llm = s.get("llm_unavailable", 0) + b.get("llm_unavailable", 0)
        rejected = s.get("llm_rejected", 0) + b.get("llm_rejected", 0)
        lines.append(f"{app:<14}{s['items']:>7}{num(s.get('seconds'), '.1f'):>8}"
                     f"{num(s.get('items_per_minute'), '.2f'):>8}{b['items']:>7}"
                     f"{num(b.get('seconds'), '.1f'):>8}"
                     f"{num(b.get('items_per_minute'), '.2f'):>8}{num(r.get('ratio'), '.2f'):>8}"
                     f"{'>=' + format(r['target_ratio'], 'g') + 'x':>8}  {r['verdict']:<8}"
                     f"{failed:>7}{no_llm:>7}{rejected:>9}")
    for key, label in (("fleet", "fleet"), ("finance_300", "finance-300")):
        r = report.get(key)
        if r:
            lines.append(f"{label:<14}{r['items']:>7} items in {num(r.get('minutes'), '.2f')} min "
                         f"(target < {r['target_minutes']:g} min): {r['verdict']}; "
                         f"failed {r.get('failed', '-')}, "
                         f"no LLM {r.get('llm_unavailable', '-')}, rejected {r.get('llm_rejected', '-')}"
                         + (f"; error: {r['error'][:200]}" if r.get("error") else ""))
    return lines


def _first(*values):
    return next(v for v in values if v is not None)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--apps", default=",".join(APPS),
                        help="comma-separated apps to measure, or 'none' (with --fleet/--finance-300)")
    parser.add_argument("--single", type=int, default=None, help="one-at-a-time items for every app")
    parser.add_argument("--batch", type=int, default=None, help="batch items for every app")
    for app, batch in (("finance", 48), ("manufacturing", 48), ("medical", 12)):
        parser.add_argument(f"--{app}-single", type=int, default=None, help="default 8 (or --single)")
        parser.add_argument(f"--{app}-batch", type=int, default=None,
                            help=f"default {batch} (or --batch)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed single items per app first")
    parser.add_argument("--medical-slices", type=int, default=1, help="DICOM files per medical study")
    parser.add_argument("--width", type=int, default=32, help="LLM_WIDTH: threads of the llm worker")
    parser.add_argument("--cpu-workers", type=int, default=2, help="prefork processes of the app worker")
    parser.add_argument("--fleet", action="store_true", help="also the 100-engine FD001 fleet in one CSV")
    parser.add_argument("--fleet-engines", type=int, default=100)
    parser.add_argument("--finance-300", action="store_true", help="also a 300-application finance batch")
    parser.add_argument("--finance-300-rows", type=int, default=300)
    parser.add_argument("--timeout", type=float, default=1800, help="seconds per phase before it fails")
    parser.add_argument("--web", choices=["gunicorn", "runserver"], default="gunicorn")
    parser.add_argument("--model-arg", action="append", default=[],
                        help="extra argument for python -m model_service (repeat; "
                             "e.g. --model-arg=--threads=2)")
    parser.add_argument("--database-url", default=None, help="default: SQLite in the scratch folder")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder (logs, database)")
    parser.add_argument("--json-out", type=Path, default=RESULTS_JSON)
    parser.add_argument("--tag", default=None,
                        help="prefix of the generated application ids (default: from the clock); the same "
                             "tag gives the same finance items and prompts, to compare settings")
    args = parser.parse_args(argv)

    apps = [] if args.apps.strip() in ("", "none") else [a.strip() for a in args.apps.split(",") if a.strip()]
    unknown = [a for a in apps if a not in APPS]
    if unknown:
        parser.error(f"unknown app(s) {', '.join(unknown)}; choose from {', '.join(APPS)}")
    sizes = {}
    for app, batch in (("finance", 48), ("manufacturing", 48), ("medical", 12)):
        # 8, not 4: one at a time is the ratio's denominator, and 4 items (5-8 s) moved it by a third
        # between runs minutes apart (2026-12-04: manufacturing 29.7-43.5/min)
        single = _first(getattr(args, f"{app}_single"), args.single, 8)
        many = _first(getattr(args, f"{app}_batch"), args.batch, batch)
        sizes[app] = {"single": single, "batch": many}
        if sizes[app]["single"] < 1 or sizes[app]["batch"] < 1:
            parser.error(f"{app}: sizes must be at least 1")
    needed = (set(apps) | ({"manufacturing"} if args.fleet else set())
              | ({"finance"} if args.finance_300 else set()))
    if not needed:
        parser.error("nothing to measure: give --apps, --fleet or --finance-300")

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so that the stack is stopped on SIGTERM too
    var = ROOT / "var" / f"bench-llm-width-{os.getpid()}"
    first_unit = 1000 if not args.database_url else 1000 * (int(time.time()) % 1_000_000)
    tag = args.tag or f"W{int(time.time()) % 100000:05d}"
    report: dict = {
        "config": {"apps": apps, "sizes": {a: sizes[a] for a in apps}, "width": args.width,
                   "cpu_workers": args.cpu_workers, "warmup": args.warmup, "web": args.web,
                   "medical_slices": args.medical_slices, "model_args": args.model_arg,
                   "database": "external" if args.database_url else "scratch sqlite",
                   "timeout_per_phase_s": args.timeout},
        "machine": {"cpu_count": os.cpu_count(),
                    "load_average_at_start": [round(x, 2) for x in os.getloadavg()]},
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "apps": {},
    }
    stack = Stack(var, database_url=args.database_url, label="llmwidth",
                  extra_env={"LLM_ENABLED": "true", "LLM_WIDTH": str(args.width), "JOB_SWEEP_INTERVAL": "30",
                             "CACHE_KEY_PREFIX": "llmwidth", "FINANCE_TRAIN_CSV": str(finance_csv_path()),
                             "CMAPSS_DIR": str(cmapss_dir()), "UPLOAD_MAX_BYTES": str(200 * 1024 * 1024)})
    status = 0
    try:
        print(f"starting the stack in {var}: {args.web}, model service, worker -P prefork -c "
              f"{args.cpu_workers} ({CPU_QUEUES}), llm -P threads -c {args.width} (llm) ...", flush=True)
        started = time.monotonic()
        try:
            report["setup"] = stack_start(stack, apps=needed, width=args.width, cpu_workers=args.cpu_workers,
                                          web=args.web, model_args=args.model_arg)
        except (StackError, OSError) as exc:
            print(f"the stack did not start: {exc}", file=sys.stderr, flush=True)
            report["error"] = f"the stack did not start: {exc}"
            return 2
        report["setup"]["seconds"] = round(time.monotonic() - started, 1)
        print(f"  ready in {report['setup']['seconds']} s: {json.dumps(report['setup'])}", flush=True)

        api = Api(stack)
        makers: dict = {}
        if "finance" in needed:
            makers["finance"] = FinanceItems(tag)
        if "manufacturing" in needed:
            makers["manufacturing"] = EngineItems(first_unit=first_unit)
        if "medical" in needed:
            makers["medical"] = StudyItems(slices=args.medical_slices)
        for app in apps:
            report["apps"][app] = measure_app(app, api, makers, single=sizes[app]["single"],
                                              batch=sizes[app]["batch"], warmup=args.warmup,
                                              timeout=args.timeout)
        if args.fleet:
            n = args.fleet_engines
            report["fleet"] = measure_big(
                f"fleet: {n} FD001 engines in one CSV",
                lambda d: engines_upload(api, makers["manufacturing"], n, deadline=d), items=n,
                timeout=args.timeout, counters=api.model_counters)
        if args.finance_300:
            n = args.finance_300_rows
            report["finance_300"] = measure_big(
                f"finance-300: a batch of {n} applications",
                lambda d: finance_batch(api, makers["finance"], n, deadline=d), items=n, timeout=args.timeout,
                counters=api.model_counters)
        phases = [p for r in report["apps"].values() for k, p in r.items()
                  if k in ("warmup", "single", "batch")]
        phases += [report[k] for k in ("fleet", "finance_300") if k in report]
        if any("error" in p for p in phases):
            status = 1
    finally:
        stack.stop_all()
        report["finished_at"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        if args.keep:
            report["scratch"] = str(var)
            print(f"scratch folder kept: {var}", flush=True)
        else:
            shutil.rmtree(var, ignore_errors=True)
        if report["apps"] or "fleet" in report or "finance_300" in report:
            print("\nsummary (items/min; ratio = batch/single; 'no LLM' = items without a model answer)")
            for line in summary_lines(report):
                print(line)
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        args.json_out.write_text(json.dumps(report, indent=2) + "\n")
        print(f"written: {args.json_out}", flush=True)
    return status


if __name__ == "__main__":
    raise SystemExit(main())
