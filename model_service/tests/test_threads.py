"""The engine's intra-op thread choice (``--threads auto``): it keeps the faster candidate and follows
a change in which one is faster (a machine that becomes busy or idle)."""

from __future__ import annotations

import pytest
import torch

from model_service.cli import config_from_args
from model_service.threads import ThreadTuner, step_work


@pytest.fixture(autouse=True)
def _restore_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def _run(tuner: ThreadTuner, seconds_per_work: dict[int, float], steps: int, tokens: int = 16) -> list[int]:
    used = []
    for _ in range(steps):
        threads = tuner.before_step()
        assert torch.get_num_threads() == threads
        used.append(threads)
        tuner.after_step(seconds_per_work[threads] * step_work(tokens), tokens)
    return used


def test_keeps_the_faster_count_and_follows_a_change():
    tuner = ThreadTuner(2, explore_every=10, explore_steps=2)
    used = _run(tuner, {1: 0.05, 2: 0.30}, 200)  # a busy machine: one thread is faster
    assert tuner.best == 1 and used[-10:].count(1) >= 7
    # the other count is still tried now and then, 6x less often since it was 6x slower
    assert 3 <= used[20:].count(2) <= 3 * (2 + 1) * 180 // (10 * 6) + 3
    used = _run(tuner, {1: 0.30, 2: 0.05}, 150)  # the machine went idle: two threads are faster
    assert tuner.best == 2 and used[-10:].count(2) >= 7
    assert tuner.state()["threads"] == tuner.current and tuner.state()["mode"] == "auto"


def test_steps_of_different_sizes_compare_by_work():
    tuner = ThreadTuner(2, explore_every=8, explore_steps=2)
    for i in range(80):  # 2 threads: 20 % faster for every step size; sizes alternate
        tokens = 1 if i % 2 else 300
        threads = tuner.before_step()
        tuner.after_step((0.08 if threads == 2 else 0.1) * step_work(tokens), tokens)
    assert tuner.best == 2


def test_one_core_leaves_nothing_to_choose():
    tuner = ThreadTuner(1)
    assert not tuner.active and _run(tuner, {1: 0.1}, 5) == [1] * 5


def test_threads_flag():
    auto = config_from_args([])
    assert auto.threads_auto and auto.threads >= 1
    fixed = config_from_args(["--threads", "1"])
    assert not fixed.threads_auto and fixed.threads == 1
    with pytest.raises(SystemExit):
        config_from_args(["--threads", "many"])
    with pytest.raises(SystemExit):
        config_from_args(["--threads", "0"])
