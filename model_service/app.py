"""HTTP layer (FastAPI): routes, Bearer auth on ``/v1/*``, OpenAI-shaped errors, SSE.

Nothing a client sends produces a 500: bodies are parsed by hand so malformed JSON and wrong types
are 400s naming the problem; only engine faults are 500s, and the engine keeps serving after one.
Bodies larger than ``--max-request-bytes`` are refused with 413 before they are read in full.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from model_service import __version__
from model_service.errors import APIError
from model_service.protocol import ChatRequest, CompletionRequest, parse_body
from model_service.responses import new_id, now
from model_service.serving import Service
from model_service.streaming import chat_stream, completion_stream

log = logging.getLogger("model_service.app")


def _error(status: int, message: str, etype: str, code: Any = None, headers: dict[str, str] | None = None,
           param: str | None = None) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": etype, "param": param, "code": code}},
                        status_code=status, headers=headers)


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, or a 413 as soon as it is known to exceed ``limit`` bytes."""
    def too_large() -> APIError:
        return APIError(f"request body exceeds this server's limit of {limit} bytes", status=413,
                        error_type="invalid_request_error", code="request_too_large")

    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_large()
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large()
        chunks.append(chunk)
    return b"".join(chunks)


def _no_cache(request: Request) -> bool:
    value = request.headers.get("cache-control", "").lower()
    return "no-cache" in value or "no-store" in value


def create_app(service: Service) -> FastAPI:
    """The ASGI app serving ``service``."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        service.engine.start()
        await service.cache.connect()
        cfg = service.cfg
        log.info("model %s (%s) on %s, runner %s, cache: %s", service.model_id, service.loaded.source,
                 service.loaded.device, service.runner.name, service.cache.status()["status"])
        print(f"model service ready on http://{cfg.host}:{cfg.port}", flush=True)
        yield
        service.engine.stop()
        await service.cache.close()

    app = FastAPI(title="model_service", version=__version__, lifespan=lifespan, docs_url=None,
                  redoc_url=None)
    app.state.service = service

    @app.middleware("http")
    async def auth_middleware(request: Request, call_next: Any) -> Response:
        if (request.url.path.startswith("/v1/")
                and not service.auth.check(request.headers.get("authorization"))):
            service.metrics.http_error(401)
            return _error(401, "missing or invalid API key: send 'Authorization: Bearer <key>'",
                          "authentication_error", "invalid_api_key", {"WWW-Authenticate": "Bearer"})
        return await call_next(request)

    @app.exception_handler(APIError)
    async def api_error(request: Request, exc: APIError) -> JSONResponse:
        service.metrics.http_error(exc.status)
        if exc.status >= 500:
            log.warning("%s %s -> %s: %s", request.method, request.url.path, exc.status, exc.message)
        return JSONResponse(exc.to_dict(), status_code=exc.status, headers=exc.headers)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        service.metrics.http_error(exc.status_code)
        etype = "not_found_error" if exc.status_code == 404 else "invalid_request_error"
        return _error(exc.status_code, str(exc.detail), etype, exc.status_code)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        service.metrics.http_error(500)
        return _error(500, f"internal error: {type(exc).__name__}", "internal_error", 500)

    @app.get("/health")
    async def health() -> JSONResponse:
        body = service.health()
        return JSONResponse(body, status_code=200 if body["status"] == "ok" else 503)

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(service.metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        created = int(service.started)
        return {"object": "list", "data": [
            {"id": name, "object": "model", "created": created, "owned_by": "model_service",
             "root": service.model_id, "max_model_len": service.max_len} for name in service.names]}

    async def _serve(request: Request, endpoint: str, body_model: type, prepare: Any, respond: Any,
                     stream_fn: Any) -> Response:
        raw = await read_body(request, service.cfg.max_request_bytes)
        req = parse_body(raw, body_model)
        job = await asyncio.to_thread(prepare, req)
        body = req.model_dump(mode="json", by_alias=True)
        x_cache, key, hit = await service.cache_lookup(endpoint, body, req.stream, _no_cache(request))
        if hit is not None:
            cached = json.loads(hit)
            cached["id"] = new_id(cached["id"].split("-")[0])
            cached["created"] = now()
            return JSONResponse(cached, headers={"X-Cache": "hit"})
        reqs = service.submit(job)
        if req.stream:
            return StreamingResponse(stream_fn(service, job, reqs), media_type="text/event-stream",
                                     headers={"X-Cache": "bypass", "Cache-Control": "no-cache"})
        results = await service.collect(job, reqs, request)
        answer = respond(job, results)
        if key is not None and x_cache == "miss":
            await service.cache_store(key, answer)
        return JSONResponse(answer, headers={"X-Cache": x_cache})

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> Response:
        return await _serve(request, "chat", ChatRequest, service.prepare_chat, service.chat_response,
                            chat_stream)

    @app.post("/v1/completions")
    async def completions(request: Request) -> Response:
        return await _serve(request, "completions", CompletionRequest, service.prepare_completion,
                            service.completion_response, completion_stream)

    return app
