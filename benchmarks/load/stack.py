"""Start a throw-away suite on loopback for the load benchmarks: a Redis of its own, migrate, a web
server (gunicorn), a Celery worker. Every process is stopped (its whole process group) on exit."""
from __future__ import annotations

import atexit
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "platform"))
PY = sys.executable


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(predicate, timeout: float, what: str, interval: float = 0.3):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise SystemExit(f"timed out after {timeout:.0f}s waiting for {what}")


class Stack:
    def __init__(self, run_dir: Path, database_url: str | None = None, extra_env: dict | None = None):
        self.run_dir = run_dir
        run_dir.mkdir(parents=True, exist_ok=True)
        self.procs: dict[str, subprocess.Popen] = {}
        self.redis_port = free_port()
        self.env = dict(
            os.environ,
            VAR_DIR=str(run_dir),
            DATABASE_URL=database_url or f"sqlite:///{run_dir / 'db.sqlite3'}",
            REDIS_URL=f"redis://127.0.0.1:{self.redis_port}/0",
            DJANGO_ENV="development",
            DEBUG="false",
            LOG_LEVEL="WARNING",
            PYTHONUNBUFFERED="1",
            HF_HUB_OFFLINE="1",
            **(extra_env or {}),
        )
        self.env["PATH"] = f"{Path(PY).parent}{os.pathsep}{self.env.get('PATH', '')}"
        atexit.register(self.stop)

    def _spawn(self, name: str, args: list[str]) -> subprocess.Popen:
        log = (self.run_dir / f"{name}.log").open("ab")
        proc = subprocess.Popen(args, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
        self.procs[name] = proc
        return proc

    def start_redis(self) -> None:
        from config.embedded_redis import redis_answers, redis_server_binary

        self._spawn("redis", [str(redis_server_binary()), "--bind", "127.0.0.1", "--port", str(self.redis_port),
                              "--save", "", "--appendonly", "no", "--dir", str(self.run_dir), "--daemonize", "no"])
        wait_until(lambda: redis_answers(port=self.redis_port), 15, "redis")

    def manage(self, *args: str) -> str:
        out = subprocess.run([PY, "manage.py", *args], cwd=ROOT, env=self.env, capture_output=True, text=True,
                             timeout=600)
        if out.returncode:
            raise SystemExit(f"manage.py {' '.join(args)} failed:\n{out.stdout[-2000:]}\n{out.stderr[-3000:]}")
        return out.stdout

    def start_web(self, *, workers: int = 2, threads: int = 8) -> str:
        import httpx

        port = free_port()
        self._spawn("web", [PY, "-m", "gunicorn", "config.wsgi:application", "--bind", f"127.0.0.1:{port}",
                            "--workers", str(workers), "--threads", str(threads), "--timeout", "120",
                            "--backlog", "256", "--log-level", "warning"])
        base = f"http://127.0.0.1:{port}"

        def up():
            self._check_alive()
            try:
                return httpx.get(f"{base}/healthz", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(up, 90, "the web server")
        return base

    def start_worker(self, concurrency: int = 2) -> None:
        self._spawn("worker", [PY, "-m", "celery", "-A", "config.celery_app", "worker", "-Q",
                               "default,finance,medical,manufacturing,maintenance", "-c", str(concurrency),
                               "-n", f"bench{self.redis_port}@%h", "-l", "info", "--without-gossip",
                               "--without-mingle", "--without-heartbeat"])
        log = self.run_dir / "worker.log"
        wait_until(lambda: self._check_alive() or b"ready." in log.read_bytes(), 90, "the worker")

    def _check_alive(self) -> None:
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                raise SystemExit(f"{name} exited with {proc.returncode}; see {self.run_dir / (name + '.log')}")

    def alive(self) -> dict[str, bool]:
        return {name: proc.poll() is None for name, proc in self.procs.items()}

    def stop(self) -> None:
        for proc in reversed(list(self.procs.values())):
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    continue
        deadline = time.monotonic() + 20
        for proc in self.procs.values():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        self.procs.clear()


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]
