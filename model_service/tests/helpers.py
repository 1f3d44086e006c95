"""Helpers for the model-service tests: start/stop a real server process, request bodies, metrics."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
API_KEY = "test-key-" + uuid.uuid4().hex[:8]
ENV_KEY = "env-key-" + uuid.uuid4().hex[:8]
MAX_BATCH = 8
MAX_QUEUE = 6


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    """A running model service."""

    url: str
    proc: subprocess.Popen
    log_path: Path

    def log(self) -> str:
        """The server's output so far."""
        return self.log_path.read_text(errors="replace")


def start_server(tmp: Path, extra: list[str] | None = None, env_extra: dict[str, str] | None = None,
                 timeout: float = 180.0) -> Server:
    """Start ``python -m model_service`` on a free port and wait until /health answers."""
    port = free_port()
    keys = tmp / "keys.txt"
    keys.write_text(f"# test keys\n{API_KEY}\n\n")
    log_path = tmp / f"server-{port}.log"
    env = {**os.environ, "MODEL_SERVICE_API_KEYS": ENV_KEY, "PYTHONUNBUFFERED": "1"}
    env.update(env_extra or {})
    cmd = [sys.executable, "-m", "model_service", "--host", "127.0.0.1", "--port", str(port),
           "--max-batch-size", str(MAX_BATCH), "--max-queue", str(MAX_QUEUE), "--api-keys-file", str(keys),
           "--chat-template", str(HERE / "think_template.jinja"), "--cache-ttl", "300",
           "--cache-prefix", f"model_service:test:{uuid.uuid4().hex[:8]}:",
           "--served-model-name", "SmolLM2-135M-Instruct", "--served-model-name", "deepseek-r1",
           *(extra or [])]
    log_file = open(log_path, "w")  # noqa: SIM115 - closed with the process
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log_file, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"model service exited with {proc.returncode}:\n"
                               f"{log_path.read_text()[-3000:]}")
        try:
            if httpx.get(url + "/health", timeout=2).status_code == 200:
                return Server(url=url, proc=proc, log_path=log_path)
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    proc.kill()
    raise RuntimeError(f"model service did not become healthy:\n{log_path.read_text()[-3000:]}")


def stop_server(server: Server) -> None:
    """Terminate the process (kill if it does not exit)."""
    server.proc.terminate()
    try:
        server.proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        server.proc.kill()
        server.proc.wait(timeout=5)


def chat_body(content: str, **kw) -> dict:
    """A small chat request."""
    body = {"model": "SmolLM2-135M-Instruct", "messages": [{"role": "user", "content": content}],
            "max_tokens": 8, "temperature": 0}
    body.update(kw)
    return body


def metric_value(text: str, name: str) -> float:
    """Sum of a metric's samples in Prometheus text (0 if absent)."""
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            total += float(line.rsplit(" ", 1)[1])
    return total


def post_many(server: Server, path: str, bodies: list[dict],
              headers: dict | None = None) -> list[httpx.Response]:
    """POST several bodies at once (concurrently) and return the responses in order."""
    hdrs = {"Authorization": f"Bearer {API_KEY}", **(headers or {})}

    async def go() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=server.url, headers=hdrs, timeout=180) as c:
            return list(await asyncio.gather(*(c.post(path, json=b) for b in bodies)))

    return asyncio.run(go())
