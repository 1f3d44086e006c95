"""Server-sent events for ``stream: true`` (chat and completions), ending with ``data: [DONE]``.

Chat deltas carry ``reasoning_content``/``reasoning`` and ``content`` separately; when tools are in
play the text is held until the choice ends so a ``<tool_call>`` block is never streamed as content,
then sent as one ``tool_calls`` delta. A client that goes away cancels its generation (the
generator is closed and :meth:`Engine.results` cancels what is still running).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from model_service.engine import GenRequest
from model_service.reasoning import ReasoningSplitter
from model_service.responses import (
    Result,
    chat_logprob_entry,
    chat_message,
    completion_logprobs,
    new_id,
    now,
    usage,
)


def sse(obj: Any) -> bytes:
    """One SSE event."""
    return b"data: " + json.dumps(obj, ensure_ascii=False).encode() + b"\n\n"


DONE = b"data: [DONE]\n\n"


def _error_event(message: str, status: int) -> bytes:
    return sse({"error": {"message": message, "type": "timeout" if status == 504 else "internal_error",
                          "param": None, "code": status}})


async def chat_stream(service: Any, job: Any, reqs: list[GenRequest]) -> AsyncIterator[bytes]:
    """SSE chunks of a chat completion."""
    rid, created, model = new_id("chatcmpl"), now(), service.model_id
    reasoning_on = service.cfg.reasoning_parser != "none"
    plan = job.plan
    buffered = bool(plan and (plan.active or plan.mode == "named"))

    def chunk(choices: list[dict[str, Any]], use: dict[str, int] | None = None) -> bytes:
        obj: dict[str, Any] = {"id": rid, "object": "chat.completion.chunk", "created": created,
                               "model": model, "choices": choices}
        if use is not None:
            obj["usage"] = use
        return sse(obj)

    n = len(reqs)
    splitters = [ReasoningSplitter(job.in_reasoning) if reasoning_on else None for _ in range(n)]
    texts = [""] * n
    lps: list[list[dict[str, Any]]] = [[] for _ in range(n)]
    tokens = [0] * n
    for i in range(n):
        yield chunk([{"index": i, "delta": {"role": "assistant", "content": ""}, "logprobs": None,
                      "finish_reason": None}])
    async for d in service.engine.results(reqs):
        i = d.index
        tokens[i] = max(tokens[i], d.completion_tokens)
        if d.error:
            status = 504 if d.error == "timeout" else 500
            yield _error_event("the request timed out" if status == 504 else d.error, status)
            break
        entries = [chat_logprob_entry(lp, service.vocab) for lp in d.logprobs] if job.logprobs else []
        if buffered:
            texts[i] += d.text
            lps[i] += entries
            if d.finish_reason:
                message, finish = chat_message(Result(text=texts[i], finish_reason=d.finish_reason), plan,
                                               reasoning_on=reasoning_on, in_reasoning=job.in_reasoning)
                delta: dict[str, Any] = {}
                if message.get("reasoning_content"):
                    delta["reasoning_content"] = delta["reasoning"] = message["reasoning_content"]
                if message.get("content"):
                    delta["content"] = message["content"]
                if message.get("tool_calls"):
                    delta["tool_calls"] = [{"index": k, **call}
                                           for k, call in enumerate(message["tool_calls"])]
                yield chunk([{"index": i, "delta": delta,
                              "logprobs": {"content": lps[i]} if job.logprobs else None,
                              "finish_reason": None}])
                yield chunk([{"index": i, "delta": {}, "logprobs": None, "finish_reason": finish}])
            continue
        splitter = splitters[i]
        if splitter is not None:
            reasoning, content = splitter.feed(d.text)
            if d.finish_reason:
                r2, c2 = splitter.finish()
                reasoning, content = reasoning + r2, content + c2
        else:
            reasoning, content = "", d.text
        delta = {}
        if reasoning:
            delta["reasoning_content"] = delta["reasoning"] = reasoning
        if content:
            delta["content"] = content
        if delta or entries:
            yield chunk([{"index": i, "delta": delta,
                          "logprobs": {"content": entries} if job.logprobs else None,
                          "finish_reason": None}])
        if d.finish_reason:
            yield chunk([{"index": i, "delta": {}, "logprobs": None, "finish_reason": d.finish_reason}])
    if job.include_usage:
        yield chunk([], usage(len(job.prompts[0]), sum(tokens)))
    yield DONE


async def completion_stream(service: Any, job: Any, reqs: list[GenRequest]) -> AsyncIterator[bytes]:
    """SSE chunks of a (legacy) completion."""
    rid, created, model = new_id("cmpl"), now(), service.model_id
    n = len(reqs)
    offsets = [0] * n
    started = [False] * n
    tokens = [0] * n

    def chunk(choices: list[dict[str, Any]], use: dict[str, int] | None = None) -> bytes:
        obj: dict[str, Any] = {"id": rid, "object": "text_completion", "created": created, "model": model,
                               "choices": choices}
        if use is not None:
            obj["usage"] = use
        return sse(obj)

    async for d in service.engine.results(reqs):
        i = d.index
        tokens[i] = max(tokens[i], d.completion_tokens)
        if d.error:
            status = 504 if d.error == "timeout" else 500
            yield _error_event("the request timed out" if status == 504 else d.error, status)
            break
        text = d.text
        if job.echo and not started[i]:
            prefix = job.prompt_texts[i // job.n]
            text = prefix + text
            offsets[i] = len(prefix)
        started[i] = True
        logprobs = None
        if job.logprobs:
            logprobs = completion_logprobs(d.logprobs, service.vocab, offsets[i])
            offsets[i] += sum(len(t) for t in logprobs["tokens"])
        if text or logprobs or d.finish_reason:
            yield chunk([{"index": i, "text": text, "logprobs": logprobs, "finish_reason": d.finish_reason}])
    if job.include_usage:
        yield chunk([], usage(sum(len(p) for p in job.prompts), sum(tokens)))
    yield DONE
