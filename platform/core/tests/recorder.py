"""A recording HTTP proxy for live tests: put it in front of the real model service (a worker's
``MODEL_SERVICE_URL``) and it keeps every request it forwards with the response it got, so a test can
compare what was stored and shown with what the model actually answered."""
from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx


class ModelServiceRecorder:
    """``with ModelServiceRecorder(upstream) as proxy:`` … ``proxy.url``; ``proxy.exchanges`` holds
    ``(path, request body, status, response body)`` in the order the answers came back. With ``status``
    set it forwards nothing and answers that status itself (a misconfigured model service)."""

    def __init__(self, upstream: str = "", status: int | None = None):
        from conftest import free_port

        self.upstream = upstream.rstrip("/")
        if self.upstream.endswith("/v1"):
            self.upstream = self.upstream[:-3]
        self.exchanges: list[tuple[str, bytes, int, bytes]] = []
        self._lock = threading.Lock()
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def _forward(self, method: str):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if status is not None:
                    code, content = status, json.dumps({"error": {"message": "no such route"}}).encode()
                else:
                    headers = {k: v for k, v in self.headers.items()
                               if k.lower() in ("authorization", "content-type")}
                    reply = httpx.request(method, recorder.upstream + self.path, content=body,
                                          headers=headers, timeout=600)
                    code, content = reply.status_code, reply.content
                with recorder._lock:
                    recorder.exchanges.append((self.path, body, code, content))
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)

            def do_POST(self):  # noqa: N802
                self._forward("POST")

            def do_GET(self):  # noqa: N802
                self._forward("GET")

            def log_message(self, *args):
                pass

        self.port = free_port()
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def chats(self) -> list[tuple[dict, dict]]:
        """``(request, response)`` JSON of every chat completion that answered 200, in order."""
        with self._lock:
            return [(json.loads(req), json.loads(resp)) for path, req, status, resp in self.exchanges
                    if path.endswith("/chat/completions") and status == 200]

    def answer_for(self, *, schema: str, text: str) -> dict:
        """The last recorded answer to a request with ``schema`` whose prompt contains ``text``."""
        found = [(req, resp) for req, resp in self.chats()
                 if req.get("response_format", {}).get("json_schema", {}).get("name") == schema
                 and text in json.dumps(req["messages"], ensure_ascii=False)]
        assert found, f"no recorded {schema} answer for {text[:40]!r}"
        return found[-1][1]

    def __enter__(self) -> ModelServiceRecorder:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


def answer_content(response: dict) -> str:
    """The text of a chat completion's first choice."""
    return response["choices"][0]["message"]["content"]
