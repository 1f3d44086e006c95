"""Finance benchmark: cross-validated AUC of the scorecard, and applications per minute through the whole
stack with and without the language model.

1. Stratified 5-fold CV AUC of both scorecard algorithms on the shared German Credit file (seed 0), and
   the algorithm ``train_scorecard`` selects (``benchmarks/finance_cv.py``).
2. Throughput: the script starts its own stack in a scratch folder with ``benchmarks/stack.py``
   (SQLite database, a Redis of its own, media): the Django web server, the model service with the
   embedded model, and a Celery worker. It trains and activates the default scorecard with
   ``manage.py train_credit_model``, then
   uploads a CSV of ``--rows`` applications (the first rows of the shared file, fields only, no report)
   over REST (``POST /api/v1/finance/batches/``) and times from the POST until the batch is done
   (every row assessed). Run twice with a fresh worker each: ``LLM_ENABLED=false`` (scorecard only) and
   ``LLM_ENABLED=true`` (scorecard + LLM risk judgment with label probabilities) over ``--llm-rows``
   rows. Applications per minute = rows / minutes; the ratio of the two runs is printed.

Usage: ``.venv/bin/python benchmarks/finance_bench.py [--rows 300] [--llm-rows 300] [--concurrency 4]``
(``--skip-cv``, ``--skip-llm``, ``--keep`` keeps the scratch folder; ``--json`` prints JSON only).
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import os
import shutil
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for _path in (ROOT, ROOT / "benchmarks"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))
from stack import Stack  # noqa: E402

QUEUES = "default,finance"


def shared_csv() -> Path:
    return Path(os.environ.get("FINANCE_TRAIN_CSV",
                               ROOT.parent / "shared" / "data" / "finance" / "german_credit_train.csv"))


class FinanceStack(Stack):
    """The shared stack with the finance specifics: the training file, the default scorecard, the
    finance queue. Scratch folder removed afterwards unless --keep."""

    def __init__(self, var: Path, *, concurrency: int):
        super().__init__(var, database_url=os.environ.get("DATABASE_URL"), label="finbench",
                         extra_env={"JOB_SWEEP_INTERVAL": "30", "CACHE_KEY_PREFIX": "finbench",
                                    "FINANCE_TRAIN_CSV": str(shared_csv())})
        self.concurrency = concurrency

    def setup(self) -> dict:
        self.prepare(roles="finance")
        started = time.monotonic()
        trained = self.manage("train_credit_model", "--data", str(shared_csv()), "--activate").strip()
        train_s = time.monotonic() - started
        self.start_web("runserver", wait=False)
        self.start_model(wait=False)  # --no-cache: every application is a real generation
        self.wait_web()
        self.wait_model()
        return {"train_command_output": trained.splitlines()[0], "train_command_seconds": round(train_s, 1)}

    def start_finance_worker(self, *, llm: bool) -> None:
        self.start_worker(queues=QUEUES, concurrency=self.concurrency, env={"LLM_ENABLED": str(llm).lower()})


def applications_csv(rows: int, *, tag: str) -> bytes:
    """``rows`` applications (cycling through the shared file), fields only, with unique application ids."""
    with shared_csv().open(encoding="utf-8") as fh:
        source = list(csv.DictReader(fh))
    columns = ["application_id", *[c for c in source[0] if c != "creditability"]]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    for i in range(rows):
        writer.writerow({**source[i % len(source)], "application_id": f"{tag}-{i + 1:05d}"})
    return buf.getvalue().encode("utf-8")


def run_batch(stack: FinanceStack, *, rows: int, llm: bool, timeout: float) -> dict:
    """Upload one CSV over REST and wait for the batch to finish; throughput and per-job figures."""
    import httpx

    stack.start_finance_worker(llm=llm)
    api = httpx.Client(base_url=f"http://127.0.0.1:{stack.web_port}", timeout=120,
                       headers={"Authorization": f"Bearer {stack.token}"})
    data = applications_csv(rows, tag="LLM" if llm else "SC")
    started = time.monotonic()
    response = api.post("/api/v1/finance/batches/", files={"file": ("bench.csv", data, "text/csv")})
    if response.status_code != 202:
        raise RuntimeError(f"upload refused: {response.status_code} {response.text[:300]}")
    batch = response.json()
    deadline = started + timeout
    progress: dict = {}
    while time.monotonic() < deadline:
        progress = api.get(batch["url"]).json()["progress"]
        if progress["status"] in ("done", "failed"):
            break
        time.sleep(0.5)
    else:
        stack.stop("worker")
        raise RuntimeError(f"batch not finished after {timeout:.0f}s: {progress}")
    seconds = time.monotonic() - started
    table = list(csv.DictReader(io.StringIO(api.get(batch["results_url"]).content.decode("utf-8-sig"))))
    stack.stop("worker")
    statuses: dict[str, int] = {}
    for row in table:
        statuses[row["status"]] = statuses.get(row["status"], 0) + 1
    out = {
        "llm": llm, "rows": rows, "result_rows": len(table), "seconds": round(seconds, 1),
        "applications_per_minute": round(60 * rows / seconds, 1), "statuses": statuses,
        "concurrency": stack.concurrency,
    }
    if llm:
        levels = [r for r in table if r["llm_risk_level"]]
        out["llm_answers"] = len(levels)
        out["llm_agrees_with_scorecard"] = sum(1 for r in levels
                                               if r["llm_risk_level"] == r["scorecard_risk_level"])
        out["needs_review"] = sum(1 for r in table if r["needs_review"] == "true")
        details = [api.get(f"/api/v1/finance/assessments/{r['assessment_id']}/").json() for r in table[:40]]
        timings = [d["model"]["timings"].get("judgment_s") for d in details
                   if d["model"]["timings"].get("judgment_s")]
        if timings:
            out["judgment_latency_s"] = {"median": round(statistics.median(timings), 2),
                                         "max": round(max(timings), 2), "sampled": len(timings)}
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=300, help="applications in the scorecard-only run")
    parser.add_argument("--llm-rows", type=int, default=300, help="applications in the run with the LLM step")
    parser.add_argument("--concurrency", type=int, default=4, help="Celery worker processes (both runs)")
    parser.add_argument("--timeout", type=float, default=3600)
    parser.add_argument("--skip-cv", action="store_true")
    parser.add_argument("--skip-llm", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder (logs, database)")
    parser.add_argument("--json", action="store_true", help="print only the JSON report")
    args = parser.parse_args(argv)
    say = (lambda *a: None) if args.json else (lambda *a: print(*a, flush=True))
    report: dict = {"cpu_count": os.cpu_count()}

    if not args.skip_cv:
        from benchmarks.finance_cv import cv_report

        say("cross-validating the scorecard (stratified 5-fold, seed 0) ...")
        cv = cv_report(shared_csv(), seeds=(0,))
        report["cv"] = {"rows": cv["rows"], "selected_algorithm": cv["selected_algorithm"],
                        "cv_auc": cv["cv_auc"], "train_seconds": cv["train_seconds"],
                        "algorithms": {r["algorithm"]: {k: r[k] for k in ("auc_mean", "auc_std", "auc_pooled",
                                                                           "ks", "gini", "brier")}
                                       for r in cv["results"]}}
        for name, r in report["cv"]["algorithms"].items():
            say(f"  {name:<14} CV AUC {r['auc_mean']:.4f} ± {r['auc_std']:.4f}  "
                f"pooled AUC {r['auc_pooled']:.4f}  "
                f"KS {r['ks']:.4f}  Gini {r['gini']:.4f}  Brier {r['brier']:.4f}")
        say(f"  selected: {cv['selected_algorithm']} (CV AUC {cv['cv_auc']:.4f}; target ≥ 0.80)")

    var = Path(os.environ.get("FINANCE_BENCH_DIR", ROOT / "var" / f"bench-finance-{os.getpid()}"))
    stack = FinanceStack(var, concurrency=args.concurrency)
    try:
        say(f"starting the stack in {var} (web, model service, worker -c {args.concurrency}) ...")
        report["setup"] = stack.setup()
        say(f"  {report['setup']['train_command_output']}")
        say(f"scorecard only (LLM_ENABLED=false): {args.rows} applications over REST ...")
        report["scorecard_only"] = run_batch(stack, rows=args.rows, llm=False, timeout=args.timeout)
        r = report["scorecard_only"]
        say(f"  {r['rows']} rows in {r['seconds']} s: {r['applications_per_minute']} applications/min "
            f"{r['statuses']}")
        if not args.skip_llm:
            say(f"with the LLM judgment (LLM_ENABLED=true): {args.llm_rows} applications over REST ...")
            report["with_llm"] = run_batch(stack, rows=args.llm_rows, llm=True, timeout=args.timeout)
            r = report["with_llm"]
            say(f"  {r['rows']} rows in {r['seconds']} s: {r['applications_per_minute']} applications/min "
                f"{r['statuses']}; judgment latency {r.get('judgment_latency_s')}")
            ratio = (report["scorecard_only"]["applications_per_minute"]
                     / max(r["applications_per_minute"], 1e-9))
            report["ratio_scorecard_only_to_llm"] = round(ratio, 1)
            if r["rows"] < 300:
                report["with_llm_300_rows_estimate_minutes"] = round(300 / r["applications_per_minute"], 1)
            say(f"  the LLM step makes the pipeline {ratio:.1f}x slower"
                + (f"; 300 rows would take about {300 / r['applications_per_minute']:.1f} min at this rate"
                   if r["rows"] < 300 else ""))
    finally:
        stack.stop_all()
        if not args.keep:
            shutil.rmtree(var, ignore_errors=True)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        say(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
