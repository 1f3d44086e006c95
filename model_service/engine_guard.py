"""The engine's fault handling: its health self-check and the guard that no client waits for ever.

After an iteration fails, :meth:`EngineGuard._check_health` runs one token through the runner with no
rows present; while that fails the engine is unhealthy (``/health`` answers 503 with the reason) and the
engine thread repeats the check every ``probe_interval`` seconds. :meth:`EngineGuard.results` is what
clients wait on: if nothing arrives for ``poll_interval`` seconds it checks that an answer can still
come, and ends the request with an error itself when the engine thread is gone or the request is
``deadline_grace`` seconds past its deadline (a step that never returns).

Memory: the runner's cache grows with the rows and contexts it holds and keeps its size between
requests (growing it again costs more than a request's prefill); after ``release_after`` seconds with no
work, :meth:`EngineGuard._release_if_idle` has the runner give it back (``runner.release``).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import AsyncIterator
from typing import Any

import torch

from model_service.generation import Delta, GenRequest
from model_service.metrics import Metrics
from model_service.runner import Segment

log = logging.getLogger("model_service.engine")


class EngineGuard:
    """Mixin of :class:`model_service.engine.Engine` (uses its runner, thread, metrics and cancel)."""

    runner: Any
    metrics: Metrics
    eos_ids: set[int]
    _thread: threading.Thread | None
    healthy: bool
    unhealthy_reason: str | None
    probe_interval: float
    poll_interval: float
    deadline_grace: float
    _next_probe: float
    release_after: float | None
    _idle_since: float | None

    def _release_if_idle(self) -> None:
        """Give back the runner's kept cache memory once the engine has been idle ``release_after`` s."""
        if (self._idle_since is None or self.release_after is None
                or time.monotonic() - self._idle_since < self.release_after):
            return
        self._idle_since = None
        release = getattr(self.runner, "release", None)
        if release is not None:
            release()
            cache_bytes = getattr(self.runner, "cache_bytes", None)
            if cache_bytes:
                self.metrics.kv_cache_bytes.set(cache_bytes())

    def cancel(self, req: GenRequest) -> None:  # pragma: no cover - provided by Engine
        raise NotImplementedError

    @property
    def alive(self) -> bool:
        """The engine thread is running."""
        return self._thread is not None and self._thread.is_alive()

    def health(self) -> tuple[bool, str | None]:
        """``(ok, reason)``: not ok when the thread is gone or the last self-check failed."""
        if not self.alive:
            return False, "the generation engine thread is not running"
        if not self.healthy:
            return False, self.unhealthy_reason or "the generation engine is failing"
        return True, None

    async def results(self, reqs: list[GenRequest]) -> AsyncIterator[Delta]:
        """Yield the deltas of submitted requests (sharing one queue) until all are finished.

        Leaving early (client gone, task cancelled) cancels whatever is still running.
        """
        queue = reqs[0].queue
        pending = {req.index: req for req in reqs}
        getter: asyncio.Future[Delta] | None = None
        try:
            while pending:
                if getter is None:
                    getter = asyncio.ensure_future(queue.get())
                done, _ = await asyncio.wait({getter}, timeout=self.poll_interval)
                if not done:  # nothing for a while: make sure an answer can still come
                    for delta in self._guard(list(pending.values())):
                        pending.pop(delta.index, None)
                        yield delta
                    continue
                delta, getter = getter.result(), None
                if delta.finish_reason is not None or delta.error is not None:
                    pending.pop(delta.index, None)
                yield delta
        finally:
            if getter is not None and not getter.done():
                getter.cancel()
            for req in reqs:
                if not req.done:
                    self.cancel(req)

    def _guard(self, reqs: list[GenRequest]) -> list[Delta]:
        """Error deltas for requests that nobody will answer: engine thread gone, or far past deadline."""
        out = []
        now = time.monotonic()
        for req in reqs:
            if not self.alive:
                self.cancel(req)
                out.append(Delta(error="the generation engine is not running", index=req.index))
            elif req.deadline is not None and now > req.deadline + self.deadline_grace:
                log.error("request %s unanswered %.0fs past its deadline (engine step stuck?)", req.id,
                          now - req.deadline)
                self.cancel(req)
                self.metrics.timeouts.inc()
                out.append(Delta(error="timeout", index=req.index))
        return out

    def _check_health(self, cause: str | None) -> None:
        """After a failure: a one-token forward pass decides whether the engine is healthy."""
        problem = self._probe()
        self._next_probe = time.monotonic() + self.probe_interval
        if problem is None:
            if not self.healthy:
                log.info("engine self-check passed; healthy again")
            self.healthy, self.unhealthy_reason = True, None
            return
        if self.healthy:
            log.error("engine self-check failed: %s", problem)
        self.healthy = False
        self.unhealthy_reason = (f"last step failed ({cause}); " if cause else "") + f"self-check: {problem}"

    def _probe(self) -> str | None:
        """Run one token through the runner with no rows present; None if it works."""
        try:
            self.runner.drop_prefills()
            self.runner.reset()
            token = min(self.eos_ids) if self.eos_ids else 0
            slots, logits = self.runner.step([], [], [Segment(0, [token], 0)])
            if list(slots) != [0] or bool(torch.isnan(logits).any()):
                return "the forward pass gave no usable logits"
            return None
        except Exception as exc:
            return f"{type(exc).__name__}: {exc}"
        finally:
            try:
                self.runner.drop_prefills()
                self.runner.reset()
            except Exception:  # pragma: no cover - best effort
                log.exception("runner reset failed")
