"""What the scheduler passes around: requests, the deltas it answers with, and per-row state.

A :class:`GenRequest` is created on the event loop and handed to the engine thread; the engine keeps a
:class:`Row` for it while it runs (a :class:`Prefill` while its prompt is being prefilled) and sends
:class:`Delta` pieces back through the request's asyncio queue (:func:`deliver`).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import torch

from model_service.detok import IncrementalDetokenizer
from model_service.sampling import SamplingParams, TokenLogprob


class QueueFull(Exception):
    """The admission queue is full (answer 503 with Retry-After)."""


@dataclass
class Delta:
    """A piece of a generation sent to the request's queue."""

    text: str = ""
    token_ids: list[int] = field(default_factory=list)
    logprobs: list[TokenLogprob] = field(default_factory=list)
    finish_reason: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    error: str | None = None
    index: int = 0


class GenRequest:
    """One generation: prompt tokens, sampling parameters and optional grammar; created on the event loop."""

    def __init__(self, prompt_ids: list[int], params: SamplingParams, *, grammar: Any = None,
                 grammar_after: str | None = None, timeout: float | None = None,
                 request_id: str | None = None, index: int = 0, queue: asyncio.Queue[Delta] | None = None):
        self.id = request_id or uuid.uuid4().hex
        self.index = index
        self.prompt_ids = prompt_ids
        self.params = params
        self.grammar = grammar
        self.grammar_after = grammar_after
        self.arrival = time.monotonic()
        self.deadline = self.arrival + timeout if timeout else None
        self.cancelled = False
        self.done = False
        self.loop = asyncio.get_running_loop()
        self.queue: asyncio.Queue[Delta] = queue if queue is not None else asyncio.Queue()


class Row:
    """Scheduler state of a running request."""

    __slots__ = ("req", "params", "gen", "matcher", "grammar_after", "output", "cached", "last", "detok",
                 "text", "emitted", "started", "last_time", "finish", "eos", "forced", "unsent_ids",
                 "unsent_lps", "seen", "seen_upto", "refused")

    def __init__(self, req: GenRequest, gen: torch.Generator | None, matcher: Any,
                 detok: IncrementalDetokenizer, eos: set[int]):
        self.req = req
        self.params = req.params
        self.gen = gen
        self.matcher = matcher
        self.grammar_after = req.grammar_after if req.grammar is not None else None
        self.output: list[int] = []
        self.cached = 0  # tokens whose keys/values are in the runner's cache
        self.last = -1  # the sampled token to feed next
        self.detok = detok
        self.text = ""
        self.emitted = 0
        self.started = False
        self.last_time = 0.0
        self.finish: str | None = None
        self.eos = eos
        self.forced: list[int] = []  # grammar-forced tokens to feed after ``last``
        self.unsent_ids: list[int] = []
        self.unsent_lps: list[TokenLogprob] = []
        self.seen: torch.Tensor | None = None  # prompt + output tokens (repetition penalty)
        self.seen_upto = 0
        self.refused = False  # the grammar refused every token the sampler could pick

    def append_forced(self, forced: list[int]) -> None:
        """Tokens the grammar forces (already accepted by the matcher) join the output and the text."""
        for tok in forced:
            self.output.append(tok)
            self.text += self.detok.add(tok)
            self.unsent_ids.append(tok)
            if self.params.logprobs is not None:
                self.unsent_lps.append(TokenLogprob(tok, 0.0, [(tok, 0.0)] if self.params.logprobs else []))

    def seen_mask(self, vocab: int) -> torch.Tensor:
        """A [vocab] bool mask of the tokens in the prompt and the output so far."""
        if self.seen is None:
            self.seen = torch.zeros(vocab, dtype=torch.bool)
            _mark(self.seen, self.req.prompt_ids)
        if self.seen_upto < len(self.output):
            _mark(self.seen, self.output[self.seen_upto:])
            self.seen_upto = len(self.output)
        return self.seen


def _mark(mask: torch.Tensor, ids: list[int]) -> None:
    mask[torch.tensor([t for t in ids if 0 <= t < mask.shape[0]], dtype=torch.long)] = True


@dataclass
class Prefill:
    row: Row
    ids: list[int]  # prompt plus tokens the grammar forces at the start
    done: int = 0
    complete: bool = False


def deliver(items: list[tuple[GenRequest, Delta]]) -> None:
    """Put deltas on their requests' queues (runs on the event loop)."""
    for req, delta in items:
        delta.index = req.index
        req.queue.put_nowait(delta)
