"""Test fixtures that start real parts: Redis, the model service with the embedded model, Celery
workers in their own processes, the live web server. Feature tests use these, never fakes.

Environment knobs: ``TEST_MODEL_SERVICE_URL`` uses an already running model service instead of
starting one; ``TEST_WORKER_CONCURRENCY`` (default 2).
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT / "platform"))

# The environment (test Redis database, var/test, ...) is set by the plugin config.pytest_env,
# loaded before pytest-django reads the settings.
TEST_MODEL_KEY = "test-model-key"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(predicate, *, timeout: float = 60.0, interval: float = 0.2, message: str = "condition"):
    """Poll ``predicate`` until it returns a truthy value; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {message} (last value: {last!r})")


def _python() -> str:
    return sys.executable


# --- the model service ---------------------------------------------------------------------------
class ModelServiceProcess:
    def __init__(self):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self.log_path = Path(os.environ["VAR_DIR"]) / f"model_service_{self.port}.log"
        self.proc: subprocess.Popen | None = None

    def start(self, extra_args: list[str] | None = None) -> None:
        import httpx

        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ, MODEL_SERVICE_API_KEYS=TEST_MODEL_KEY)
        self.proc = subprocess.Popen(
            [_python(), "-m", "model_service", "--host", "127.0.0.1", "--port", str(self.port),
             *(extra_args or [])],
            cwd=ROOT, env=env, stdout=self.log_path.open("ab"), stderr=subprocess.STDOUT,
        )

        def ready():
            if self.proc.poll() is not None:
                raise AssertionError(f"model service exited with {self.proc.returncode}; see {self.log_path}")
            try:
                return httpx.get(f"http://127.0.0.1:{self.port}/health", timeout=1,
                                 headers={"Authorization": f"Bearer {TEST_MODEL_KEY}"}).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(ready, timeout=180, interval=0.5, message="the model service to answer /health")

    def stop(self, sig=signal.SIGTERM) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture(scope="session")
def model_service():
    """The real model service with the embedded SmolLM2 model, started once per session."""
    if os.environ.get("TEST_MODEL_SERVICE_URL"):
        yield type("External", (), {"url": os.environ["TEST_MODEL_SERVICE_URL"].rstrip("/")})()
        return
    service = ModelServiceProcess()
    service.start()
    yield service
    service.stop()


@pytest.fixture
def model_settings(settings, model_service):
    """Point this test process's model client at the session's model service."""
    from core import model_client

    settings.MODEL_SERVICE_URL = model_service.url
    settings.MODEL_SERVICE_API_KEY = TEST_MODEL_KEY if not os.environ.get("TEST_MODEL_SERVICE_URL") else \
        os.environ.get("MODEL_SERVICE_API_KEY", "")
    model_client._clients.clear()
    yield settings
    model_client._clients.clear()


# --- Celery workers -----------------------------------------------------------------------------
CPU_QUEUES = "default,finance,medical,manufacturing,maintenance"
ALL_QUEUES = CPU_QUEUES + ",llm"
#: Threads of the test language-model pool (queue ``llm``): jobs handed on after their CPU part.
TEST_LLM_WIDTH = 8


class WorkerProcess:
    """A real ``celery worker`` in its own process, against the test database and Redis."""

    def __init__(self, *, queues: str = ALL_QUEUES, concurrency: int | None = None, env: dict | None = None,
                 name: str = "w", pool: str = "prefork"):
        self.queues = queues
        self.pool = pool
        self.concurrency = concurrency or int(os.environ.get("TEST_WORKER_CONCURRENCY", "2"))
        self.extra_env = env or {}
        self.name = f"{name}{free_port()}"
        self.log_path = Path(os.environ["VAR_DIR"]) / f"worker_{self.name}.log"
        self.proc: subprocess.Popen | None = None

    def start(self, *, wait: bool = True) -> WorkerProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ, **_test_db_env(), **self.extra_env)
        self.proc = subprocess.Popen(
            [_python(), "-m", "celery", "-A", "config.celery_app", "worker", "-Q", self.queues,
             "-c", str(self.concurrency), "--pool", self.pool, "-n", f"{self.name}@%h", "-l", "info",
             "--without-gossip", "--without-mingle", "--without-heartbeat"],
            cwd=ROOT, env=env, stdout=self.log_path.open("ab"), stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self) -> WorkerProcess:
        wait_for(lambda: b"ready." in self.log_path.read_bytes() or self._dead(), timeout=90,
                 message=f"worker {self.name} to be ready")
        if self.proc.poll() is not None:
            raise AssertionError(f"worker exited: {self.log_path.read_text()[-2000:]}")
        return self

    def _dead(self) -> bool:
        return self.proc is not None and self.proc.poll() is not None

    def kill(self) -> None:
        """SIGKILL the whole worker (main process and its pool children), as a crash would."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def _test_db_env() -> dict:
    """DATABASE_URL of the test database pytest-django created, for processes we start."""
    from django.db import connection

    s = connection.settings_dict
    if s["ENGINE"].endswith("sqlite3"):
        return {"DATABASE_URL": f"sqlite:///{Path(s['NAME']).resolve()}"}
    auth = s["USER"] + (f":{s['PASSWORD']}" if s["PASSWORD"] else "")
    return {"DATABASE_URL": f"postgres://{auth}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"}


_shared: dict[str, WorkerProcess] = {}


def _model_env(model_service) -> dict:
    if os.environ.get("TEST_MODEL_SERVICE_URL"):
        return {"MODEL_SERVICE_URL": model_service.url}
    return {"MODEL_SERVICE_URL": model_service.url, "MODEL_SERVICE_API_KEY": TEST_MODEL_KEY}


@pytest.fixture
def celery_worker(transactional_db, model_service, model_settings):
    """Real workers, shared by the tests of a session (restarted if a test stopped them), as in production:
    a prefork worker on the CPU queues and the language-model pool (threads) on queue ``llm``."""
    llm = _shared.get("llm")
    if llm is None or llm._dead():
        llm = WorkerProcess(queues="llm", pool="threads", concurrency=TEST_LLM_WIDTH,
                            env=_model_env(model_service), name="llm").start(wait=False)
        _shared["llm"] = llm
    worker = _shared.get("main")
    if worker is None or worker._dead():
        worker = WorkerProcess(queues=CPU_QUEUES, env=_model_env(model_service), name="main").start()
        _shared["main"] = worker
    llm.wait_ready()
    yield worker


@pytest.fixture
def stop_shared_worker():
    """For tests that need to own the queues alone (fault tests)."""
    for name in ("main", "llm"):
        worker = _shared.pop(name, None)
        if worker is not None:
            worker.stop()


@pytest.fixture
def worker_factory(transactional_db, stop_shared_worker):
    started: list[WorkerProcess] = []

    def make(**kwargs) -> WorkerProcess:
        worker = WorkerProcess(**kwargs)
        started.append(worker)
        return worker

    yield make
    for worker in started:
        worker.stop()


def pytest_sessionfinish(session, exitstatus):
    for worker in list(_shared.values()):
        worker.stop()
    _shared.clear()


# --- users ---------------------------------------------------------------------------------------
@pytest.fixture
def make_user(db):
    from django.contrib.auth.models import Group, User

    from core.roles import roles_ensure

    def make(username: str = "analyst", *roles: str, password: str = "pw-Test-12345") -> User:
        roles_ensure()
        user = User.objects.create_user(username=username, password=password)
        for role in roles:
            user.groups.add(Group.objects.get(name=role))
        return user

    return make


@pytest.fixture
def api_client_for():
    """An authenticated DRF client: ``api_client_for(user)`` with a real bearer token."""
    from rest_framework.test import APIClient

    from core.services import api_token_create

    def make(user):
        _token, secret = api_token_create(user=user, name="test")
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
        return client

    return make


@pytest.fixture(autouse=True)
def _default_language():
    """Every test starts in the default language: a request in Chinese (LocaleMiddleware activates it for
    the thread and never deactivates it) must not leak into the next test's messages."""
    from django.conf import settings
    from django.utils import translation

    translation.activate(settings.LANGUAGE_CODE)
    yield
    translation.activate(settings.LANGUAGE_CODE)
