"""Choosing torch's intra-op thread count for the engine by measurement (``--threads auto``).

On a small CPU shared with other processes (the web app, workers, Redis, test runs), two OpenMP
threads can be far slower than one: every matrix product ends in a barrier, and when the second
thread has lost its core to another process the first waits for a scheduler tick. Measured on the
2-core machine with a load average of 7.5: a 16-row decode step took 3.6 s with two threads and
0.5 s with one; on an idle machine two threads are 1.5-1.8x faster than one. Neither setting is right
all the time, so the engine measures: it runs with one candidate, spends a few steps on the other
now and then, and keeps whichever costs less per unit of work (an exponential moving average of step
time over a rough cost model of the step, so that steps of different sizes compare).
"""

from __future__ import annotations

import torch


def step_work(tokens: int) -> float:
    """Rough relative cost of a forward pass over ``tokens`` tokens (decode rows plus prompt tokens):
    one row costs 1 (weights read once), every further token about 1/20 more (measured on CPU: 16 rows
    ~1.8, 512 prompt tokens ~22-27)."""
    return 1.0 + max(0, tokens - 1) / 20.0


class ThreadTuner:
    """Keeps the faster of 1 and ``max_threads`` intra-op threads for the calling thread (see module doc).

    ``before_step()`` sets the thread count for the next step and returns it; ``after_step(seconds,
    tokens)`` records how long that step took. Every ``explore_every`` steps the other candidate runs
    ``explore_steps`` steps (the first one after a switch is not scored: thread start-up); when the
    other was k times slower last time, it is tried k times less often (k at most ``max_backoff``), so
    that exploring costs at most about ``explore_steps / explore_every`` of the time."""

    def __init__(self, max_threads: int, *, explore_every: int = 40, explore_steps: int = 4,
                 alpha: float = 0.25, max_backoff: float = 8.0):
        self.candidates = sorted({1, max(1, max_threads)})
        self.best = self.candidates[-1]
        self.current = 0  # what torch is set to (0: not set yet)
        self.cost: dict[int, float | None] = {c: None for c in self.candidates}
        self.explore_every = explore_every
        self.explore_steps = explore_steps
        self.alpha = alpha
        self.max_backoff = max_backoff
        self._since_explore = 0
        self._exploring = 0  # steps of exploration left
        self._fresh = False  # the step just run followed a switch
        self.switches = 0

    @property
    def active(self) -> bool:
        """False when there is nothing to choose (one usable core)."""
        return len(self.candidates) > 1

    def _other(self) -> int:
        return next(c for c in self.candidates if c != self.best)

    def _backoff(self) -> float:
        """How many times slower the other candidate was (1 to ``max_backoff``)."""
        best, other = self.cost[self.best], self.cost[self._other()]
        if not best or other is None:
            return 1.0
        return min(self.max_backoff, max(1.0, other / best))

    def before_step(self) -> int:
        """Pick (and apply) the thread count for the next step."""
        want = self.best
        if self.active:
            if self._exploring == 0 and (self.cost[self._other()] is None
                                         or self._since_explore >= self.explore_every * self._backoff()):
                self._exploring = self.explore_steps + 1  # +1: the unscored first step
                self._since_explore = 0
            if self._exploring:
                want = self._other()
        if want != self.current:
            torch.set_num_threads(want)
            self._fresh = self.current != 0
            self.current = want
        else:
            self._fresh = False
        return want

    def after_step(self, seconds: float, tokens: int) -> None:
        """Record the step just run; switch when the other candidate has been cheaper."""
        if not self.active:
            return
        if self._exploring:
            self._exploring -= 1
        else:
            self._since_explore += 1
        if self._fresh:
            return
        per_work = seconds / step_work(tokens)
        old = self.cost[self.current]
        self.cost[self.current] = per_work if old is None else old + self.alpha * (per_work - old)
        other = self._other()
        if (self._exploring == 0 and self.cost[other] is not None and self.cost[self.best] is not None
                and self.cost[other] < self.cost[self.best]):
            self.best = other
            self.switches += 1

    def state(self) -> dict:
        """For ``/health``: the thread count in use and the measured cost per unit of work."""
        return {"threads": self.current or self.best, "mode": "auto" if self.active else "fixed",
                "ms_per_work": {str(k): (round(v * 1000, 2) if v is not None else None)
                                for k, v in self.cost.items()}}
