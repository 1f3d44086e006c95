"""Engine faults: every request is answered when a step fails, no client waits for ever, /health tells.

These run in-process on a tiny random Llama (see ``tiny.py``); every wait is bounded, so a regression
fails instead of hanging the test session.
"""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
import torch

from model_service.engine import Engine, GenRequest
from model_service.grammar import GrammarService
from model_service.metrics import Metrics
from model_service.runner import make_runner
from model_service.sampling import SamplingParams
from model_service.tests.tiny import FaultyRunner, asgi_call, smollm2_tokenizer, tiny_model, tiny_service


@pytest.fixture(scope="module")
def tok():
    torch.set_num_threads(1)
    return smollm2_tokenizer()


@pytest.fixture(scope="module")
def grammars(tok):
    return GrammarService(tok, len(tok), [tok.eos_token_id])


@pytest.fixture(scope="module")
def model(tok):
    return tiny_model("llama", vocab_size=len(tok))


def _engine(tok, grammars, model, **kw) -> tuple[Engine, FaultyRunner]:
    runner = FaultyRunner(make_runner(model, multi_device=False, max_batch=4, max_len=256))
    engine = Engine(runner, tok, grammars, Metrics("test"), eos_ids=[tok.eos_token_id], max_batch=4,
                    max_queue=16, max_len=256, threads=1, **kw)
    return engine, runner


async def _collect(engine: Engine, reqs: list[GenRequest]) -> list[tuple[str | None, str | None]]:
    out: dict[int, tuple[str | None, str | None]] = {}
    async for d in engine.results(reqs):
        if d.finish_reason or d.error:
            out[d.index] = (d.finish_reason, d.error)
    return [out.get(r.index, (None, None)) for r in reqs]


def _params(n: int = 40) -> SamplingParams:
    return SamplingParams(max_tokens=n, temperature=0.0, ignore_eos=True)


def test_failed_step_answers_every_request_taken_from_the_queue(tok, grammars, model):
    engine, runner = _engine(tok, grammars, model)
    engine.start()

    async def go():
        # A request admitted in the failing step (prefill) is in neither _rows nor _prefilling.
        runner.fail = True
        first = [GenRequest([5, 6, 7, 8], _params(), index=0)]
        engine.submit(first)
        failed = await asyncio.wait_for(_collect(engine, first), 10)
        # A running row and a newcomer taken from the queue in the same failing step.
        runner.fail = False
        queue: asyncio.Queue = asyncio.Queue()
        running = GenRequest([9, 10, 11], SamplingParams(max_tokens=200, temperature=0.0, ignore_eos=True),
                             index=0, queue=queue)
        engine.submit([running])
        while runner.steps < 3:
            await asyncio.sleep(0.01)
        newcomer = GenRequest([12, 13, 14, 15, 16], _params(), index=1, queue=queue)
        runner.fail = True
        engine.submit([newcomer])
        both = await asyncio.wait_for(_collect(engine, [running, newcomer]), 10)
        runner.fail = False
        after = [GenRequest([5, 6, 7], _params(4), index=0)]
        engine.submit(after)
        ok = await asyncio.wait_for(_collect(engine, after), 10)
        return failed, both, ok

    try:
        failed, both, ok = asyncio.run(go())
    finally:
        engine.stop()
    assert failed[0][1] and "internal error" in failed[0][1]
    assert all(error and "internal error" in error for _, error in both), both
    assert ok == [("length", None)]  # and the engine goes on serving
    assert engine.num_waiting == 0 and engine.num_running == 0


def test_stop_answers_running_waiting_and_just_submitted_requests(tok, grammars, model):
    engine, runner = _engine(tok, grammars, model)
    runner.hang = threading.Event()
    engine.start()

    async def go():
        queue: asyncio.Queue = asyncio.Queue()
        first = GenRequest([5, 6, 7], _params(), index=0, queue=queue)
        engine.submit([first])
        while runner.steps < 1:  # the engine thread is inside a step now
            await asyncio.sleep(0.01)
        later = GenRequest([8, 9], _params(), index=1, queue=queue)
        engine.submit([later])  # still in the incoming queue when the engine stops
        stopper = threading.Thread(target=engine.stop)
        stopper.start()
        await asyncio.sleep(0.2)
        runner.hang.set()
        result = await asyncio.wait_for(_collect(engine, [first, later]), 10)
        stopper.join(10)
        return result

    results = asyncio.run(go())
    assert all(error == "the model service is shutting down" for _, error in results), results


def test_results_guard_when_the_engine_thread_is_not_running(tok, grammars, model):
    engine, _ = _engine(tok, grammars, model)
    engine.poll_interval = 0.1  # never started: nobody will ever answer

    async def go():
        reqs = [GenRequest([5, 6, 7], _params(), index=0)]
        engine.submit(reqs)
        return await asyncio.wait_for(_collect(engine, reqs), 10)

    [(finish, error)] = asyncio.run(go())
    assert finish is None and error and "not running" in error


def test_results_guard_ends_a_request_stuck_past_its_deadline(tok, grammars, model):
    engine, runner = _engine(tok, grammars, model)
    engine.poll_interval, engine.deadline_grace = 0.1, 0.3
    runner.hang = threading.Event()  # the engine thread blocks inside a step
    engine.start()

    async def go():
        reqs = [GenRequest([5, 6, 7], _params(), index=0, timeout=0.5)]
        engine.submit(reqs)
        started = time.monotonic()
        result = await asyncio.wait_for(_collect(engine, reqs), 10)
        return result, time.monotonic() - started

    try:
        [(finish, error)], waited = asyncio.run(go())
    finally:
        runner.hang.set()
        engine.stop()
    assert error == "timeout" and waited < 5


def test_health_is_503_with_the_reason_while_the_engine_is_broken():
    service = tiny_service(runner_wrapper=FaultyRunner)
    service.engine.probe_interval = 0.2
    runner = service.engine.runner
    body = {"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 3, "temperature": 0}

    async def go(client):
        first = await client.get("/health")
        runner.fail = True
        failed = await client.post("/v1/chat/completions", json=body)
        broken = await client.get("/health")
        runner.fail = False
        for _ in range(100):  # the engine probes itself and recovers without traffic
            healed = await client.get("/health")
            if healed.status_code == 200:
                break
            await asyncio.sleep(0.05)
        served = await client.post("/v1/chat/completions", json=body)
        return first, failed, broken, healed, served

    first, failed, broken, healed, served = asgi_call(service, go)
    assert first.status_code == 200 and first.json()["status"] == "ok"
    assert failed.status_code == 500 and failed.json()["error"]["type"] == "internal_error"
    assert broken.status_code == 503, broken.text
    assert broken.json()["status"] == "error"
    assert "injected runner fault" in broken.json()["reason"]
    assert healed.status_code == 200 and healed.json()["status"] == "ok"
    assert served.status_code == 200, served.text
