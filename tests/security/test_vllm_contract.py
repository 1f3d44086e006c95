"""Contract test: the platform's ModelClient against vLLM's OpenAI-compatible response shapes.

A scripted HTTP server on 127.0.0.1 answers with bodies shaped exactly as vLLM (0.8+) sends them:
``reasoning_content`` / ``reasoning`` from a reasoning parser, ``logprobs.content`` with
``top_logprobs``, ``tool_calls``, ``usage``, and ``/health`` as an empty 200. A scripted server is the
point here: it pins the wire format our client must accept.
"""
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from core.model_client import ModelClient, PermanentModelError, model_service_health

JUDGMENT = {"risk_level": 2, "rationale": "moderate debt", "reason_codes": ["R1"]}


def _logprob(token, lp, alts):
    return {"token": token, "logprob": lp, "bytes": list(token.encode()),
            "top_logprobs": [{"token": t, "logprob": v, "bytes": list(t.encode())} for t, v in alts]}


def vllm_json_answer(reasoning_key: str) -> dict:
    content = json.dumps(JUDGMENT)
    return {
        "id": "chatcmpl-8f1c2a9e3b7d4c52a1e0f6b9d8c7a6e5",
        "object": "chat.completion",
        "created": 1764340000,
        "model": "Qwen/Qwen3-8B",
        "choices": [{
            "index": 0,
            "message": {
                "role": "assistant",
                reasoning_key: "The applicant has moderate debt; level 2.",
                "content": content,
                "tool_calls": [],
            },
            "logprobs": {"content": [
                _logprob('{"', -0.0001, [('{"', -0.0001), ("{", -9.2)]),
                _logprob("risk", -0.002, [("risk", -0.002), ("r", -7.1)]),
                _logprob("2", -0.31, [("2", -0.31), ("1", -1.4), ("3", -2.9)]),
            ]},
            "finish_reason": "stop",
            "stop_reason": None,
        }],
        "usage": {"prompt_tokens": 412, "total_tokens": 451, "completion_tokens": 39,
                  "prompt_tokens_details": None},
        "prompt_logprobs": None,
        "kv_transfer_params": None,
    }


def vllm_tool_call_answer() -> dict:
    return {
        "id": "chatcmpl-0a1b2c3d4e5f", "object": "chat.completion", "created": 1764340001,
        "model": "Qwen/Qwen3-8B",
        "choices": [{
            "index": 0,
            "message": {
                "role": "assistant", "reasoning_content": None, "content": None,
                "tool_calls": [{"id": "chatcmpl-tool-5e6f7a8b9c", "type": "function",
                                "function": {"name": "lookup_applicant",
                                             "arguments": "{\"application_id\": \"A-17\"}"}}],
            },
            "logprobs": None, "finish_reason": "tool_calls", "stop_reason": None,
        }],
        "usage": {"prompt_tokens": 120, "total_tokens": 141, "completion_tokens": 21},
    }


class VLLMHandler(BaseHTTPRequestHandler):
    requests: list = []

    def log_message(self, *args):
        pass

    def _send(self, status: int, body: bytes, ctype: str = "application/json"):
        self.send_response(status)
        if body:
            self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path == "/health":
            self._send(200, b"")  # vLLM: empty body, no content type
        else:
            self._send(404, json.dumps({"detail": "Not Found"}).encode())

    def do_POST(self):
        payload = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).requests.append({"payload": payload, "auth": self.headers.get("Authorization")})
        if self.path != "/v1/chat/completions":
            return self._send(404, json.dumps({"detail": "Not Found"}).encode())
        mode = payload["messages"][-1]["content"]
        if mode == "tool":
            body = vllm_tool_call_answer()
        elif mode == "bad-request":  # vLLM's error shape for an invalid request
            return self._send(400, json.dumps({"object": "error", "message": "max_tokens must be at least 1",
                                               "type": "BadRequestError", "param": None,
                                               "code": 400}).encode())
        else:
            body = vllm_json_answer("reasoning" if mode == "new" else "reasoning_content")
        self._send(200, json.dumps(body).encode())


@pytest.fixture
def vllm():
    VLLMHandler.requests = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), VLLMHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


SCHEMA = {"type": "object", "properties": {"risk_level": {"type": "integer"}}, "required": ["risk_level"]}


@pytest.mark.parametrize("mode", ["old", "new"])  # reasoning_content (vLLM < 0.10) and reasoning (newer)
def test_json_answer_with_reasoning_and_logprobs(vllm, mode):
    client = ModelClient(f"{vllm}/v1", api_key="k-123", model="Qwen/Qwen3-8B", retries=0)
    result = client.chat(messages=[{"role": "user", "content": mode}], schema=SCHEMA, top_logprobs=3)
    assert result.parsed == JUDGMENT
    assert result.reasoning == "The applicant has moderate debt; level 2."
    assert result.finish_reason == "stop" and result.model == "Qwen/Qwen3-8B"
    assert result.usage["completion_tokens"] == 39 and result.usage["prompt_tokens"] == 412
    assert [e["token"] for e in result.logprobs] == ['{"', "risk", "2"]
    assert result.logprobs[2]["top_logprobs"][1] == {"token": "1", "logprob": -1.4, "bytes": [49]}
    assert result.tool_calls == []
    assert result.endpoint == f"{vllm}/v1"
    sent = VLLMHandler.requests[-1]
    assert sent["auth"] == "Bearer k-123"
    assert sent["payload"]["model"] == "Qwen/Qwen3-8B"
    assert sent["payload"]["response_format"]["type"] == "json_schema"
    assert sent["payload"]["response_format"]["json_schema"]["schema"] == SCHEMA
    assert sent["payload"]["logprobs"] is True and sent["payload"]["top_logprobs"] == 3


def test_tool_call_answer_with_null_content(vllm):
    client = ModelClient(f"{vllm}/v1", retries=0)
    result = client.chat(messages=[{"role": "user", "content": "tool"}])
    assert result.content == "" and result.parsed is None
    assert result.finish_reason == "tool_calls"
    assert result.reasoning is None and result.logprobs is None
    assert result.tool_calls[0]["function"]["name"] == "lookup_applicant"
    assert json.loads(result.tool_calls[0]["function"]["arguments"]) == {"application_id": "A-17"}


def test_vllm_error_shape_is_a_permanent_error_with_its_message(vllm):
    client = ModelClient(f"{vllm}/v1", retries=0)
    with pytest.raises(PermanentModelError) as excinfo:
        client.chat(messages=[{"role": "user", "content": "bad-request"}])
    assert excinfo.value.status == 400
    assert "max_tokens must be at least 1" in str(excinfo.value)


def test_health_empty_200_is_ok(vllm, settings):
    settings.MODEL_SERVICE_URL = f"{vllm}/v1"
    settings.MODEL_SERVICE_API_KEY = ""
    health = model_service_health()
    assert health == {"ok": True, "url": vllm, "status": 200}
    settings.MODEL_SERVICE_URL = f"{vllm}/nothing/v1"  # a 404 is degraded, with the reason
    health = model_service_health()
    assert health["ok"] is False and health["status"] == 404 and "Not Found" in health["error"]
