"""A throw-away suite on loopback for the benchmark scripts, in a scratch folder.

One :class:`Stack` per run: a Redis of its own on a free port (always private: a queue shared with
other people's workers would lose the benchmark's messages), ``manage.py`` commands against a scratch
database (SQLite in the scratch folder unless a database URL is given), a web server (gunicorn or
``runserver``), the model service and Celery workers. Every process runs in its own process group,
logs to ``<scratch>/<name>.log`` and is stopped (SIGTERM to the group, SIGKILL after a grace period)
by :meth:`Stack.stop_all`, which also runs at exit; Redis goes last.

App-specific parts (training commands, data files, queues, extra environment) stay in each script.
Scripts import this module by putting ``benchmarks/`` on ``sys.path`` (there is no package).
"""
from __future__ import annotations

import atexit
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT / "platform") not in sys.path:
    sys.path.insert(0, str(ROOT / "platform"))
PY = sys.executable
MODEL_KEY = "bench-model-key"


class StackError(RuntimeError):
    """A process of the benchmark stack did not start, exited, or a command failed."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(predicate: Callable[[], object], timeout: float, what: str, interval: float = 0.3):
    """Call ``predicate`` until it returns something true (returned) or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise StackError(f"timed out after {timeout:.0f}s waiting for {what}")


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


class Stack:
    """The processes of one benchmark run, in ``var`` (the caller decides whether to remove it).

    Ports are chosen up front so that the environment (``REDIS_URL``, ``MODEL_SERVICE_URL``) is
    complete before anything starts; nothing is started by the constructor.
    """

    def __init__(self, var: Path, *, database_url: str | None = None, extra_env: dict | None = None,
                 label: str = "bench", model_key: str = MODEL_KEY):
        self.var = Path(var)
        self.var.mkdir(parents=True, exist_ok=True)
        self.label = label
        self.model_key = model_key
        self.procs: dict[str, subprocess.Popen] = {}
        self.redis_port = free_port()
        self.web_port = free_port()
        self.model_port = free_port()
        self.token = ""
        self.env = dict(
            os.environ,
            VAR_DIR=str(self.var),
            DATABASE_URL=database_url or f"sqlite:///{self.var / 'bench.sqlite3'}",
            REDIS_URL=f"redis://127.0.0.1:{self.redis_port}/0",
            DJANGO_ENV="development",
            LOG_LEVEL="WARNING",
            PYTHONUNBUFFERED="1",
            HF_HUB_OFFLINE="1",
            TOKENIZERS_PARALLELISM="false",
            MODEL_SERVICE_API_KEYS=model_key,
            MODEL_SERVICE_API_KEY=model_key,
            MODEL_SERVICE_URL=f"http://127.0.0.1:{self.model_port}/v1",
            PYTHONPATH=str(ROOT / "platform"),
        )
        self.env["PATH"] = f"{Path(PY).parent}{os.pathsep}{os.environ.get('PATH', '')}"
        self.env.update({k: str(v) for k, v in (extra_env or {}).items()})
        atexit.register(self.stop_all)

    # --- processes -----------------------------------------------------------------------------
    def log_path(self, name: str) -> Path:
        return self.var / f"{name}.log"

    def start(self, name: str, cmd: list[str], env: dict | None = None) -> subprocess.Popen:
        """Start ``cmd`` as process ``name`` in a new process group, output appended to its log."""
        if name in self.procs and self.procs[name].poll() is None:
            raise StackError(f"{name} is already running")
        with self.log_path(name).open("ab") as log:
            proc = subprocess.Popen(cmd, cwd=ROOT, env=env or self.env, stdout=log, stderr=subprocess.STDOUT,
                                    start_new_session=True)
        self.procs[name] = proc
        return proc

    def stop(self, *names: str, grace: float = 30) -> None:
        """SIGTERM the process groups of ``names`` together, SIGKILL what is left after ``grace`` s."""
        procs = [p for p in (self.procs.pop(n, None) for n in names) if p is not None]
        for proc in procs:
            _signal_group(proc, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for proc in procs:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _signal_group(proc, signal.SIGKILL)
                proc.wait()
            _signal_group(proc, signal.SIGKILL)  # children the group leader left behind

    def stop_all(self) -> None:
        """Stop every process, the most recently started first, Redis last."""
        self.stop(*[n for n in reversed(list(self.procs)) if n != "redis"])
        self.stop("redis")

    def alive(self) -> dict[str, bool]:
        return {name: proc.poll() is None for name, proc in self.procs.items()}

    def check_alive(self) -> None:
        """Raise if a started process has exited (so waits fail fast instead of timing out)."""
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                raise StackError(f"{name} exited with {proc.returncode}; see {self.log_path(name)}")

    def wait_http(self, url: str, *, timeout: float = 240, headers: dict | None = None) -> None:
        """Until ``url`` answers with a status below 500; fails at once if a started process died."""
        import httpx

        def answers() -> bool:
            self.check_alive()
            try:
                return httpx.get(url, timeout=2, headers=headers).status_code < 500
            except httpx.HTTPError:
                return False

        wait_until(answers, timeout, url, interval=0.5)

    # --- commands ------------------------------------------------------------------------------
    def manage(self, *args: str, timeout: float | None = None) -> str:
        """``manage.py args`` against the stack's database; its stdout, or an error with both tails."""
        try:
            out = subprocess.run([PY, "manage.py", *args], cwd=ROOT, env=self.env, capture_output=True,
                                 text=True, timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            raise StackError(f"manage.py {' '.join(args)} did not finish within {timeout:.0f}s") from exc
        if out.returncode:
            raise StackError(f"manage.py {' '.join(args)} failed with {out.returncode}:\n"
                             f"--- stdout ---\n{out.stdout[-2000:]}\n--- stderr ---\n{out.stderr[-3000:]}")
        return out.stdout

    def create_user(self, username: str, roles: str) -> str:
        """An API user with ``roles``; its token (also kept as ``self.token``)."""
        self.token = self.manage("create_api_user", username, "--roles", roles).strip().splitlines()[-1]
        return self.token

    # --- services ------------------------------------------------------------------------------
    def start_redis(self) -> None:
        from config.embedded_redis import redis_answers, redis_server_binary

        self.start("redis", [str(redis_server_binary()), "--bind", "127.0.0.1",
                             "--port", str(self.redis_port), "--save", "", "--appendonly", "no",
                             "--dir", str(self.var), "--daemonize", "no"])

        def up() -> bool:
            self.check_alive()
            return redis_answers(port=self.redis_port)

        wait_until(up, 15, "the benchmark's Redis", interval=0.1)

    def prepare(self, *, roles: str, username: str = "bench") -> str:
        """Private Redis, ``migrate``, an API user with ``roles``; the user's token."""
        self.start_redis()
        self.manage("migrate", "--noinput")
        return self.create_user(username, roles)

    @property
    def web_url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    @property
    def model_url(self) -> str:
        return f"http://127.0.0.1:{self.model_port}"

    def start_web(self, server: str = "gunicorn", *, workers: int = 2, threads: int = 8,
                  wait: bool = True) -> str:
        """The Django app on ``web_port`` (gunicorn, or ``runserver --noreload``); its base URL."""
        bind = f"127.0.0.1:{self.web_port}"
        if server == "gunicorn":
            cmd = [PY, "-m", "gunicorn", "config.wsgi:application", "--bind", bind,
                   "--workers", str(workers), "--threads", str(threads), "--timeout", "120",
                   "--backlog", "256", "--log-level", "warning"]
        elif server == "runserver":
            cmd = [PY, "manage.py", "runserver", bind, "--noreload"]
        else:
            raise ValueError(f"unknown web server {server!r} (gunicorn or runserver)")
        self.start("web", cmd)
        if wait:
            self.wait_web()
        return self.web_url

    def wait_web(self, timeout: float = 240) -> None:
        self.wait_http(f"{self.web_url}/healthz", timeout=timeout)

    def start_model(self, extra_args: Iterable[str] = (), *, wait: bool = True) -> float:
        """The model service on ``model_port`` with the response cache off (every request generates);
        seconds until ``/health`` answered (0 when ``wait`` is false)."""
        started = time.monotonic()
        self.start("model", [PY, "-m", "model_service", "--host", "127.0.0.1", "--port", str(self.model_port),
                             "--no-cache", *extra_args])
        if not wait:
            return 0.0
        self.wait_model()
        return time.monotonic() - started

    def wait_model(self, timeout: float = 240) -> None:
        self.wait_http(f"{self.model_url}/health", timeout=timeout,
                       headers={"Authorization": f"Bearer {self.model_key}"})

    def start_worker(self, *, queues: str, concurrency: int = 2, env: dict | None = None,
                     name: str = "worker", timeout: float = 120, pool: str = "prefork") -> None:
        """A Celery worker consuming ``queues`` with ``pool`` (``prefork``, or ``threads`` for the
        language-model queue); a running worker of the same ``name`` is stopped first.
        Returns once the worker logged ``ready.`` (after what its log held before)."""
        self.stop(name)
        log = self.log_path(name)
        mark = log.stat().st_size if log.exists() else 0
        self.start(name, [PY, "-m", "celery", "-A", "config.celery_app", "worker", "-Q", queues,
                          "-c", str(concurrency), "--pool", pool, "-n", f"{self.label}{free_port()}@%h",
                          "-l", "info", "--without-gossip", "--without-mingle", "--without-heartbeat"],
                   env=dict(self.env, **{k: str(v) for k, v in (env or {}).items()}))

        def ready() -> bool:
            self.check_alive()
            return b"ready." in log.read_bytes()[mark:]

        wait_until(ready, timeout, f"the Celery worker {name!r} (see {log})")


def _signal_group(proc: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass
