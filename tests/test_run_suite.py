"""scripts/run_suite.py (``make run``): the workers start only once the model service answers, with one
line saying so, and the banner names the real web port. Real processes (tiny HTTP servers standing in for
the model service and the web server), a real SIGINT."""
from __future__ import annotations

import importlib.util
import os
import signal
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SERVER = ("import http.server, sys, time; time.sleep({delay}); open({ready!r}, 'w').write(str(time.time())); "
          "H = type('H', (http.server.BaseHTTPRequestHandler,), {{'do_GET': lambda s: (s.send_response(200), "
          "s.end_headers(), s.wfile.write(b'ok')), 'log_message': lambda *a: None}}); "
          "http.server.HTTPServer(('127.0.0.1', {port}), H).serve_forever()")


def _load():
    spec = importlib.util.spec_from_file_location("run_suite_under_test", ROOT / "scripts" / "run_suite.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_workers_wait_for_the_model_service_and_the_banner_has_the_real_port(tmp_path, monkeypatch, capfd):
    from conftest import free_port

    run_suite = _load()
    web_port, model_port = free_port(), free_port()
    model_ready, web_ready = tmp_path / "model_ready", tmp_path / "web_ready"
    worker_started = tmp_path / "worker_started"
    python = sys.executable
    procfile = {
        "model": f'{python} -c "{SERVER.format(delay=3, ready=str(model_ready), port=model_port)}"',
        "worker": f"{python} -c \"import time; open('{worker_started}', 'w').write(str(time.time())); "
                  "time.sleep(60)\"",
        "web": f'{python} -c "{SERVER.format(delay=0, ready=str(web_ready), port=web_port)}"',
    }
    monkeypatch.setattr(run_suite, "read_procfile", lambda: procfile)
    monkeypatch.setenv("WEB_PORT", str(web_port))
    monkeypatch.setenv("MODEL_SERVICE_PORT", str(model_port))

    def stop_when_started():
        deadline = time.monotonic() + 60
        while not worker_started.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(1.5)  # let the banner print
        os.kill(os.getpid(), signal.SIGINT)

    previous = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    threading.Thread(target=stop_when_started, daemon=True).start()
    try:
        assert run_suite.main(["model", "worker", "web"]) == 0
    finally:
        signal.signal(signal.SIGINT, previous[0])
        signal.signal(signal.SIGTERM, previous[1])
    out = capfd.readouterr().out

    assert worker_started.exists(), out
    # the worker started after the model service answered, not before
    assert float(worker_started.read_text()) >= float(model_ready.read_text()), out
    waiting = [line for line in out.splitlines() if "will start once the model service is ready" in line]
    assert len(waiting) == 1 and f"http://127.0.0.1:{model_port}/health" in waiting[0], out
    assert "the model service is ready after" in out
    assert f"The suite is ready: http://127.0.0.1:{web_port}/" in out
    assert "127.0.0.1:8000" not in out
