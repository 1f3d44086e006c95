"""The service: turns validated OpenAI requests into engine work and engine output into answers."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request

import model_service
from model_service.auth import KeyAuth, load_keys
from model_service.cache import CacheError, ResponseCache, cache_key, code_fingerprint, is_deterministic
from model_service.chat import render_chat
from model_service.config import ServiceConfig
from model_service.engine import Engine, GenRequest, QueueFull
from model_service.errors import APIError, BadRequest
from model_service.grammar import GrammarService
from model_service.loader import LoadedModel, load_model
from model_service.metrics import Metrics
from model_service.protocol import ChatRequest, CompletionRequest, _Sampling
from model_service.reasoning import THINK_CLOSE, prompt_opens_think
from model_service.responses import (
    Result,
    Vocab,
    chat_logprob_entry,
    chat_message,
    completion_logprobs,
    new_id,
    now,
    usage,
)
from model_service.runner import make_runner
from model_service.sampling import SamplingParams
from model_service.tools import ToolPlan, parameters_of, plan_tools

log = logging.getLogger("model_service.serving")


@dataclass
class Job:
    """A prepared request: prompts, sampling per choice, grammar and how to shape the answer."""

    kind: str  # "chat" or "completion"
    prompts: list[list[int]]
    prompt_texts: list[str]
    params: SamplingParams
    n: int
    grammar: Any = None
    grammar_after: str | None = None
    plan: ToolPlan | None = None
    in_reasoning: bool = False
    logprobs: bool = False
    echo: bool = False
    include_usage: bool = False

    def make_requests(self, timeout: float) -> list[GenRequest]:
        """One engine request per choice, sharing one queue; seeded choices use seed + j."""
        queue: asyncio.Queue[Any] = asyncio.Queue()
        reqs = []
        for p, ids in enumerate(self.prompts):
            for j in range(self.n):
                params = self.params
                if params.seed is not None and j:
                    params = SamplingParams(**{**params.__dict__, "seed": params.seed + j})
                reqs.append(GenRequest(ids, params, grammar=self.grammar, grammar_after=self.grammar_after,
                                       timeout=timeout, index=p * self.n + j, queue=queue))
        return reqs


class Service:
    """Model, engine, grammar compiler, cache, auth and metrics of one running server."""

    def __init__(self, cfg: ServiceConfig, loaded: LoadedModel):
        self.cfg = cfg
        self.loaded = loaded
        self.tokenizer = loaded.tokenizer
        self.names = cfg.served_model_names or [loaded.model_id]
        self.model_id = self.names[0]
        self.max_len = loaded.max_model_len
        self.metrics = Metrics(self.model_id)
        model = loaded.model
        vocab_size = int(model.get_output_embeddings().weight.shape[0])
        self.vocab_size = vocab_size
        self.eos_ids = loaded.eos_token_ids
        self.grammars = GrammarService(self.tokenizer, vocab_size, self.eos_ids,
                                       cache_limit_bytes=int(cfg.grammar_cache_mb * 1024 * 1024))
        self.vocab = Vocab(self.grammars.decoded_vocab)
        self.runner = make_runner(model, multi_device=loaded.multi_device, max_batch=cfg.max_batch_size,
                                  max_len=self.max_len, kind=cfg.runner,
                                  prefix_cache_bytes=cfg.prefix_cache_mb * 1024 * 1024,
                                  matmul_dtype=cfg.matmul_dtype)
        self.engine = Engine(self.runner, self.tokenizer, self.grammars, self.metrics, eos_ids=self.eos_ids,
                             max_batch=cfg.max_batch_size, max_queue=cfg.max_queue, max_len=self.max_len,
                             prefill_chunk=cfg.prefill_chunk, threads=cfg.threads,
                             adaptive_threads=cfg.threads_auto and loaded.device.type == "cpu",
                             jump_forward=cfg.jump_forward)
        self.cache = ResponseCache(cfg.cache_url, ttl=cfg.cache_ttl, prefix=cfg.cache_prefix)
        self.cache_identity = self._cache_identity()
        self.auth = KeyAuth(load_keys(cfg.api_keys_file))
        self.started = time.time()

    # ----- validation helpers ----------------------------------------------------------------
    def check_model(self, name: str | None) -> None:
        """400 when the request names a model this server does not serve."""
        if name is not None and name not in self.names:
            raise BadRequest(f"model {name!r} does not exist here; available: {', '.join(self.names)}",
                             param="model", code="model_not_found")

    def _budget(self, requested: int | None, prompt_len: int, param: str, prompt_param: str) -> int:
        """Tokens the answer may have; ``prompt_param`` names the prompt (``messages`` or ``prompt``)."""
        if prompt_len == 0:
            raise BadRequest("the prompt is empty", param=prompt_param)
        if requested is not None and requested <= 0:
            raise BadRequest(f"{param} must be at least 1, got {requested}", param=param)
        if prompt_len >= self.max_len:
            raise BadRequest(f"the prompt is {prompt_len} tokens but the model's context is "
                             f"{self.max_len} tokens", param=prompt_param, code="context_length_exceeded")
        room = self.max_len - prompt_len
        if requested is None:
            return room
        if requested > room:
            raise BadRequest(f"{param}={requested} plus the {prompt_len}-token prompt exceeds the model's "
                             f"context of {self.max_len} tokens", param=param, code="context_length_exceeded")
        return requested

    def _sampling(self, body: _Sampling, max_tokens: int, logprobs: int | None) -> SamplingParams:
        if body.logit_bias:
            raise BadRequest("logit_bias is not supported", param="logit_bias")
        for tid in body.stop_token_ids or []:
            if not 0 <= tid < self.vocab_size:
                raise BadRequest(f"stop_token_ids: {tid} is not a token id", param="stop_token_ids")
        top_k = body.top_k or 0
        if top_k < -1:
            raise BadRequest("top_k must be -1 (off), 0 (off) or positive", param="top_k")
        if body.min_tokens > max_tokens:
            raise BadRequest(f"min_tokens={body.min_tokens} is more than the {max_tokens} tokens the answer "
                             "may have", param="min_tokens")
        return SamplingParams(
            max_tokens=max_tokens,
            temperature=1.0 if body.temperature is None else body.temperature,
            top_p=1.0 if body.top_p is None else body.top_p,
            top_k=max(top_k, 0), seed=body.seed, stop=body.stop_list(),
            stop_token_ids=list(body.stop_token_ids or []), ignore_eos=body.ignore_eos, logprobs=logprobs,
            presence_penalty=body.presence_penalty, frequency_penalty=body.frequency_penalty,
            repetition_penalty=body.repetition_penalty, min_tokens=body.min_tokens, min_p=body.min_p)

    def _response_grammar(self, body: _Sampling) -> Any:
        guided = [name for name in ("guided_choice", "guided_regex") if getattr(body, name) is not None]
        rf = body.response_format
        if len(guided) > 1:
            raise BadRequest("use only one of guided_choice and guided_regex", param=guided[1])
        if guided and rf is not None and rf.type != "text":
            raise BadRequest(f"use either {guided[0]} or response_format, not both", param=guided[0])
        if body.guided_choice is not None:
            return self.grammars.choice(body.guided_choice)
        if body.guided_regex is not None:
            return self.grammars.regex(body.guided_regex)
        if rf is None or rf.type == "text":
            return None
        if rf.type == "json_object":
            return self.grammars.json_object()
        if rf.json_schema is None or rf.json_schema.schema_ is None:
            raise BadRequest("response_format.json_schema.schema is required for type json_schema",
                             param="response_format.json_schema")
        return self.grammars.json_schema(rf.json_schema.schema_)

    # ----- preparing jobs --------------------------------------------------------------------
    def prepare_chat(self, req: ChatRequest) -> Job:
        """Validate a chat request and build its job (raises BadRequest)."""
        self.check_model(req.model)
        plan = plan_tools(req)
        if plan.active and req.response_format is not None and req.response_format.type != "text":
            raise BadRequest("use either tools or response_format, not both", param="response_format")
        for name in ("guided_choice", "guided_regex"):
            if plan.active and getattr(req, name) is not None:
                raise BadRequest(f"use either tools or {name}, not both", param=name)
        if req.top_logprobs is not None and not req.logprobs:
            raise BadRequest("top_logprobs needs logprobs: true", param="top_logprobs")
        text = render_chat(self.tokenizer, req, plan)
        ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        requested = req.max_completion_tokens if req.max_completion_tokens is not None else req.max_tokens
        param = "max_completion_tokens" if req.max_completion_tokens is not None else "max_tokens"
        max_tokens = self._budget(requested, len(ids), param, "messages")
        params = self._sampling(req, max_tokens, (req.top_logprobs or 0) if req.logprobs else None)
        reasoning_on = self.cfg.reasoning_parser != "none"
        in_reasoning = reasoning_on and prompt_opens_think(text)
        if plan.mode == "named" and plan.named:
            grammar = self.grammars.json_schema(parameters_of(plan, plan.named),
                                                param=f"tools[{plan.named}].function.parameters")
        elif plan.active:
            grammar = self.grammars.tool_calls(plan.tools, plan.mode, req.parallel_tool_calls)
        else:
            grammar = self._response_grammar(req)
        return Job(kind="chat", prompts=[ids], prompt_texts=[text], params=params, n=req.n, grammar=grammar,
                   grammar_after=THINK_CLOSE if (in_reasoning and grammar is not None) else None, plan=plan,
                   in_reasoning=in_reasoning, logprobs=req.logprobs,
                   include_usage=bool(req.stream_options and req.stream_options.include_usage))

    def prepare_completion(self, req: CompletionRequest) -> Job:
        """Validate a completions request and build its job (raises BadRequest)."""
        self.check_model(req.model)
        if req.suffix:
            raise BadRequest("suffix is not supported", param="suffix")
        if req.best_of is not None and req.best_of != req.n:
            raise BadRequest("best_of other than n is not supported", param="best_of")
        prompt = req.prompt
        prompts: list[list[int]] = []
        texts: list[str] = []
        if isinstance(prompt, str):
            prompt = [prompt]
        if not prompt:
            raise BadRequest("prompt must not be empty", param="prompt")
        if isinstance(prompt[0], int):
            prompt = [prompt]  # type: ignore[list-item]
        for item in prompt:
            if isinstance(item, str):
                ids = self.tokenizer(item, add_special_tokens=True)["input_ids"]
                texts.append(item)
            else:
                ids = list(item)  # type: ignore[arg-type]
                bad = [t for t in ids if not 0 <= t < self.vocab_size]
                if bad:
                    raise BadRequest(f"prompt contains invalid token ids: {bad[:5]}", param="prompt")
                texts.append(self.tokenizer.decode(ids))
            prompts.append(ids)
        if len(prompts) * req.n > 64:
            raise BadRequest("at most 64 choices per request (prompts x n)", param="n")
        max_tokens = min(self._budget(req.max_tokens, len(ids), "max_tokens", "prompt") for ids in prompts)
        params = self._sampling(req, max_tokens, req.logprobs)
        grammar = self._response_grammar(req)
        return Job(kind="completion", prompts=prompts, prompt_texts=texts, params=params, n=req.n,
                   grammar=grammar, logprobs=req.logprobs is not None, echo=req.echo,
                   include_usage=bool(req.stream_options and req.stream_options.include_usage))

    # ----- running ---------------------------------------------------------------------------
    def submit(self, job: Job) -> list[GenRequest]:
        """Create and queue the job's engine requests (503 with Retry-After when the queue is full)."""
        reqs = job.make_requests(self.cfg.request_timeout)
        if len(reqs) > max(1, self.cfg.max_queue):
            raise BadRequest(f"{len(reqs)} choices (prompts x n) exceed the server's queue of "
                             f"{self.cfg.max_queue}", param="n")
        try:
            self.engine.submit(reqs)
        except QueueFull:
            self.metrics.rejected.inc()
            raise APIError("the model service is at capacity (admission queue full); retry shortly",
                           status=503, error_type="server_overloaded", code="queue_full",
                           headers={"Retry-After": str(self.retry_after())})
        return reqs

    def retry_after(self) -> int:
        """Seconds a rejected client should wait: a rough estimate from the queue length."""
        return max(1, min(30, 1 + self.engine.num_waiting // max(1, self.cfg.max_batch_size)))

    async def collect(self, job: Job, reqs: list[GenRequest], request: Request | None) -> list[Result]:
        """Wait for all choices; a client that disconnects cancels them."""
        results = [Result(prompt_tokens=len(job.prompts[i // job.n])) for i in range(len(reqs))]
        watcher = asyncio.create_task(self._watch_disconnect(request, reqs)) if request is not None else None
        try:
            async for delta in self.engine.results(reqs):
                res = results[delta.index]
                res.text += delta.text
                res.token_ids += delta.token_ids
                res.logprobs += delta.logprobs
                res.completion_tokens = max(res.completion_tokens, delta.completion_tokens)
                if delta.finish_reason:
                    res.finish_reason = delta.finish_reason
                if delta.error:
                    res.error = delta.error
        finally:
            if watcher is not None:
                watcher.cancel()
        for res in results:
            if res.error == "timeout":
                raise APIError(f"the request timed out after {self.cfg.request_timeout:g}s", status=504,
                               error_type="timeout", code="timeout")
            if res.error:
                raise APIError(res.error, status=500, error_type="internal_error")
        return results

    async def _watch_disconnect(self, request: Request, reqs: list[GenRequest]) -> None:
        while True:
            message = await request.receive()
            if message.get("type") == "http.disconnect":
                for r in reqs:
                    self.engine.cancel(r)
                return

    # ----- answers ---------------------------------------------------------------------------
    def chat_response(self, job: Job, results: list[Result]) -> dict[str, Any]:
        """The ``chat.completion`` object."""
        assert job.plan is not None
        choices = []
        for i, res in enumerate(results):
            message, finish = chat_message(res, job.plan, reasoning_on=self.cfg.reasoning_parser != "none",
                                           in_reasoning=job.in_reasoning)
            choice: dict[str, Any] = {"index": i, "message": message, "finish_reason": finish,
                                      "logprobs": None}
            if job.logprobs:
                choice["logprobs"] = {"content": [chat_logprob_entry(lp, self.vocab) for lp in res.logprobs]}
            choices.append(choice)
        return {"id": new_id("chatcmpl"), "object": "chat.completion", "created": now(),
                "model": self.model_id, "choices": choices, "usage": usage(results[0].prompt_tokens,
                                                   sum(r.completion_tokens for r in results)),
                "system_fingerprint": None}

    def completion_response(self, job: Job, results: list[Result]) -> dict[str, Any]:
        """The ``text_completion`` object."""
        choices = []
        for i, res in enumerate(results):
            prefix = job.prompt_texts[i // job.n] if job.echo else ""
            choice: dict[str, Any] = {"index": i, "text": prefix + res.text,
                                      "finish_reason": res.finish_reason or "stop", "logprobs": None}
            if job.logprobs:
                choice["logprobs"] = completion_logprobs(res.logprobs, self.vocab, len(prefix))
            choices.append(choice)
        prompt_tokens = sum(len(p) for p in job.prompts)
        return {"id": new_id("cmpl"), "object": "text_completion", "created": now(), "model": self.model_id,
                "choices": choices, "usage": usage(prompt_tokens, sum(r.completion_tokens for r in results)),
                "system_fingerprint": None}

    # ----- cache -----------------------------------------------------------------------------
    def _cache_identity(self) -> str:
        """Everything besides the request that shapes an answer: model, prompt rendering, decoding, code."""
        template = getattr(self.tokenizer, "chat_template", None)
        template_text = json.dumps(template, sort_keys=True, default=str)
        return json.dumps({
            "model": self.model_id, "source": self.loaded.source, "dtype": str(self.loaded.dtype),
            "max_model_len": self.max_len, "runner": self.runner.name, "matmul_dtype": self._matmul_dtype(),
            "chat_template": hashlib.sha256(template_text.encode()).hexdigest(),
            "reasoning_parser": self.cfg.reasoning_parser, "jump_forward": self.engine.jump_forward,
            "version": model_service.__version__, "code": code_fingerprint(),
        }, sort_keys=True)

    def _matmul_dtype(self) -> str:
        """The precision of the runner's matrix products (the model's dtype unless the fused runner
        multiplies in bfloat16, ``--matmul-dtype``)."""
        return getattr(self.runner, "matmul_dtype", None) or str(self.loaded.dtype).removeprefix("torch.")

    def cache_key_for(self, endpoint: str, body: dict[str, Any]) -> str:
        """The cache key of a request body (with :meth:`_cache_identity`)."""
        return cache_key(self.cfg.cache_prefix, endpoint, self.cache_identity, body)

    async def cache_lookup(self, endpoint: str, body: dict[str, Any], stream: bool, no_cache: bool
                           ) -> tuple[str, str | None, bytes | None]:
        """``(x_cache, key, cached_body)``; x_cache is hit, miss or bypass."""
        if stream or no_cache or not self.cache.enabled or not is_deterministic(body):
            return "bypass", None, None
        key = self.cache_key_for(endpoint, body)
        try:
            hit = await self.cache.get(key)
        except CacheError:
            self.metrics.cache_errors.inc()
            return "bypass", None, None
        if not self.cache.available:
            return "bypass", None, None
        if hit is not None:
            self.metrics.cache_hits.inc()
            return "hit", key, hit
        self.metrics.cache_misses.inc()
        return "miss", key, None

    async def cache_store(self, key: str, response: dict[str, Any]) -> None:
        """Store a finished answer (not cancelled ones)."""
        if any(c.get("finish_reason") not in {"stop", "length", "tool_calls"} for c in response["choices"]):
            return
        try:
            await self.cache.set(key, json.dumps(response).encode())
        except CacheError:
            self.metrics.cache_errors.inc()

    def health(self) -> dict[str, Any]:
        """What ``GET /health`` shows."""
        ok, reason = self.engine.health()
        return {
            "status": "ok" if ok else "error", "reason": reason,
            "model": self.model_id, "served_model_names": self.names, "source": self.loaded.source,
            "runner": self.runner.name, "device": str(self.loaded.device), "dtype": str(self.loaded.dtype),
            "matmul_dtype": self._matmul_dtype(), "max_model_len": self.max_len,
            "max_batch_size": self.cfg.max_batch_size, "max_queue": self.cfg.max_queue,
            "running": self.engine.num_running, "waiting": self.engine.num_waiting,
            "cache": self.cache.status(), "grammar_cache": self.grammars.cache_stats(),
            "auth": "open" if self.auth.open else "api-keys",
            "threads": (self.engine.tuner.state() if self.engine.tuner is not None
                        else {"threads": self.cfg.threads, "mode": "fixed"}),
            "engine_last_error": self.engine.last_error, "uptime_s": round(time.time() - self.started, 1),
        }


def build_service(cfg: ServiceConfig) -> Service:
    """Load the model and assemble the service (raises ConfigError for bad flags or models)."""
    import torch

    torch.set_num_threads(cfg.threads)
    loaded = load_model(cfg.model, dtype=cfg.dtype, device_map=cfg.device_map, load_in_8bit=cfg.load_in_8bit,
                        weights_cache_dir=cfg.weights_cache_dir, max_model_len=cfg.max_model_len,
                        trust_remote_code=cfg.trust_remote_code)
    if cfg.chat_template:
        loaded.tokenizer.chat_template = cfg.chat_template
    return Service(cfg, loaded)
