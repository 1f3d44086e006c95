"""Where the model service's engine spends its time, without HTTP: the forward pass (``runner.step``)
against the rest of an iteration (grammar masks, penalties, sampling, detokenising, bookkeeping).

Loads the embedded model, builds the fused runner and the engine in this process, submits
``3 x width`` unique chat prompts at once (greedy, ``ignore_eos``, ``max_tokens`` uniform in 32..128,
the same draws for every width) and prints, per width: wall time, generated tokens/s, the share of
wall time in ``runner.step`` and in ``Engine._process``, the mean rows per step, and the tokens/s ratio
over width 1.

    .venv/bin/python benchmarks/engine_profile.py            # widths 1 and 16, ~1 minute on 2 cores
    .venv/bin/python benchmarks/engine_profile.py --widths 1,4,16
    .venv/bin/python benchmarks/engine_profile.py --matmul-dtype bfloat16
"""
from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

WORDS = ("alpha beta gamma delta engine sensor pressure vibration bearing turbine cycle drift temperature "
         "valve pump flow rotor shaft seal load").split()


def prompts(tok, n: int) -> list[list[int]]:
    rng = random.Random(0)
    out = []
    for i in range(n):
        body = " ".join(rng.choice(WORDS) for _ in range(rng.randint(10, 60)))
        msgs = [{"role": "system", "content": "You are a concise assistant of an industry suite."},
                {"role": "user", "content": f"Request {i}: summarise in two sentences: {body}"}]
        text = tok.apply_chat_template(msgs, add_generation_prompt=True, tokenize=False)
        out.append(tok.encode(text, add_special_tokens=False))
    return out


def run(loaded, width: int, ids: list[list[int]], budgets: list[int], threads: int,
        matmul_dtype: str = "float32") -> dict:
    from model_service.engine import Engine
    from model_service.fast_llama import FastLlamaRunner
    from model_service.generation import GenRequest
    from model_service.grammar import GrammarService
    from model_service.metrics import Metrics
    from model_service.sampling import SamplingParams

    runner = FastLlamaRunner(loaded.model, max_batch=width, max_len=1024, matmul_dtype=matmul_dtype)
    spent = {"step": 0.0, "process": 0.0, "steps": 0, "rows": 0}
    step = runner.step

    def timed_step(last, cached, segments):
        t = time.perf_counter()
        out = step(last, cached, segments)
        spent["step"] += time.perf_counter() - t
        spent["steps"] += 1
        spent["rows"] += len(last)
        return out

    runner.step = timed_step
    grammars = GrammarService(loaded.tokenizer, loaded.model.config.vocab_size, loaded.eos_token_ids)
    engine = Engine(runner, loaded.tokenizer, grammars, Metrics("profile"), eos_ids=loaded.eos_token_ids,
                    max_batch=width, max_queue=1024, max_len=1024, threads=threads)
    process = engine._process

    def timed_process(rows, logits):
        t = time.perf_counter()
        process(rows, logits)
        spent["process"] += time.perf_counter() - t

    engine._process = timed_process
    engine.start()

    async def go():
        reqs = [GenRequest(p, SamplingParams(max_tokens=m, temperature=0.0, ignore_eos=True))
                for p, m in zip(ids, budgets, strict=True)]
        t0 = time.perf_counter()
        engine.submit(reqs)

        async def one(r):
            n = 0
            async for d in engine.results([r]):
                n = d.completion_tokens or n
            return n

        counts = await asyncio.gather(*(one(r) for r in reqs))
        return time.perf_counter() - t0, sum(counts)

    try:
        wall, tokens = asyncio.run(go())
    finally:
        engine.stop()
    return {"width": width, "wall_s": wall, "tokens": tokens, "tok_s": tokens / wall,
            "step_share": spent["step"] / wall, "process_share": spent["process"] / wall,
            "rows_per_step": spent["rows"] / max(1, spent["steps"]),
            "ms_per_step": 1000 * spent["step"] / max(1, spent["steps"])}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--widths", default="1,16")
    parser.add_argument("--threads", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--matmul-dtype", default="float32", choices=["float32", "bfloat16", "auto"],
                        help="the fused runner's matmul precision (the model service's --matmul-dtype)")
    args = parser.parse_args()
    import torch

    from model_service.loader import load_model

    torch.set_num_threads(args.threads)
    loaded = load_model(None)
    widths = [int(w) for w in args.widths.split(",")]
    base = None
    for width in widths:
        n = 3 * width
        ids = prompts(loaded.tokenizer, n)
        budgets = [random.Random(i).randint(32, 128) for i in range(n)]
        r = run(loaded, width, ids, budgets, args.threads, args.matmul_dtype)
        base = base or r["tok_s"]
        print(f"width {width:>3}: {r['tokens']} tokens in {r['wall_s']:.1f} s = {r['tok_s']:.1f} tok/s "
              f"({r['tok_s'] / base:.2f}x width {widths[0]}) | forward {100 * r['step_share']:.0f}% of wall, "
              f"{r['ms_per_step']:.0f} ms/step, {r['rows_per_step']:.1f} rows/step | sampling and "
              f"bookkeeping {100 * r['process_share']:.1f}%", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
