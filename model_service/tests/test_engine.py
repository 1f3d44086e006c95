"""In-process checks of the runners and the scheduler with the real embedded model."""

from __future__ import annotations

import asyncio
import time

import pytest
import torch

from model_service.engine import Engine, GenRequest
from model_service.fast_llama import FastLlamaRunner
from model_service.grammar import GrammarService
from model_service.hf_runner import HFRunner
from model_service.loader import load_model
from model_service.metrics import Metrics
from model_service.sampling import SamplingParams

PROMPTS = ["Hello there, how are you doing today?", "1 2 3 4",
           "Explain photosynthesis to a child in simple words."]


@pytest.fixture(scope="module")
def loaded():
    torch.set_num_threads(2)
    return load_model(None)


def _reference_last_logits(model, ids):
    with torch.inference_mode():
        return model(torch.tensor([ids])).logits[0, -1]


@pytest.mark.parametrize("runner_cls", [FastLlamaRunner, HFRunner])
def test_runner_matches_plain_forward_with_chunks_batching_and_removal(loaded, runner_cls):
    tok, model = loaded.tokenizer, loaded.model
    ids = [tok.encode(p) for p in PROMPTS]
    runner = runner_cls(model, max_batch=4, max_len=512)
    with torch.inference_mode():
        for x in ids:  # chunked prefill: 3 tokens, then the rest
            runner.prefill(x[:3], 0, want_logits=False)
            last = runner.prefill(x[3:], 3, want_logits=True)
            runner.activate()
            assert (last - _reference_last_logits(model, x)).abs().max() < 1e-3
        nxt = [7, 8, 9]
        logits = runner.decode(torch.tensor(nxt), torch.tensor([len(x) for x in ids]))
        for i, x in enumerate(ids):
            assert (logits[i] - _reference_last_logits(model, x + [nxt[i]])).abs().max() < 1e-3
        runner.swap_remove(0)  # row 2 moves into slot 0
        logits = runner.decode(torch.tensor([5, 6]), torch.tensor([len(ids[2]) + 1, len(ids[1]) + 1]))
        assert (logits[0] - _reference_last_logits(model, ids[2] + [9, 5])).abs().max() < 1e-3
        assert (logits[1] - _reference_last_logits(model, ids[1] + [8, 6])).abs().max() < 1e-3


def test_fast_runner_cache_grows_and_shrinks(loaded):
    runner = FastLlamaRunner(loaded.model, max_batch=16, max_len=1024, init_rows=2, init_len=16)
    small = runner.cache_bytes()
    with torch.inference_mode():
        for _ in range(5):
            runner.prefill(list(range(100, 140)), 0, want_logits=True)
            runner.activate()
    assert runner.cache_bytes() > small
    with pytest.raises(ValueError):
        runner._ensure(64, 10)  # beyond max_batch + 1 rows: memory stays bounded
    grown = runner.cache_bytes()
    runner.reset()  # no row left: the cache keeps its size for the next ones
    assert runner.cache_bytes() == grown and runner.n_active == 0
    runner.release()
    assert runner.cache_bytes() == small
    for rows, expected in ((3, 4), (5, 8), (9, 17)):  # doubling, but 16 of 17 rows would leave one
        runner._ensure(rows, 16)                        # for a second full copy later: all 17 at once
        assert runner.kv.shape[2] == expected


def test_engine_keeps_the_cache_between_requests_and_releases_it_when_idle(loaded):
    tok = loaded.tokenizer
    runner = FastLlamaRunner(loaded.model, max_batch=4, max_len=512, init_rows=1, init_len=8)
    small = runner.cache_bytes()
    grammars = GrammarService(loaded.tokenizer, loaded.model.config.vocab_size, loaded.eos_token_ids)
    engine = Engine(runner, tok, grammars, Metrics("test-release"), eos_ids=loaded.eos_token_ids,
                    max_batch=4, max_queue=16, max_len=512)
    engine.release_after = 1.5
    engine.start()

    async def one():
        params = SamplingParams(max_tokens=4, temperature=0.0, ignore_eos=True)
        req = GenRequest(tok.encode(PROMPTS[2]), params)
        engine.submit([req])
        return [d async for d in engine.results([req])]

    try:
        asyncio.run(one())
        kept = runner.cache_bytes()
        assert kept > small and runner.n_active == 0  # done, and the grown cache is kept
        asyncio.run(one())
        assert runner.cache_bytes() == kept  # the second request reused it
        deadline = time.monotonic() + 10
        while runner.cache_bytes() != small and time.monotonic() < deadline:
            time.sleep(0.1)
        assert runner.cache_bytes() == small  # idle past release_after: given back
    finally:
        engine.stop()


def _run_engine(loaded, runner, requests, **kw):
    grammars = GrammarService(loaded.tokenizer, loaded.model.config.vocab_size, loaded.eos_token_ids)
    engine = Engine(runner, loaded.tokenizer, grammars, Metrics("test"), eos_ids=loaded.eos_token_ids,
                    max_batch=4, max_queue=16, max_len=512, **kw)
    engine.start()

    async def go():
        reqs = [GenRequest(ids, params, timeout=timeout) for ids, params, timeout in requests]
        engine.submit(reqs)
        out = []
        for r in reqs:
            text, finish, error = "", None, None
            async for d in engine.results([r]):
                text += d.text
                finish, error = d.finish_reason or finish, d.error or error
            out.append((text, finish, error))
        return out

    try:
        return asyncio.run(go())
    finally:
        engine.stop()


def test_continuous_batching_matches_single_requests_on_both_runners(loaded):
    tok = loaded.tokenizer
    reqs = [(tok.encode(p), SamplingParams(max_tokens=n, temperature=0.0, ignore_eos=True), None)
            for p, n in zip(PROMPTS + PROMPTS[:2], [6, 9, 4, 7, 5], strict=True)]
    batched = _run_engine(loaded, FastLlamaRunner(loaded.model, max_batch=4, max_len=512), reqs)
    single = [_run_engine(loaded, FastLlamaRunner(loaded.model, max_batch=4, max_len=512), [r])[0]
              for r in reqs[:3]]
    hf = _run_engine(loaded, HFRunner(loaded.model, max_batch=4, max_len=512), reqs[:3])
    assert [b[0] for b in batched[:3]] == [s[0] for s in single] == [h[0] for h in hf]
    assert all(b[1] == "length" for b in batched)


def test_prefix_reuse_and_thread_tuning_keep_greedy_outputs(loaded):
    """Prompts sharing a chat prefix that ends inside a block, batched with the prefix cache on and the
    thread count switching between 1 and 2 (explored every few steps), give the texts each gives alone
    with neither."""
    tok = loaded.tokenizer
    system = "<|im_start|>system\nYou are a concise assistant. Reply briefly.<|im_end|>\n<|im_start|>user\n"
    users = ["Name a colour.", "What is 7 times 6?", "Say hello to Amira.", "Give a title for a story.",
             "Name a fruit.", "What is 2 plus 2?"]
    reqs = [(tok.encode(system + u + "<|im_end|>\n<|im_start|>assistant\n"),
             SamplingParams(max_tokens=n, temperature=0.0), None) for u, n in zip(users, [8, 12, 6, 10, 7, 9],
                                                                                   strict=True)]
    runner = FastLlamaRunner(loaded.model, max_batch=4, max_len=512, prefix_cache_bytes=64 << 20)
    grammars = GrammarService(loaded.tokenizer, loaded.model.config.vocab_size, loaded.eos_token_ids)
    engine = Engine(runner, tok, grammars, Metrics("test"), eos_ids=loaded.eos_token_ids, max_batch=4,
                    max_queue=16, max_len=512, threads=2, adaptive_threads=True)
    engine.tuner.explore_every, engine.tuner.explore_steps = 3, 1
    engine.start()

    async def go():
        gens = [GenRequest(ids, params) for ids, params, _ in reqs]
        engine.submit(gens)
        out = []
        for g in gens:
            text = ""
            async for d in engine.results([g]):
                text += d.text
            out.append(text)
        return out

    try:
        batched = asyncio.run(go())
    finally:
        engine.stop()
        torch.set_num_threads(2)
    assert engine.metrics.prefix_hits._value.get() >= 2 * 18  # prompts 5 and 6 reused the shared part
    assert {c for c in engine.tuner.cost if engine.tuner.cost[c] is not None} == {1, 2}
    single = [_run_engine(loaded, FastLlamaRunner(loaded.model, max_batch=4, max_len=512), [r])[0][0]
              for r in reqs]
    assert batched == single and all(batched)


def test_a_burst_sharing_a_long_prefix_computes_it_once(loaded):
    """Requests that arrive together with one long system prompt: the first is prefilled alone, the
    others wait one step and reuse its keys/values (prefilled tokens counted at the runner); their
    answers are those each gives alone. With the prefix cache off nobody waits."""
    tok = loaded.tokenizer
    system = "You are a careful credit analyst. Answer in plain words, citing the figures given. " * 4
    reqs = [(tok.encode(system + f"Case {k}: income {k * 700} a month, {k} loans."),
             SamplingParams(max_tokens=5, temperature=0.0, ignore_eos=True), None) for k in range(1, 5)]
    shared = min(next(i for i, (x, y) in enumerate(zip(reqs[0][0], r[0], strict=False)) if x != y)
                 for r in reqs[1:])
    assert shared >= 64

    def run(prefix_bytes):
        runner = FastLlamaRunner(loaded.model, max_batch=4, max_len=512, prefix_cache_bytes=prefix_bytes)
        steps = []
        step = runner.step

        def counting(tokens, positions, segments):
            steps.append([len(s.tokens) for s in segments if s.slot >= len(tokens)])
            return step(tokens, positions, segments)

        runner.step = counting
        return _run_engine(loaded, runner, reqs), steps

    texts, steps = run(64 << 20)
    total = sum(len(ids) for ids, _, _ in reqs)
    assert steps[0] == [len(reqs[0][0])] and len(steps[1]) == 3  # one prompt, then the other three
    assert sum(map(sum, steps)) <= total - 3 * shared
    plain, plain_steps = run(0)
    assert plain_steps[0] == [len(ids) for ids, _, _ in reqs]  # no cache: all four in the first step
    single = [_run_engine(loaded, FastLlamaRunner(loaded.model, max_batch=4, max_len=512), [r])[0][0]
              for r in reqs]
    assert [t[0] for t in texts] == [t[0] for t in plain] == single


def test_a_finished_request_stays_in_the_prefix_store_for_its_retry(loaded):
    """A wide batch pushes the copy of a prompt stored at prefill out of a small prefix store; the row's
    prompt and answer are stored again when it finishes, so a retry of the same prompt, or a next turn
    that extends prompt and answer, reuses them and answers exactly as without the cache."""
    tok = loaded.tokenizer
    first = tok.encode("You are a careful credit analyst. Case A: stable job for nine years, two small loans "
                       "paid on time, no arrears, savings of four months' income, renting a flat.")
    others = [tok.encode(f"Unrelated request {k}: describe a {w} in one sentence, in plain words for a "
                         "child, without numbers, names or lists, and end with a question.")
              for k, w in enumerate(["river", "bridge", "forest"])]
    long, short = (SamplingParams(max_tokens=n, temperature=0.0, ignore_eos=True) for n in (24, 4))

    def run(budget, requests):
        runner = FastLlamaRunner(loaded.model, max_batch=4, max_len=512, prefix_cache_bytes=budget)
        grammars = GrammarService(tok, loaded.model.config.vocab_size, loaded.eos_token_ids)
        engine = Engine(runner, tok, grammars, Metrics("test"), eos_ids=loaded.eos_token_ids, max_batch=4,
                        max_queue=16, max_len=512)
        engine.start()

        async def go():
            out = []
            for wave in requests:  # each wave waits for the one before
                reqs = [GenRequest(ids, params) for ids, params in wave]
                engine.submit(reqs)
                texts = []
                for r in reqs:
                    text, ids = "", []
                    async for d in engine.results([r]):
                        text += d.text
                        ids += d.token_ids or []
                    texts.append((text, ids))
                out.append((texts, engine.metrics.prefix_hits._value.get()))
            return out

        try:
            return asyncio.run(go())
        finally:
            engine.stop()

    assert min(len(ids) for ids in [first, *others]) >= 32
    token_bytes = FastLlamaRunner(loaded.model, max_batch=1, max_len=64)._token_bytes()
    budget = 2 * (len(first) + 24) * token_bytes  # two entries of this size at most
    wave1 = [(first, long)] + [(ids, short) for ids in others]  # the others evict A's prefill copy
    [(texts, hits1), (retry, hits2)] = run(budget, [wave1, [(first, long)]])
    assert hits2 - hits1 == len(first) - 1  # the retry computes only the last prompt token
    assert retry[0][0] == texts[0][0]
    answer = texts[0][1]
    assert len(answer) == 24
    follow = first + answer + tok.encode(" Next case B: new job.")
    [(_, h1), (turn, h2)] = run(budget, [wave1, [(follow, short)]])
    assert h2 - h1 >= len(first) + len(answer) - 1  # prompt and answer (all but the last token, never fed)
    [(plain, _)] = run(0, [[(follow, short)]])
    assert turn[0][0] == plain[0][0]


def test_timeout_while_running(loaded):
    tok = loaded.tokenizer
    params = SamplingParams(max_tokens=400, temperature=0.0, ignore_eos=True)
    [(text, finish, error)] = _run_engine(loaded, FastLlamaRunner(loaded.model, max_batch=4, max_len=512),
                                          [(tok.encode("Tell me"), params, 0.3)])
    assert error == "timeout"


def test_prefix_cache_reuse_gives_the_same_logits(loaded):
    tok, model = loaded.tokenizer, loaded.model
    shared = tok.encode("You are a careful credit analyst. Answer in JSON. " * 6)
    a, b = shared + tok.encode("Case A: stable job."), shared + tok.encode("Case B: many debts.")
    runner = FastLlamaRunner(model, max_batch=4, max_len=512, prefix_cache_bytes=64 << 20)
    with torch.inference_mode():
        assert runner.load_prefix(0, a) == 0
        runner.prefill(a, 0, want_logits=True)
        runner.save_prefix(0, a)
        runner.activate()
        reused = runner.load_prefix(1, b)  # token-granular: the whole shared text, not whole blocks only
        common = next(i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y)
        assert reused == common >= len(shared) and len(shared) % runner.prefixes.block != 0
        logits = runner.prefill(b[reused:], reused, want_logits=True)
    assert (logits - _reference_last_logits(model, b)).abs().max() < 1e-3


def test_prefix_store_is_bounded_and_exact():
    from model_service.prefix_cache import PrefixStore

    kv = torch.zeros(1, 2, 1, 64, 4)  # 2 KiB per entry
    store = PrefixStore(budget_bytes=kv.numel() * 4 * 2, block=32)
    first, second, third = list(range(64)), list(range(100, 164)), list(range(200, 264))
    store.add(first, kv.clone())
    store.add(second, kv.clone())
    assert store.lookup(first + [1, 2], 66)[1] == 64
    store.add(third, kv.clone())  # over budget: the least recently used (second) goes
    assert store.lookup(second, 64) is None and store.lookup(first, 64) is not None
    assert store.bytes <= store.budget
    assert store.lookup(first[:31] + [999] + first[32:], 64) is None  # a different token: no reuse


def test_prefix_store_reuses_up_to_the_first_different_token():
    from model_service.prefix_cache import PrefixStore

    store = PrefixStore(budget_bytes=1 << 20, block=16)
    stored = list(range(40))
    store.add(stored, torch.zeros(1, 2, 1, 40, 4))
    assert store.lookup(stored[:24] + [999] * 20, 44)[1] == 24  # one whole block, then 8 single tokens
    assert store.lookup(stored + [1, 2, 3], 43)[1] == 40  # never past the stored tokens
    assert store.lookup(stored, 30)[1] == 30  # nor past the limit (the last prompt token is computed)
    assert store.lookup(stored[:10] + [999] * 30, 40) is None  # no whole block in common: no reuse
    assert store.covered(stored) == 40


def test_prefix_store_drops_an_entry_a_longer_one_extends():
    from model_service.prefix_cache import PrefixStore

    store = PrefixStore(budget_bytes=1 << 20, block=16)
    prompt, other = list(range(40)), list(range(30)) + [999] * 10
    store.add(prompt, torch.zeros(1, 2, 1, 40, 4))
    store.add(other, torch.zeros(1, 2, 1, 40, 4))  # shares one block only: kept
    store.add(prompt + [7] * 20, torch.zeros(1, 2, 1, 60, 4))  # the prompt and its answer
    assert len(store._entries) == 2 and store.bytes == (40 + 60) * 2 * 4 * 4
    assert store.lookup(prompt + [7] * 20 + [1], 61)[1] == 60 and store.lookup(other, 40)[1] == 40


def test_loads_a_gguf_file_and_a_hf_folder(loaded):
    from model_service.loader import embedded_model_file

    gguf = embedded_model_file()
    by_file = load_model(str(gguf))
    assert by_file.model_id == "SmolLM2-135M-Instruct" and by_file.source == str(gguf)
    folder = next(n for n in loaded.notes if "de-quantised into" in n).split(" into ", 1)[1]
    by_folder = load_model(folder, served_model_name="my-model")
    assert by_folder.model_id == "my-model" and by_folder.max_model_len == 8192
    assert str(by_folder.dtype) == "torch.float32" and by_folder.eos_token_ids == loaded.eos_token_ids


# the manufacturing explanation's text pattern: a CJK range with a bounded repetition
CJK_TEXT = ("^[A-Za-z0-9\u4e00-\u9fff\u3001\u3002\uff0c\uff1b\uff1a\uff08\uff09\u03c3\u00b0 "
            ",.;:'()%/+_<>=-]{4,160}$")


def test_a_token_the_mask_allows_but_the_matcher_refuses_is_picked_again(loaded, monkeypatch):
    import json
    import re

    import jsonschema

    from model_service import engine as engine_module

    tok = loaded.tokenizer
    bracket = tok.encode(" [", add_special_tokens=False)
    assert len(bracket) == 1
    bracket = bracket[0]
    schema = {"type": "object", "properties": {"action": {"type": "string", "pattern": CJK_TEXT}},
              "required": ["action"], "additionalProperties": False}
    grammars = GrammarService(tok, loaded.model.config.vocab_size, loaded.eos_token_ids)
    compiled = grammars.json_schema(schema)
    # xgrammar 0.2.9: inside such a string the mask lets " [" through and the matcher refuses it
    matcher = grammars.matcher(compiled)
    assert all(matcher.accept_token(t) for t in tok.encode('{"action": "check it', add_special_tokens=False))
    mask = grammars.allocate_bitmask(1)
    matcher.fill_next_token_bitmask(mask, 0)
    mask_allows = bool((int(mask[0, bracket // 32]) >> (bracket % 32)) & 1)
    picked = []
    real = engine_module.select_tokens

    def prefer_the_bracket(logits, params, gens):  # the model's favourite, wherever the mask allows it
        logits[:, bracket] = torch.where(torch.isfinite(logits[:, bracket]), 1e4, logits[:, bracket])
        out = real(logits, params, gens)
        picked.extend(out)
        return out

    monkeypatch.setattr(engine_module, "select_tokens", prefer_the_bracket)
    chat = tok.apply_chat_template([{"role": "user", "content": "Say what to do with the pump."}],
                                   add_generation_prompt=True, tokenize=False)
    ids = tok.encode(chat, add_special_tokens=False)

    def run():
        eng = Engine(FastLlamaRunner(loaded.model, max_batch=4, max_len=512), tok, grammars,
                     Metrics("refused"), eos_ids=loaded.eos_token_ids, max_batch=4, max_queue=4, max_len=512)
        eng.start()

        async def go():
            req = GenRequest(ids, SamplingParams(max_tokens=60, temperature=0.0), grammar=compiled)
            eng.submit([req])
            text, finish = "", None
            async for d in eng.results([req]):
                text += d.text
                finish = d.finish_reason or finish
            return text, finish

        try:
            return asyncio.run(go())
        finally:
            eng.stop()

    text, finish = run()
    if mask_allows:  # the library's bug is there: the engine met it and recovered
        assert bracket in picked
    assert finish == "stop", text
    answer = json.loads(text)
    jsonschema.validate(answer, schema)
    assert re.fullmatch(CJK_TEXT, answer["action"])
