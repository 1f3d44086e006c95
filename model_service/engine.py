"""The continuous-batching scheduler: one engine thread owns the model.

Each iteration runs ONE forward pass over: a token for every running row, the prompts of newcomers
admitted from the bounded queue (within a prefill token budget; long prompts in chunks), and the
tokens a grammar forces next for constrained rows (jump-forward: ``{"risk_level": `` costs one
pass, not five). Grammar-constrained rows (xgrammar bitmask per row) and free rows share the batch.
Finished, cancelled or timed-out rows leave between steps; their slots are reused at once. Results go back
to the asyncio side through ``loop.call_soon_threadsafe`` (one call per iteration).

Faults: an iteration that raises fails every request it touched (running rows, the partial prefill
and every request taken from the queue in that iteration) with an error, resets the runner and
checks the engine with a one-token forward pass; while that self-check fails the engine reports
itself unhealthy (``/health`` answers 503) and repeats the check every ``probe_interval`` seconds.
:meth:`Engine.results` never waits for ever (see ``engine_guard.py``). Request and row types are in
``generation.py``; idle memory release in ``engine_guard.py``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from typing import Any

import torch

from model_service.detok import IncrementalDetokenizer, find_stop, holdback
from model_service.engine_guard import EngineGuard
from model_service.generation import Delta, GenRequest, Prefill, QueueFull, Row, deliver
from model_service.grammar import GrammarService, accept_sampled, apply_bitmask
from model_service.metrics import Metrics
from model_service.prefix_cache import common_prefix
from model_service.runner import Segment
from model_service.sampling import (
    TokenLogprob,
    apply_penalties,
    apply_repetition_penalty,
    compute_logprobs,
    select_tokens,
    suppress_tokens,
)
from model_service.threads import ThreadTuner

log = logging.getLogger("model_service.engine")
SHARE_MIN = 32  # prompt tokens shared with a newcomer of the same step worth waiting a step for

__all__ = ["Delta", "Engine", "GenRequest", "QueueFull"]


class Engine(EngineGuard):
    """Owns the runner; schedules requests in continuous batches (see module doc)."""

    def __init__(self, runner: Any, tokenizer: Any, grammars: GrammarService, metrics: Metrics, *,
                 eos_ids: list[int], max_batch: int, max_queue: int, max_len: int, prefill_chunk: int = 512,
                 threads: int | None = None, jump_forward: bool = True, adaptive_threads: bool = False):
        self.runner = runner
        self.tokenizer = tokenizer
        self.grammars = grammars
        self.metrics = metrics
        self.eos_ids = set(eos_ids)
        self.max_batch = max_batch
        self.max_queue = max_queue
        self.max_len = max_len
        self.prefill_chunk = prefill_chunk
        self.threads = threads
        # --threads auto: the faster of 1 and ``threads`` intra-op threads, by measurement (threads.py)
        self.tuner = ThreadTuner(threads) if adaptive_threads and threads else None
        self.jump_forward = jump_forward and getattr(runner, "supports_forced_tokens", False)
        self._cond = threading.Condition()
        self._incoming: deque[GenRequest] = deque()
        self._waiting: deque[GenRequest] = deque()
        self._n_waiting = 0
        self._rows: list[Row] = []
        self._prefilling: list[Prefill] = []  # at most one partial prompt between steps
        self._events: list[tuple[GenRequest, Delta]] = []
        self._stop = False
        self._thread: threading.Thread | None = None
        self._bitmask = grammars.allocate_bitmask(max_batch + 1)
        self._scratch = grammars.allocate_bitmask(1)
        self._taken: list[GenRequest] = []  # taken from the queue in the current iteration
        self.steps = 0
        self.healthy = True
        self.unhealthy_reason: str | None = None
        self.last_error: str | None = None
        self.probe_interval = 5.0  # seconds between self-checks while unhealthy
        self._next_probe = 0.0
        self.poll_interval = 1.0  # how often a waiting client checks that it will be answered
        self.deadline_grace = 30.0  # seconds past a request's deadline before the client gives up
        # Seconds idle before the runner gives back the cache it kept between requests (None: never).
        self.release_after: float | None = 30.0
        self._idle_since: float | None = None

    # ----- public API (event-loop side) ------------------------------------------------------
    def start(self) -> None:
        """Start the engine thread."""
        self._thread = threading.Thread(target=self._run, name="model-engine", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the engine thread (pending requests are failed)."""
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        if self._thread:
            self._thread.join(timeout=10)

    @property
    def num_running(self) -> int:
        """Rows in the running batch (including one being prefilled)."""
        return len(self._rows) + len(self._prefilling)

    @property
    def num_waiting(self) -> int:
        """Requests admitted but not yet prefilling."""
        return self._n_waiting

    def submit(self, reqs: list[GenRequest]) -> None:
        """Queue requests (all or none); raises :class:`QueueFull` when they do not fit in ``max_queue``."""
        with self._cond:
            if self._n_waiting + len(reqs) > self.max_queue:
                raise QueueFull()
            self._n_waiting += len(reqs)
            self._incoming.extend(reqs)
            self.metrics.waiting.set(self._n_waiting)
            self._cond.notify()

    def cancel(self, req: GenRequest) -> None:
        """Stop working on ``req`` (the client went away); it leaves the batch before the next step."""
        if not req.done:
            req.cancelled = True
            with self._cond:
                self._cond.notify()

    # ----- engine thread ---------------------------------------------------------------------
    def _run(self) -> None:
        if self.threads and self.tuner is None:
            torch.set_num_threads(self.threads)
        with torch.inference_mode():
            while True:
                with self._cond:
                    while not self._stop and not self._has_work():
                        if not self.healthy and time.monotonic() >= self._next_probe:
                            break
                        self._release_if_idle()
                        self._cond.wait(timeout=min(1.0, self.probe_interval))
                    if self._stop:
                        break
                    while self._incoming:
                        self._waiting.append(self._incoming.popleft())
                if not self._has_work():  # idle and unhealthy: check again
                    self._check_health(self.last_error)
                    continue
                try:
                    self._iteration()
                    self.healthy, self.unhealthy_reason = True, None
                except Exception as exc:  # keep serving: fail the batch, reset the model state
                    log.exception("engine iteration failed")
                    self.last_error = f"{type(exc).__name__}: {exc}"
                    self._fail_all(f"internal error in the generation engine: {type(exc).__name__}")
                    self._check_health(self.last_error)
                self._flush()
        self._fail_all("the model service is shutting down")
        self._flush()

    def _has_work(self) -> bool:
        return bool(self._incoming or self._waiting or self._rows or self._prefilling)

    def _iteration(self) -> None:
        self._taken = []
        now = time.monotonic()
        self._drop_dead_waiting(now)
        for row in self._rows:
            if row.req.cancelled:
                self._finish(row, "cancelled")
            elif row.req.deadline and now > row.req.deadline:
                self._finish(row, "timeout")
        for pf in self._prefilling:
            if pf.row.req.cancelled or (pf.row.req.deadline and now > pf.row.req.deadline):
                self._finish(pf.row, "cancelled" if pf.row.req.cancelled else "timeout")
                self._prefilling = []
                self.runner.drop_prefills()
        self._remove_finished()
        segments, new = self._plan()
        if self._rows or segments:
            if self.tuner is None:
                self._step(segments, new)
            else:
                tokens = len(self._rows) + sum(len(s.tokens) for s in segments)
                self.tuner.before_step()
                t0 = time.perf_counter()
                self._step(segments, new)
                self.tuner.after_step(time.perf_counter() - t0, tokens)
        if not self._rows and not self._prefilling:
            self.runner.reset()
            self._idle_since = time.monotonic()
        self.metrics.running.set(self.num_running)
        self.metrics.waiting.set(self._n_waiting)
        cache_bytes = getattr(self.runner, "cache_bytes", None)
        if cache_bytes:
            self.metrics.kv_cache_bytes.set(cache_bytes())

    def _drop_dead_waiting(self, now: float) -> None:
        if not self._waiting:
            return
        keep: deque[GenRequest] = deque()
        for req in self._waiting:
            if req.cancelled:
                self._close(req, Delta(finish_reason="cancelled"), waiting=True)
                self.metrics.cancelled.inc()
            elif req.deadline and now > req.deadline:
                self._close(req, Delta(error="timeout"), waiting=True)
                self.metrics.timeouts.inc()
            else:
                keep.append(req)
        self._waiting = keep

    def _plan(self) -> tuple[list[Segment], list[Prefill]]:
        """Segments of the next pass: forced tokens of running rows, then prompt chunks of newcomers."""
        segments = [Segment(i, r.forced, r.cached + 1) for i, r in enumerate(self._rows) if r.forced]
        budget = self.prefill_chunk if self._rows else 4 * self.prefill_chunk
        new: list[Prefill] = []
        slot = len(self._rows)
        pending = list(self._prefilling)
        while budget > 0:
            if pending:
                pf = pending.pop(0)
            else:
                if not self._waiting or len(self._rows) + len(new) >= self.max_batch:
                    break
                if self._share_later(self._waiting[0], new):
                    break
                req = self._waiting.popleft()
                self._taken.append(req)  # answered by _fail_all if this iteration fails
                with self._cond:
                    self._n_waiting -= 1
                if req.cancelled:
                    self._close(req, Delta(finish_reason="cancelled"))
                    self.metrics.cancelled.inc()
                    continue
                self.metrics.queue_time.observe(time.monotonic() - req.arrival)
                pf = self._new_prefill(req)
                load_prefix = getattr(self.runner, "load_prefix", None)
                if load_prefix is not None:
                    pf.done = load_prefix(slot, pf.ids)
                    self.metrics.prefix_queries.inc(len(pf.ids))
                    self.metrics.prefix_hits.inc(pf.done)
            chunk = pf.ids[pf.done: pf.done + budget]
            pf.complete = pf.done + len(chunk) >= len(pf.ids)
            segments.append(Segment(slot, chunk, pf.done, want_logits=pf.complete))
            pf.done += len(chunk)
            budget -= len(chunk)
            new.append(pf)
            slot += 1
            if not pf.complete:
                break
        return segments, new

    def _share_later(self, req: GenRequest, new: list[Prefill]) -> bool:
        """Whether ``req`` should wait for the next step: it shares at least ``SHARE_MIN`` more leading
        tokens with a prompt prefilled in this step than the prefix cache holds now, so once that prompt
        is stored (end of this step) it reuses them instead of computing them a second time. A burst of
        requests with one long system prompt is then prefilled as one prompt, then the rest of each."""
        prefix_hit = getattr(self.runner, "prefix_hit", None)
        if prefix_hit is None or not new or not req.prompt_ids:
            return False
        shared = max(common_prefix(req.prompt_ids, pf.row.req.prompt_ids) for pf in new)
        if shared < SHARE_MIN:
            return False
        stored = prefix_hit(req.prompt_ids)
        return stored is not None and shared - stored >= SHARE_MIN

    def _new_prefill(self, req: GenRequest) -> Prefill:
        matcher = None
        if req.grammar is not None and req.grammar_after is None:
            matcher = self.grammars.matcher(req.grammar)
        eos = set() if req.params.ignore_eos else set(self.eos_ids)
        eos |= set(req.params.stop_token_ids)
        gen = req.params.make_generator(device="cpu")
        row = Row(req, gen, matcher, IncrementalDetokenizer(self.tokenizer, req.prompt_ids), eos)
        ids = list(req.prompt_ids)
        room = min(req.params.max_tokens, self.max_len - len(ids)) - 1  # leave room for a sampled token
        forced = self._forced(row, room)
        if forced:  # the grammar's fixed opening (e.g. '{"risk_level":') joins the prompt's prefill
            ids += forced
            row.append_forced(forced)
        return Prefill(row=row, ids=ids)

    def _step(self, segments: list[Segment], new: list[Prefill]) -> None:
        rows = self._rows
        n = len(rows)
        slots, logits = self.runner.step([r.last for r in rows], [r.cached for r in rows], segments)
        for r in rows:
            r.cached += 1 + len(r.forced)
            r.forced = []
        self.steps += 1
        self.metrics.batch_size.observe(n + sum(1 for pf in new if pf.complete))
        done = [pf for pf in new if pf.complete]
        save_prefix = getattr(self.runner, "save_prefix", None)
        for i, pf in enumerate(done):
            pf.row.cached = len(pf.ids)
            self.metrics.prompt_tokens.inc(len(pf.row.req.prompt_ids))
            if save_prefix is not None:
                save_prefix(n + i, pf.ids)
        by_slot = {n + i: pf.row for i, pf in enumerate(new)}
        if slots:
            self._process([rows[s] if s < n else by_slot[s] for s in slots], logits)
        self.runner.activate(len(done))
        self._rows.extend(pf.row for pf in done)
        self._prefilling = [pf for pf in new if not pf.complete]
        self._remove_finished()

    def _process(self, rows: list[Row], logits: torch.Tensor) -> None:
        """Grammar masks, penalties, logprobs, sampling, then per-row bookkeeping for one token each."""
        logits = logits.cpu() if logits.device.type != "cpu" else logits
        g_rows = [i for i, r in enumerate(rows) if r.matcher is not None]
        if g_rows:
            if self._bitmask.shape[0] < len(rows):
                self._bitmask = self.grammars.allocate_bitmask(len(rows))
            bitmask = self._bitmask[: len(rows)]
            for i in g_rows:
                rows[i].matcher.fill_next_token_bitmask(bitmask, i)
            apply_bitmask(logits, bitmask, g_rows)
        for i, r in enumerate(rows):
            p = r.params
            if p.presence_penalty or p.frequency_penalty:
                apply_penalties(logits, i, r.output, p.presence_penalty, p.frequency_penalty)
            if p.repetition_penalty != 1.0:
                apply_repetition_penalty(logits, i, r.seen_mask(logits.shape[-1]), p.repetition_penalty)
            if len(r.output) < p.min_tokens and r.eos:
                suppress_tokens(logits, i, r.eos)
        tokens = select_tokens(logits, [r.params for r in rows], [r.gen for r in rows])
        for i in g_rows:  # the mask can let through a token the matcher refuses: pick again (grammar.py)
            tokens[i], rows[i].refused = accept_sampled(rows[i].matcher, logits, i, tokens[i], lambda k: (
                select_tokens(logits[k:k + 1], [rows[k].params], [rows[k].gen])[0]))
        lp_rows = [i for i, r in enumerate(rows) if r.params.logprobs is not None]
        lps = compute_logprobs(logits, lp_rows, [tokens[i] for i in lp_rows],
                               [rows[i].params.logprobs or 0 for i in lp_rows])
        lp_by_row = dict(zip(lp_rows, lps, strict=True))
        now = time.monotonic()
        for i, r in enumerate(rows):
            self._advance(r, tokens[i], lp_by_row.get(i), now)

    def _forced(self, r: Row, limit: int) -> list[int]:
        """Tokens the grammar forces next (accepted into the matcher), at most ``limit``."""
        if not self.jump_forward or r.matcher is None or limit <= 0:
            return []
        # Trailing whitespace is left to the model: it would rather write ' 2' than ' ' then '2'.
        forced = r.matcher.find_jump_forward_string().rstrip()
        if not forced:
            return []
        ids = self.tokenizer.encode(forced, add_special_tokens=False)[:limit]
        for k, tok in enumerate(ids):
            if not r.matcher.accept_token(tok):
                if k:
                    r.matcher.rollback(k)
                return []
        return ids

    def _advance(self, r: Row, tok: int, lp: TokenLogprob | None, now: float) -> None:
        req = r.req
        if not r.started:
            r.started = True
            self.metrics.ttft.observe(now - req.arrival)
        else:
            self.metrics.itl.observe(now - r.last_time)
        r.last_time = now
        r.output.append(tok)
        r.last = tok
        r.unsent_ids.append(tok)
        if lp is not None:
            r.unsent_lps.append(lp)
        self.metrics.generation_tokens.inc()
        if r.refused:  # accepted into the matcher by _process unless no allowed token was left
            log.warning("grammar rejected sampled token %s (request %s)", tok, req.id)
            r.finish = "stop"
        start = len(r.text)
        if tok in r.eos:
            r.finish = r.finish or "stop"
        else:
            r.text += r.detok.add(tok)
        if r.finish is None and r.grammar_after is not None and r.grammar_after in r.text:
            # The grammar starts after the marker (e.g. '</think>'); text already past it must fit it.
            tail = r.text.split(r.grammar_after, 1)[1].lstrip()
            r.matcher = self.grammars.matcher(req.grammar)
            r.grammar_after = None
            if tail and not r.matcher.accept_string(tail):
                r.finish = "stop"
        if r.finish is None and r.matcher is not None and not r.matcher.is_terminated():
            room = min(r.params.max_tokens - len(r.output), self.max_len - r.cached - 2)
            forced = self._forced(r, room)
            if forced:
                r.append_forced(forced)
                r.forced = forced
                self.metrics.generation_tokens.inc(len(forced))
        stops_allowed = len(r.output) >= r.params.min_tokens  # as in vLLM: no stop before min_tokens
        if r.finish is None and r.params.stop and len(r.text) > start and stops_allowed:
            cut = find_stop(r.text, r.params.stop, start)
            if cut is not None:
                r.text = r.text[:cut]
                r.finish = "stop"
        if r.finish is None and r.matcher is not None and (
                r.matcher.is_terminated() or self.grammars.only_stop_allowed(r.matcher, self._scratch)):
            r.finish = "stop"
        if r.finish is None and len(r.output) >= r.params.max_tokens:
            r.finish = "length"
        if r.finish is None and r.cached + 1 + len(r.forced) >= self.max_len:
            r.finish = "length"
        end = len(r.text) if r.finish else len(r.text) - holdback(r.text, r.params.stop)
        delta = Delta(text=r.text[r.emitted:end] if end > r.emitted else "", token_ids=r.unsent_ids,
                      logprobs=r.unsent_lps, finish_reason=r.finish, prompt_tokens=len(req.prompt_ids),
                      completion_tokens=len(r.output))
        r.unsent_ids, r.unsent_lps = [], []
        r.emitted = max(r.emitted, end)
        if r.finish:
            r.forced = []
            self._complete(r)
        self._events.append((req, delta))

    def _complete(self, r: Row) -> None:
        req = r.req
        req.done = True
        self.metrics.e2e.observe(time.monotonic() - req.arrival)
        self.metrics.finished(r.finish or "stop")

    def _finish(self, r: Row, reason: str) -> None:
        """End a row early (cancelled / timeout)."""
        r.finish = reason
        r.req.done = True
        if reason == "cancelled":
            self.metrics.cancelled.inc()
            self._events.append((r.req, Delta(finish_reason="cancelled", completion_tokens=len(r.output))))
        else:
            self.metrics.timeouts.inc()
            self._events.append((r.req, Delta(error="timeout", completion_tokens=len(r.output))))

    def _remove_finished(self) -> None:
        save_prefix = getattr(self.runner, "save_prefix", None)
        i = len(self._rows) - 1
        while i >= 0:
            row = self._rows[i]
            if row.finish is not None:
                if save_prefix is not None and row.finish in ("stop", "length"):
                    # Keep the prompt and the answer so far (everything cached): a request that repeats
                    # the prompt soon after (a retry of a refused answer, the next turn of a chat) reuses
                    # it even when a wide batch has pushed the copy stored at prefill out of the store.
                    save_prefix(i, (row.req.prompt_ids + row.output)[:row.cached])
                self.runner.swap_remove(i)
                last = self._rows.pop()
                if i < len(self._rows):
                    self._rows[i] = last
            i -= 1

    def _close(self, req: GenRequest, delta: Delta, waiting: bool = False) -> None:
        req.done = True
        if waiting:
            with self._cond:
                self._n_waiting -= 1
        self._events.append((req, delta))

    def _fail_all(self, message: str) -> None:
        """Answer every request the engine holds with an error (and, when stopping, every queued one)."""
        held = [r.req for r in self._rows] + [pf.row.req for pf in self._prefilling] + self._taken
        for req in held:
            if not req.done:
                req.done = True
                self._events.append((req, Delta(error=message)))
        self._rows = []
        self._prefilling = []
        self._taken = []
        if self._stop:
            with self._cond:
                while self._incoming:
                    self._waiting.append(self._incoming.popleft())
            while self._waiting:
                self._close(self._waiting.popleft(), Delta(error=message), waiting=True)
        try:
            self.runner.drop_prefills()
            getattr(self.runner, "release", self.runner.reset)()  # after a failure, start small
        except Exception:  # pragma: no cover - best effort
            log.exception("runner reset failed")
        self._idle_since = None

    def _flush(self) -> None:
        if not self._events:
            return
        events, self._events = self._events, []
        by_loop: dict[Any, list[tuple[GenRequest, Delta]]] = {}
        for req, delta in events:
            by_loop.setdefault(req.loop, []).append((req, delta))
        for loop, items in by_loop.items():
            try:
                loop.call_soon_threadsafe(deliver, items)
            except RuntimeError:  # loop closed
                pass
