#!/usr/bin/env python
"""Start the suite's processes from the Procfile, print the URL when ready, stop all on Ctrl-C.

    python scripts/run_suite.py                 # everything (redis only when none answers)
    python scripts/run_suite.py web worker      # a subset, by Procfile name

Each process's output is prefixed with its name. If one exits, the others are stopped. The workers
(``worker``, ``llm``) start once the model service started here answers, with one line saying so, rather
than failing their first jobs' model calls while the model is prepared.
"""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "platform"))

from config.embedded_redis import redis_answers  # noqa: E402

COLOURS = ["\033[36m", "\033[33m", "\033[35m", "\033[32m", "\033[34m"]
RESET = "\033[0m"
#: Procfile entries that start only once the model service (when started here) answers /health.
WAIT_FOR_MODEL = ("worker", "llm")
MODEL_READY_TIMEOUT = 600.0


def read_procfile() -> dict[str, str]:
    entries = {}
    for line in (ROOT / "Procfile").read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9_-]+):\s*(.+)$", line.strip())
        if match:
            entries[match[1]] = match[2]
    return entries


def pump(name: str, colour: str, stream) -> None:
    for raw in iter(stream.readline, b""):
        sys.stdout.write(f"{colour}{name:>7} |{RESET} {raw.decode(errors='replace')}")
        sys.stdout.flush()


def wait_http(url: str, timeout: float, alive=lambda: True) -> bool:
    """True once ``url`` answers 200; False after ``timeout`` seconds or when ``alive()`` turns false."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and alive():
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return True
        except Exception:
            time.sleep(0.5)
    return False


def main(argv: list[str]) -> int:
    procfile = read_procfile()
    names = argv or list(procfile)
    unknown = [n for n in names if n not in procfile]
    if unknown:
        print(f"unknown process name(s): {', '.join(unknown)}; the Procfile has: {', '.join(procfile)}")
        return 2
    redis_url = os.environ.get("REDIS_URL")
    if "redis" in names and (redis_url or redis_answers()):
        print("a Redis is already configured or answering on 127.0.0.1:6379: not starting the embedded one")
        names.remove("redis")
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.setdefault("PYTHONUNBUFFERED", "1")
    env.setdefault("HF_HUB_OFFLINE", "1")
    web_port = env.get("WEB_PORT", "8000")
    model_port = env.get("MODEL_SERVICE_PORT", "8080")
    procs: dict[str, subprocess.Popen] = {}
    # Redis first: the others need it at start-up. The workers wait for the model service (started here),
    # so that jobs queued at setup do not fail their first model calls and retry while it loads.
    order = sorted(names, key=lambda n: 0 if n == "redis" else 1)
    deferred = [n for n in order if n in WAIT_FOR_MODEL] if "model" in order else []

    def start(name: str) -> None:
        command = os.path.expandvars(procfile[name])
        proc = subprocess.Popen(command, shell=True, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, start_new_session=True)
        procs[name] = proc
        colour = COLOURS[order.index(name) % len(COLOURS)]
        threading.Thread(target=pump, args=(name, colour, proc.stdout), daemon=True).start()

    for name in order:
        if name in deferred:
            continue
        start(name)
        if name == "redis":
            deadline = time.monotonic() + 15
            while not redis_answers() and time.monotonic() < deadline:
                time.sleep(0.2)
    if deferred:
        print(f"{' and '.join(deferred)} will start once the model service is ready "
              f"(http://127.0.0.1:{model_port}/health; the first start prepares the model)", flush=True)

    stopping = threading.Event()

    def stop_all(*_args) -> None:
        if stopping.is_set():
            return
        stopping.set()
        print("\nstopping…")
        for proc in procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        for proc in procs.values():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)

    signal.signal(signal.SIGINT, stop_all)
    signal.signal(signal.SIGTERM, stop_all)

    model_settled = threading.Event()  # the model service answered, or gave up

    def announce() -> None:
        if "model" in procs:
            began = time.monotonic()
            if wait_http(f"http://127.0.0.1:{model_port}/health", MODEL_READY_TIMEOUT,
                         alive=lambda: procs["model"].poll() is None):
                print(f"the model service is ready after {time.monotonic() - began:.0f} s", flush=True)
            else:
                print("the model service did not become ready; see its lines above", flush=True)
        model_settled.set()
        if "web" in procs and wait_http(f"http://127.0.0.1:{web_port}/healthz", 120):
            print(f"\n  The suite is ready: http://127.0.0.1:{web_port}/   (Ctrl-C stops everything)\n",
                  flush=True)

    threading.Thread(target=announce, daemon=True).start()
    while not stopping.is_set():
        if deferred and model_settled.is_set():
            for name in deferred:
                start(name)
            deferred = []
        for name, proc in procs.items():
            if proc.poll() is not None:
                print(f"{name} exited with status {proc.returncode}; stopping the others")
                stop_all()
                return proc.returncode or 1
        time.sleep(0.5)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
