"""Manufacturing benchmark: ingestion rate, predictions per minute through the full stack, and the
engine-grouped cross-validation figures on C-MAPSS FD001.

1. Ingestion, in process: a generated long-form CSV of ``--readings`` readings (default one million:
   100 machines × 10 sensors × 1,000 minutes) read by :func:`apps.manufacturing.ingest.ingest_path`
   (streamed parsing, validation, ordering, resampling check, missing values and outliers), readings
   per second (``benchmarks/manufacturing_cv.py``).
2. The full stack, started in a scratch folder with ``benchmarks/stack.py`` (SQLite database, a
   Redis of its own, media): the Django web server, the model service with the embedded model
   (response cache off) and a Celery worker. The default model is trained with
   ``manage.py train_failure_model`` on train_FD001 and activated. Then, over REST
   (``POST /api/v1/manufacturing/uploads/``):

   a. the one-million-reading CSV uploaded with ``LLM_ENABLED=false``: seconds from the POST until the
      upload is parsed and every machine's series stored (readings per second through the stack),
      and until every machine is scored (these machines have no labels and other sensors than the
      model, so they get the anomaly-only fallback);
   b. ``--engines`` FD001 engines, each cut at a random cycle, as a C-MAPSS file: predictions per
      minute from the POST until every machine has its prediction, with ``LLM_ENABLED=false``
      (calibrated models only) and ``LLM_ENABLED=true`` (plus the language model's constrained
      explanation, max_tokens 200).
3. Engine-grouped 5-fold cross-validation on train_FD001 (GroupKFold by engine, seed 0): RUL RMSE
   against the true RUL capped at 125 and ROC AUC for failure within 30 cycles, on every cycle and on
   the last cycle of randomly truncated series (``failure_model.cross_validate``).

Usage: ``.venv/bin/python benchmarks/manufacturing_bench.py [--readings 1000000] [--engines 20]
[--concurrency 2] [--skip-cv] [--skip-stack] [--skip-llm] [--keep] [--json]``
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
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for p in (ROOT, ROOT / "platform", ROOT / "benchmarks"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))
from stack import Stack  # noqa: E402

QUEUES = "default,manufacturing"


def cmapss_dir() -> Path:
    return Path(os.environ.get("CMAPSS_DIR", ROOT.parent / "shared" / "data" / "cmapss"))


class ManufacturingStack(Stack):
    """The shared stack with the manufacturing specifics: C-MAPSS data, 200 MB uploads, one BLAS
    thread per process, the FD001 model, the manufacturing queue. Scratch folder removed afterwards
    unless --keep."""

    def __init__(self, var: Path, *, concurrency: int):
        super().__init__(var, label="mfgbench",
                         extra_env={"JOB_SWEEP_INTERVAL": "30", "CACHE_KEY_PREFIX": "mfgbench",
                                    "CMAPSS_DIR": str(cmapss_dir()),
                                    "UPLOAD_MAX_BYTES": str(200 * 1024 * 1024), "OMP_NUM_THREADS": "1"})
        self.concurrency = concurrency

    def setup(self) -> dict:
        self.prepare(roles="manufacturing")
        started = time.monotonic()
        out = self.manage("train_failure_model", "--data", str(cmapss_dir() / "train_FD001.txt"), "--format",
                          "cmapss", "--horizon", "30", "--name", "FD001 bench", "--activate")
        train_s = time.monotonic() - started
        self.start_web("runserver", wait=False)
        self.start_model(wait=False)
        self.wait_web()
        self.wait_model()
        lines = [ln for ln in out.splitlines() if ln.startswith(("stored", "metrics"))]
        return {"train_command": lines, "train_command_seconds": round(train_s, 1)}

    def start_manufacturing_worker(self, *, llm: bool) -> None:
        self.start_worker(queues=QUEUES, concurrency=self.concurrency, env={"LLM_ENABLED": str(llm).lower()})


def truncated_engines_file(engines: int, *, seed: int = 0) -> tuple[bytes, dict[str, int]]:
    """``engines`` FD001 engines (the last ones of the file), each cut at a random cycle, C-MAPSS format."""
    import numpy as np

    from apps.manufacturing import cmapss

    frame = cmapss.load_cmapss("train_FD001.txt", directory=cmapss_dir())
    rng = np.random.default_rng(seed)
    units = sorted(frame["machine_id"].astype(int).unique())[-engines:]
    lines, true_rul = [], {}
    for unit in units:
        g = frame[frame["machine_id"] == str(unit)].sort_values("cycle")
        cut = int(rng.integers(31, len(g) + 1))
        true_rul[str(unit)] = len(g) - cut
        for row in g.head(cut)[["cycle", *cmapss.SETTING_COLUMNS, *cmapss.SENSOR_COLUMNS]].to_numpy():
            lines.append(f"{unit} {int(row[0])} " + " ".join(f"{v:.4f}" for v in row[1:]))
    return ("\n".join(lines) + "\n").encode(), true_rul


def upload_and_wait(stack: ManufacturingStack, *, name: str, data: bytes, llm: bool, timeout: float) -> dict:
    """POST one file, poll until parsed and until done; times and the results table."""
    import httpx

    stack.start_manufacturing_worker(llm=llm)
    api = httpx.Client(base_url=f"http://127.0.0.1:{stack.web_port}", timeout=300,
                       headers={"Authorization": f"Bearer {stack.token}"})
    started = time.monotonic()
    response = api.post("/api/v1/manufacturing/uploads/", files={"file": (name, data, "text/csv")})
    if response.status_code != 202:
        raise RuntimeError(f"upload refused: {response.status_code} {response.text[:300]}")
    upload_s = time.monotonic() - started
    batch = response.json()
    parsed_s = None
    body: dict = {}
    deadline = started + timeout
    while time.monotonic() < deadline:
        body = api.get(batch["url"]).json()
        if parsed_s is None and body["status"] not in ("queued", "parsing"):
            parsed_s = time.monotonic() - started
        if body["status"] in ("done", "failed"):
            break
        time.sleep(0.5)
    else:
        stack.stop("worker")
        raise RuntimeError(f"upload not finished after {timeout:.0f}s: {body.get('progress')}")
    seconds = time.monotonic() - started
    table = list(csv.DictReader(io.StringIO(api.get(batch["results_url"]).content.decode("utf-8-sig"))))
    stack.stop("worker")
    statuses: dict[str, int] = {}
    for row in table:
        statuses[row["status"]] = statuses.get(row["status"], 0) + 1
    return {"llm": llm, "bytes": len(data), "machines": len(table), "statuses": statuses,
            "post_seconds": round(upload_s, 2), "parsed_seconds": round(parsed_s or seconds, 2),
            "seconds": round(seconds, 1), "predictions_per_minute": round(60 * len(table) / seconds, 1),
            "ingest": body.get("ingest", {}), "table": table}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readings", type=int, default=1_000_000)
    parser.add_argument("--engines", type=int, default=20,
                        help="FD001 engines in the predictions-per-minute runs")
    parser.add_argument("--concurrency", type=int, default=2, help="Celery worker processes")
    parser.add_argument("--timeout", type=float, default=3600)
    parser.add_argument("--skip-cv", action="store_true")
    parser.add_argument("--skip-stack", action="store_true")
    parser.add_argument("--skip-llm", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder (logs, database)")
    parser.add_argument("--json", action="store_true", help="print only the JSON report")
    args = parser.parse_args(argv)
    say = (lambda *a: None) if args.json else (lambda *a: print(*a, flush=True))
    os.environ.setdefault("CMAPSS_DIR", str(cmapss_dir()))
    from threadpoolctl import threadpool_limits

    from benchmarks.manufacturing_cv import cv_figures, ingestion_rate, make_long_csv

    report: dict = {"cpu_count": os.cpu_count()}
    say(f"ingestion: a {args.readings:,}-reading long-form CSV through ingest_path ...")
    report["ingestion"] = ingestion_rate(readings=args.readings)
    r = report["ingestion"]
    say(f"  {r['readings']:,} readings ({r['file_bytes'] / 1e6:.1f} MB, {r['machines']} machines) "
        f"in {r['seconds']} s: {r['readings_per_s']:,} readings/s")

    if not args.skip_stack:
        var = Path(os.environ.get("MANUFACTURING_BENCH_DIR",
                                  ROOT / "var" / f"bench-manufacturing-{os.getpid()}"))
        stack = ManufacturingStack(var, concurrency=args.concurrency)
        try:
            say(f"starting the stack in {var} (web, model service, worker -c {args.concurrency}) ...")
            report["setup"] = stack.setup()
            say(f"  trained in {report['setup']['train_command_seconds']} s: "
                f"{report['setup']['train_command']}")

            fd, tmp = tempfile.mkstemp(suffix=".csv", prefix="mfg_bench_")
            os.close(fd)
            try:
                make_long_csv(tmp, readings=args.readings)
                big = Path(tmp).read_bytes()
            finally:
                os.unlink(tmp)
            say(f"the {args.readings:,}-reading CSV over REST (LLM off) ...")
            run = upload_and_wait(stack, name="million.csv", data=big, llm=False, timeout=args.timeout)
            readings = run["ingest"].get("readings") or args.readings
            run["readings_per_s_to_stored"] = round(readings / run["parsed_seconds"])
            run.pop("table")
            report["stack_ingestion"] = run
            say(f"  parsed and stored in {run['parsed_seconds']} s "
                f"({run['readings_per_s_to_stored']:,} readings/s "
                f"through upload, queue, worker and database); all {run['machines']} machines scored in "
                f"{run['seconds']} s {run['statuses']}")

            data, true_rul = truncated_engines_file(args.engines)
            for llm in ([False] if args.skip_llm else [False, True]):
                key = "predictions_with_llm" if llm else "predictions_classical_only"
                say(f"{args.engines} truncated FD001 engines over REST, LLM_ENABLED={str(llm).lower()} ...")
                run = upload_and_wait(stack, name="fd001_truncated.txt", data=data, llm=llm,
                                      timeout=args.timeout)
                table = run.pop("table")
                errs = [abs(float(t["rul_estimate"]) - min(true_rul[t["machine_id"]], 125)) for t in table
                        if t["rul_estimate"]]
                run["rul_mae_vs_truth"] = round(statistics.mean(errs), 1) if errs else None
                if llm:
                    answers = [t for t in table if t["llm_status"] == "ok"]
                    run["llm_answers"] = len(answers)
                    run["llm_disagreements"] = sum(1 for t in answers if t["disagreement"] == "true")
                report[key] = run
                say(f"  {run['machines']} predictions in {run['seconds']} s: "
                    f"{run['predictions_per_minute']} per minute "
                    f"{run['statuses']}" + (f"; {run.get('llm_answers')} LLM answers, "
                                            f"{run.get('llm_disagreements')} disagreements" if llm else ""))
        finally:
            stack.stop_all()
            if not args.keep:
                shutil.rmtree(var, ignore_errors=True)

    if not args.skip_cv:
        say("engine-grouped 5-fold cross-validation on train_FD001 (seed 0) ...")
        with threadpool_limits(limits=1):
            cv = cv_figures(n_splits=5, seed=0)
        report["cross_validation"] = {k: v for k, v in cv.items() if k != "folds"}
        report["cross_validation"]["folds"] = cv.get("folds")
        say(f"  RUL RMSE (true RUL capped at 125): all cycles {cv['rmse_all_cycles']}, truncated last cycle "
            f"{cv['rmse_truncated_last_cycle']}, official-like {cv['rmse_official_like_last_cycle']} "
            f"(target ≤ 15)")
        say(f"  ROC AUC failure within 30 cycles: all cycles {cv['auc_all_cycles']}, truncated last cycle "
            f"{cv['auc_truncated_last_cycle']} (target ≥ 0.97); Brier {cv['brier_all_cycles']}")
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        say(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
