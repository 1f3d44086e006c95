"""The one client of the LLM model service (OpenAI-compatible HTTP: our own server, vLLM or SGLang).

- Timeouts on connect and read; retries with exponential backoff and full jitter on connection
  errors, 408, 429 and 5xx (honouring ``Retry-After``); no retry on other 4xx.
- A circuit breaker: after N consecutive transient failures the client refuses calls for a cool-down,
  then lets one probe through.
- Typed errors: :class:`TransientModelError` (try again later: the job goes back to the queue) and
  :class:`PermanentModelError` (the request itself is wrong: the job fails with the message).
- Per-template routing (``MODEL_SERVICE_ROUTES``): a small fast endpoint for extraction, a large one
  for judgment, as the reference guide's edge-and-centre design.
"""
from __future__ import annotations

import json
import logging
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

logger = logging.getLogger(__name__)

RETRY_STATUS = {408, 425, 429, 500, 502, 503, 504}


class ModelServiceError(Exception):
    """Base class: ``code`` is a short machine-readable reason."""

    code = "model_service_error"

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None,
                 retry_after: float | None = None):
        super().__init__(message)
        if code:
            self.code = code
        self.status = status
        self.retry_after = retry_after


class TransientModelError(ModelServiceError):
    code = "model_service_unavailable"


class PermanentModelError(ModelServiceError):
    code = "model_request_rejected"


class CircuitOpenError(TransientModelError):
    code = "model_service_circuit_open"


class CircuitBreaker:
    """Closed → open after ``threshold`` consecutive failures; half-open after ``cooldown`` seconds."""

    def __init__(self, threshold: int = 5, cooldown: float = 30.0, clock=time.monotonic):
        self.threshold = threshold
        self.cooldown = cooldown
        self._clock = clock
        self._failures = 0
        self._opened_at: float | None = None
        self._lock = threading.Lock()

    @property
    def state(self) -> str:
        with self._lock:
            if self._opened_at is None:
                return "closed"
            if self._clock() - self._opened_at >= self.cooldown:
                return "half_open"
            return "open"

    def before_call(self) -> None:
        if self.state == "open":
            remaining = self.cooldown - (self._clock() - (self._opened_at or 0))
            raise CircuitOpenError(
                f"model service circuit open after {self._failures} consecutive failures; "
                f"retry in {remaining:.0f}s",
                retry_after=max(remaining, 1.0),
            )

    def record_success(self) -> None:
        with self._lock:
            self._failures = 0
            self._opened_at = None

    def record_failure(self) -> None:
        with self._lock:
            self._failures += 1
            if self._failures >= self.threshold:
                self._opened_at = self._clock()


@dataclass
class ChatResult:
    """What one chat completion returned, with the parsed JSON when a schema was asked for."""

    content: str
    parsed: Any
    finish_reason: str
    model: str
    usage: dict
    logprobs: list[dict] | None
    latency_s: float
    reasoning: str | None = None
    tool_calls: list[dict] = field(default_factory=list)
    endpoint: str = ""


def backoff_delay(attempt: int, *, base: float = 0.5, cap: float = 8.0, rng=random.random) -> float:
    """Exponential backoff with full jitter: uniform in [0, min(cap, base * 2**attempt)]."""
    return rng() * min(cap, base * (2 ** attempt))


class ModelClient:
    def __init__(self, base_url: str, *, api_key: str = "", model: str = "", timeout: float = 120.0,
                 connect_timeout: float = 5.0, retries: int = 2, breaker: CircuitBreaker | None = None,
                 transport: httpx.BaseTransport | None = None, sleep=time.sleep):
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.retries = retries
        self.breaker = breaker or CircuitBreaker()
        self._sleep = sleep
        headers = {"Content-Type": "application/json"}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        self._http = httpx.Client(
            base_url=self.base_url,
            headers=headers,
            timeout=httpx.Timeout(timeout, connect=connect_timeout),
            transport=transport,
        )

    # --- low level -----------------------------------------------------------------------------
    def _request(self, method: str, path: str, payload: dict | None = None) -> dict:
        self.breaker.before_call()
        last_error: ModelServiceError | None = None
        for attempt in range(self.retries + 1):
            try:
                response = self._http.request(method, path, json=payload)
            except httpx.TimeoutException as exc:
                last_error = TransientModelError(f"model service timed out ({type(exc).__name__}) "
                                                 f"at {self.base_url}",
                                                 code="model_service_timeout")
            except httpx.HTTPError as exc:
                last_error = TransientModelError(f"cannot reach the model service at {self.base_url}: {exc}")
            else:
                if response.status_code < 400:
                    self.breaker.record_success()
                    try:
                        return response.json()
                    except ValueError:
                        raise PermanentModelError("model service answered with invalid JSON",
                                                  code="model_bad_response") from None
                message = _error_message(response)
                retry_after = _retry_after(response)
                if response.status_code in RETRY_STATUS:
                    last_error = TransientModelError(
                        f"model service answered {response.status_code}: {message}",
                        status=response.status_code, retry_after=retry_after,
                    )
                else:
                    # The service is up and says our request is wrong: not a breaker failure.
                    self.breaker.record_success()
                    raise PermanentModelError("model service rejected the request "
                                              f"({response.status_code}): {message}",
                                              status=response.status_code)
            if attempt < self.retries:
                delay = backoff_delay(attempt)
                if last_error.retry_after:
                    delay = max(delay, min(last_error.retry_after, 10.0))
                logger.warning("model service call failed (%s); retry %d/%d in %.1fs",
                               last_error.code, attempt + 1, self.retries, delay)
                self._sleep(delay)
        self.breaker.record_failure()
        assert last_error is not None
        raise last_error

    # --- API -----------------------------------------------------------------------------------
    def chat(self, *, messages: list[dict], schema: dict | None = None, schema_name: str = "answer",
             max_tokens: int = 256, temperature: float = 0.0, top_logprobs: int | None = None,
             seed: int | None = None, stop: list[str] | None = None, extra: dict | None = None) -> ChatResult:
        """One chat completion; with ``schema``, constrained JSON that is parsed into ``parsed``."""
        payload: dict[str, Any] = {"messages": messages, "max_tokens": max_tokens, "temperature": temperature}
        if self.model:
            payload["model"] = self.model
        if schema is not None:
            payload["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": schema_name, "schema": schema, "strict": True},
            }
        if top_logprobs:
            payload["logprobs"] = True
            payload["top_logprobs"] = top_logprobs
        if seed is not None:
            payload["seed"] = seed
        if stop:
            payload["stop"] = stop
        if extra:
            payload.update(extra)
        started = time.monotonic()
        data = self._request("POST", "/chat/completions", payload)
        latency = time.monotonic() - started
        try:
            choice = data["choices"][0]
            message = choice.get("message") or {}
            content = message.get("content") or ""
        except (KeyError, IndexError, TypeError):
            raise PermanentModelError("model service answer has no choices[0].message",
                                      code="model_bad_response") from None
        finish = choice.get("finish_reason") or ""
        parsed = None
        if schema is not None:
            if finish == "length":
                raise TransientModelError(
                    f"model answer was cut at max_tokens={max_tokens} before the JSON closed",
                    code="model_output_truncated",
                )
            try:
                parsed = json.loads(content)
            except ValueError:
                raise TransientModelError("model answer is not valid JSON", code="model_bad_json") from None
        logprobs = (choice.get("logprobs") or {}).get("content") if choice.get("logprobs") else None
        return ChatResult(
            content=content, parsed=parsed, finish_reason=finish, model=data.get("model", ""),
            usage=data.get("usage") or {}, logprobs=logprobs, latency_s=latency,
            reasoning=message.get("reasoning_content") or message.get("reasoning"),
            tool_calls=message.get("tool_calls") or [], endpoint=self.base_url,
        )

    def models(self) -> list[dict]:
        return self._request("GET", "/models").get("data", [])

    def close(self) -> None:
        self._http.close()


def _error_message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:300]
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, dict):
            return str(err.get("message") or err)[:300]
        return str(err)[:300]
    return str(body)[:300]


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        return None


# --- one client per endpoint, per process ------------------------------------------------------------
_clients: dict[str, ModelClient] = {}
_clients_lock = threading.Lock()


def _routes() -> dict[str, str]:
    from django.conf import settings

    if not settings.MODEL_SERVICE_ROUTES:
        return {}
    try:
        routes = json.loads(settings.MODEL_SERVICE_ROUTES)
    except ValueError:
        from config.env import ConfigError

        raise ConfigError("MODEL_SERVICE_ROUTES is not valid JSON "
                          "(expected {\"template prefix\": \"url\"})") from None
    return {str(k): str(v).rstrip("/") for k, v in routes.items()}


def endpoint_for(template_name: str = "") -> str:
    """The base URL for a prompt template: the longest matching route prefix, else MODEL_SERVICE_URL."""
    from django.conf import settings

    best = ""
    url = settings.MODEL_SERVICE_URL
    for prefix, route_url in _routes().items():
        if template_name.startswith(prefix) and len(prefix) > len(best):
            best, url = prefix, route_url
    return url


def get_model_client(template_name: str = "") -> ModelClient:
    """The shared client for the endpoint that serves ``template_name``."""
    from django.conf import settings

    url = endpoint_for(template_name)
    with _clients_lock:
        client = _clients.get(url)
        if client is None:
            client = ModelClient(
                url, api_key=settings.MODEL_SERVICE_API_KEY, model=settings.MODEL_SERVICE_MODEL,
                timeout=settings.MODEL_SERVICE_TIMEOUT,
                connect_timeout=settings.MODEL_SERVICE_CONNECT_TIMEOUT,
                retries=settings.MODEL_SERVICE_RETRIES,
                breaker=CircuitBreaker(settings.MODEL_SERVICE_BREAKER_THRESHOLD,
                                       settings.MODEL_SERVICE_BREAKER_COOLDOWN),
            )
            _clients[url] = client
        return client


def model_service_health(timeout: float = 2.0) -> dict:
    """Probe ``GET <root>/health`` of the default endpoint (used by /readyz and the UI banner)."""
    from django.conf import settings

    root = settings.MODEL_SERVICE_URL
    if root.endswith("/v1"):
        root = root[:-3]
    headers = ({"Authorization": f"Bearer {settings.MODEL_SERVICE_API_KEY}"}
               if settings.MODEL_SERVICE_API_KEY else {})
    try:
        response = httpx.get(f"{root}/health", timeout=timeout, headers=headers)
    except httpx.HTTPError as exc:
        return {"ok": False, "url": root, "error": f"unreachable: {type(exc).__name__}"}
    ok = response.status_code == 200
    detail: dict = {"ok": ok, "url": root, "status": response.status_code}
    if not ok:
        # vLLM answers /health with an empty 200; anything else is degraded.
        detail["error"] = _error_message(response)
    return detail
