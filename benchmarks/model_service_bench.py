"""Benchmark of the model service against plain one-at-a-time ``generate()``.

Runs the same mix of chat requests (prompts of different lengths, 32-128 new tokens, greedy,
``ignore_eos`` so every request produces exactly its budget) at concurrency 1, 4, 16 and 64 through
the HTTP server (streaming, so time to first token is measured), and -- in this same process -- through
plain ``model.generate()`` one request at a time (the naive baseline). Prints throughput (generated
tokens/s), p50/p95 time to first token and latency per level; the last line is one JSON object with
``throughput_ratio_c16`` (server tokens/s at c16 over the baseline's) and ``p95_latency_ratio_c16``
(p95 latency at c16 over p95 latency of single requests at c1, same request mix).

    .venv/bin/python benchmarks/model_service_bench.py            # starts its own server
    .venv/bin/python benchmarks/model_service_bench.py --url http://127.0.0.1:8080 --api-key KEY
    .venv/bin/python benchmarks/model_service_bench.py --workload mixed --repeat 3

``--workload mixed`` is a different workload: unique chat prompts built from varied templates and
random words and numbers (seeded by ``--seed``; each run draws new ones, so neither the prefix cache
nor anything else sees a prompt twice), greedy, ending at the model's own end of sequence (no
``ignore_eos``, no stop strings), ``max_tokens`` uniform in 32..128 per request. One run measures the
one-at-a-time ``generate()`` baseline, the median single-request latency through the server at
concurrency 1 and 16 concurrent requests through the server (tokens/s, ratio over the baseline, p95
latency over the c1 median latency); ``--repeat N`` repeats the whole run and prints the median.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # the server's setting, so the baseline runs alike
os.environ.setdefault("HF_HUB_OFFLINE", "1")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SYSTEM = ("You are the assistant of an industry AI suite. Answer clearly and concretely, in plain English, "
          "for a reader without special training.")
TOPICS = ["the water cycle", "how vaccines work", "the history of the printing press", "compound interest",
          "why the sky is blue", "how a bicycle stays upright", "photosynthesis", "the French revolution"]
DETAILS = ["Mention one example from daily life.", "Keep it under five short paragraphs.",
           "Say what most people get wrong about it.", "Add a short analogy a child would understand.",
           "Explain where the idea came from.", "Finish with a one-line summary.",
           "Point out one open question that remains.", "Use numbers where they help."]
OUTPUT_LENGTHS = [32, 128, 48, 112, 64, 96, 80, 40]  # mixed, 32-128 new tokens (mean 75)


def base_requests() -> list[tuple[list[dict], int]]:
    """Eight chat requests: a shared system prompt (as the platform's templates have), then a user
    message of 0-5 detail sentences (prompt lengths vary), and mixed output budgets."""
    out = []
    for i, (topic, n) in enumerate(zip(TOPICS, OUTPUT_LENGTHS, strict=True)):
        details = " ".join((DETAILS[i:] + DETAILS[:i])[: i % 6])
        messages = [{"role": "system", "content": SYSTEM},
                    {"role": "user", "content": f"Explain {topic}. {details}"}]
        out.append((messages, n))
    return out


WORDS = ("river lantern copper orchard signal harbor meadow engine ledger canyon violet parcel "
         "summit beacon thimble quarry saddle falcon ribbon glacier tractor pepper marble cobalt "
         "willow anchor compass furnace pigeon velvet tunnel harvest cedar spindle biscuit nickel "
         "crater blossom walrus kettle prism juniper mosaic gravel lobster shutter orbit tulip").split()
NAMES = ["Amira", "Bruno", "Chen", "Dalia", "Emeka", "Freya", "Goran", "Hana", "Ines", "Jonas", "Kofi",
         "Lena", "Mateo", "Nadia", "Oskar", "Priya", "Quentin", "Rosa", "Sven", "Tamar"]
MIXED_SYSTEMS = [None, SYSTEM, "You are a concise assistant. Reply briefly.",
                 "You help staff of a mid-sized factory with paperwork and planning."]
MIXED_TEMPLATES = [
    "What is {a} times {b}? Show the steps.",
    "Write a two-sentence note to {name} about the {w1} delivery due on day {a}.",
    "Give a short title for a story about a {w1}, a {w2} and a {w3}.",
    "Explain in plain words what a {w1} is used for.",
    "List {k} ideas for naming a shop that sells {w1}s and {w2}s.",
    "{name} has {a} {w1}s and gives away {b}. How many are left?",
    "Summarise this in one sentence: {sentence}",
    "Translate into French: '{name} bought a {w1} for {a} euros.'",
    "Is a {w1} bigger than a {w2}? Answer yes or no, then explain briefly.",
    "Write a haiku about {w1} and {w2}.",
    "Order {ref}: the customer {name} reports that the {w1} arrived damaged. Draft a polite reply that "
    "apologises, offers a replacement {w2} and asks for a photo. Details: {sentence}",
    "Rewrite more formally: {sentence}",
]


def mixed_requests(rng: random.Random, count: int, seen: set[str]) -> list[tuple[list[dict], int]]:
    """``count`` unique chat requests from varied templates with random words and numbers (prompts of
    different lengths, some with a system prompt), ``max_tokens`` uniform in 32..128."""
    out: list[tuple[list[dict], int]] = []
    while len(out) < count:
        words = rng.sample(WORDS, 3)
        sentence = " ".join(rng.choice(WORDS) for _ in range(rng.randint(5, 60))).capitalize() + "."
        user = rng.choice(MIXED_TEMPLATES).format(
            a=rng.randint(2, 999), b=rng.randint(2, 99), k=rng.randint(3, 7), name=rng.choice(NAMES),
            w1=words[0], w2=words[1], w3=words[2], sentence=sentence, ref=rng.randint(10000, 99999))
        system = rng.choice(MIXED_SYSTEMS)
        key = f"{system}|{user}"
        if key in seen:
            continue
        seen.add(key)
        messages = ([{"role": "system", "content": system}] if system else []) + \
            [{"role": "user", "content": user}]
        out.append((messages, rng.randint(32, 128)))
    return out


def pct(values: list[float], q: float) -> float:
    """Percentile with linear interpolation."""
    if not values:
        return float("nan")
    values = sorted(values)
    k = (len(values) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


class _TunedSteps:
    """A logits processor that gives ``generate()`` the server's ``--threads auto`` policy: it is called
    once per forward pass, so it times each pass and sets the thread count for the next one."""

    def __init__(self, threads: int):
        from model_service.threads import ThreadTuner

        self.tuner = ThreadTuner(threads)
        self.t0 = 0.0
        self.tokens = 1

    def start(self, prompt_tokens: int) -> None:
        self.tuner.before_step()
        self.tokens = prompt_tokens
        self.t0 = time.perf_counter()

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        self.tuner.after_step(time.perf_counter() - self.t0, self.tokens)
        self.tuner.before_step()
        self.tokens = 1
        self.t0 = time.perf_counter()
        return scores


def run_baseline(reqs: list[tuple[list[dict], int]], threads: int, natural_eos: bool = False,
                 auto_threads: bool = False) -> dict:
    """The naive baseline: each request alone through ``model.generate()``; with ``natural_eos`` each
    stops at the model's end of sequence (the server's EOS ids) or ``max_tokens``, whichever first.
    ``auto_threads``: the same thread-count choice as the server's ``--threads auto`` (threads.py),
    step by step, so that neither side gains from a busy machine what the other cannot."""
    import torch
    from transformers import LogitsProcessorList

    from model_service.loader import load_model

    torch.set_num_threads(threads)
    tuned = _TunedSteps(threads) if auto_threads else None
    extra = {"logits_processor": LogitsProcessorList([tuned])} if tuned else {}
    loaded = load_model(None)
    tok, model = loaded.tokenizer, loaded.model
    latencies, tokens = [], 0
    with torch.inference_mode():
        warm = tok.apply_chat_template(reqs[0][0], add_generation_prompt=True, return_tensors="pt",
                                       return_dict=True)
        model.generate(**warm, max_new_tokens=4, do_sample=False)
        start = time.perf_counter()
        cpu0 = time.process_time()
        for messages, n in reqs:
            enc = tok.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt",
                                          return_dict=True)
            t0 = time.perf_counter()
            if tuned:
                tuned.start(enc["input_ids"].shape[1])
            if natural_eos:
                out = model.generate(**enc, max_new_tokens=n, do_sample=False,
                                     eos_token_id=loaded.eos_token_ids, **extra)
            else:
                out = model.generate(**enc, max_new_tokens=n, min_new_tokens=n, do_sample=False, **extra)
            latencies.append(time.perf_counter() - t0)
            tokens += out.shape[1] - enc["input_ids"].shape[1]
        wall = time.perf_counter() - start
        cpu = time.process_time() - cpu0
    if tuned:
        torch.set_num_threads(threads)
    return {"requests": len(reqs), "tokens": tokens, "wall_s": wall, "throughput": tokens / wall,
            "cpu_s": cpu, "tok_per_cpu_s": tokens / cpu,
            "p50_latency": pct(latencies, 0.5), "p95_latency": pct(latencies, 0.95)}


async def one_request(client, messages: list[dict], n: int, model: str,
                      ignore_eos: bool = True) -> tuple[float, float, int]:
    """(ttft, latency, generated tokens) of one streamed chat request."""
    body = {"model": model, "messages": messages, "max_tokens": n, "temperature": 0,
            "ignore_eos": ignore_eos,
            "stream": True, "stream_options": {"include_usage": True}}
    t0 = time.perf_counter()
    ttft, tokens = None, 0
    async with client.stream("POST", "/v1/chat/completions", json=body,
                             headers={"Cache-Control": "no-cache"}) as r:
        if r.status_code != 200:
            raise RuntimeError(f"HTTP {r.status_code}: {await r.aread()!r}")
        async for line in r.aiter_lines():
            if not line.startswith("data: {"):
                continue
            chunk = json.loads(line[6:])
            if chunk.get("usage"):
                tokens = chunk["usage"]["completion_tokens"]
            if ttft is None and chunk["choices"] and chunk["choices"][0]["delta"].get("content"):
                ttft = time.perf_counter() - t0
    latency = time.perf_counter() - t0
    return (ttft if ttft is not None else latency), latency, tokens


async def run_level(url: str, api_key: str | None, model: str, reqs: list[tuple[list[dict], int]],
                    concurrency: int, cpu_probe: Any = None, ignore_eos: bool = True,
                    warmup: list[dict] | None = None) -> dict:
    """Closed loop: ``concurrency`` workers take requests from the list until it is empty. ``warmup``:
    messages for the warm-up request (default: the first request's, which then shares its prefix)."""
    import httpx

    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    limits = httpx.Limits(max_connections=concurrency + 4, max_keepalive_connections=concurrency + 4)
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=600, limits=limits) as client:
        await one_request(client, warmup or reqs[0][0], 4, model)  # warm-up
        queue = list(reqs)
        results: list[tuple[float, float, int]] = []

        async def worker() -> None:
            while queue:
                messages, n = queue.pop(0)
                results.append(await one_request(client, messages, n, model, ignore_eos))

        start = time.perf_counter()
        cpu0 = cpu_probe() if cpu_probe else None
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        wall = time.perf_counter() - start
        cpu = cpu_probe() - cpu0 if cpu_probe and cpu0 is not None else None
    ttfts = [r[0] for r in results]
    lats = [r[1] for r in results]
    tokens = sum(r[2] for r in results)
    return {"concurrency": concurrency, "requests": len(results), "tokens": tokens, "wall_s": wall,
            "throughput": tokens / wall, "p50_ttft": pct(ttfts, 0.5), "p95_ttft": pct(ttfts, 0.95),
            "p50_latency": pct(lats, 0.5), "p95_latency": pct(lats, 0.95), "cpu_s": cpu,
            "p50_tokens": pct([r[2] for r in results], 0.5), "p95_tokens": pct([r[2] for r in results], 0.95),
            "tok_per_cpu_s": tokens / cpu if cpu else None}


def start_server(args: argparse.Namespace) -> tuple[subprocess.Popen, str]:
    """Start ``python -m model_service`` on a free port; return (process, url) once /health answers."""
    import httpx

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [sys.executable, "-m", "model_service", "--port", str(port), "--no-cache",
           "--max-batch-size", str(args.max_batch_size), "--max-queue", "1024", "--log-level", "warning"]
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    if args.matmul_dtype:
        cmd += ["--matmul-dtype", args.matmul_dtype]
    env = {**os.environ, "MODEL_SERVICE_API_KEYS": ""}
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            if httpx.get(url + "/health", timeout=2).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    proc.kill()
    raise RuntimeError("server did not become healthy")


def server_precision(url: str, api_key: str | None) -> str:
    """The server's matmul precision as ``/health`` reports it (``?`` when it does not say)."""
    import httpx

    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    try:
        return str(httpx.get(url + "/health", headers=headers, timeout=10).json().get("matmul_dtype", "?"))
    except (httpx.HTTPError, ValueError):
        return "?"


def stop_server(proc: subprocess.Popen | None) -> None:
    """Terminate a server started by ``start_server``."""
    if proc is None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()


MIXED_WARMUP = [{"role": "user", "content": "Say hello."}]


def mixed_run(args: argparse.Namespace, threads: int, url: str, cpu_probe: Any, rng: random.Random,
              seen: set[str]) -> dict:
    """One run of the mixed workload: baseline, c1 and c16 on fresh unique requests."""
    single = mixed_requests(rng, args.single_requests, seen)
    many = mixed_requests(rng, args.requests, seen)
    base = run_baseline(single, threads, natural_eos=True, auto_threads=not args.threads)
    c1 = asyncio.run(run_level(url, args.api_key, args.model, single, 1, cpu_probe, ignore_eos=False,
                               warmup=MIXED_WARMUP))
    c16 = asyncio.run(run_level(url, args.api_key, args.model, many, 16, cpu_probe, ignore_eos=False,
                                warmup=MIXED_WARMUP))
    return {"baseline_tok_s": base["throughput"], "baseline_tokens": base["tokens"],
            "baseline_p50_latency_s": base["p50_latency"], "c1_p50_latency_s": c1["p50_latency"],
            "c1_tokens": c1["tokens"], "c16_tok_s": c16["throughput"], "c16_tokens": c16["tokens"],
            "c16_p50_latency_s": c16["p50_latency"], "c16_p95_latency_s": c16["p95_latency"],
            "c16_p95_ttft_s": c16["p95_ttft"],
            "throughput_ratio_c16": c16["throughput"] / base["throughput"],
            # per CPU-second used (server process vs benchmark process during the baseline): less
            # sensitive to other load on a shared machine than the wall-clock ratio
            "cpu_throughput_ratio_c16": (c16["tok_per_cpu_s"] / base["tok_per_cpu_s"]
                                         if c16["tok_per_cpu_s"] else float("nan")),
            "p95_c16_over_p50_c1": c16["p95_latency"] / c1["p50_latency"],
            # p95 of tokens per request at c16 over the c1 median: the latency ratio even if a 16-row
            # step cost no more than a 1-row one (long answers make the p95, short ones the median)
            "c1_p50_tokens": c1["p50_tokens"], "c16_p95_tokens": c16["p95_tokens"],
            "token_ratio_p95_c16_over_p50_c1": c16["p95_tokens"] / max(1.0, c1["p50_tokens"]),
            "load_avg_1m": os.getloadavg()[0]}


def print_mixed(label: str, r: dict) -> None:
    """One line of mixed-workload figures."""
    ok = r["throughput_ratio_c16"] >= 8 and r["p95_c16_over_p50_c1"] <= 3
    print(f"{label}: baseline {r['baseline_tok_s']:.1f} tok/s | c1 p50 latency {r['c1_p50_latency_s']:.2f}s"
          f" | c16 {r['c16_tok_s']:.1f} tok/s, p50 {r['c16_p50_latency_s']:.2f}s"
          f" p95 {r['c16_p95_latency_s']:.2f}s | ratio {r['throughput_ratio_c16']:.2f}x (>= 8)"
          f" | p95 c16 / p50 c1 {r['p95_c16_over_p50_c1']:.2f} (<= 3) | per CPU-s ratio "
          f"{r['cpu_throughput_ratio_c16']:.2f}x | tokens p95 c16 / p50 c1 "
          f"{r['token_ratio_p95_c16_over_p50_c1']:.2f} | load {r['load_avg_1m']:.1f}"
          f" | {'PASS' if ok else 'FAIL'}",
          flush=True)


def main_mixed(args: argparse.Namespace, threads: int) -> int:
    """``--workload mixed``: ``--repeat`` runs, each printed, then the median of each figure."""
    rng = random.Random(args.seed)
    seen: set[str] = set()
    proc, url, cpu_probe = None, args.url, None
    if not url:
        import psutil

        proc, url = start_server(args)
        server = psutil.Process(proc.pid)

        def cpu_probe() -> float:
            t = server.cpu_times()
            return t.user + t.system
    runs = []
    precision = server_precision(url, args.api_key)
    print(f"server matmul precision: {precision} (baseline: the model's float32 generate())", flush=True)
    try:
        for i in range(args.repeat):
            t0 = time.perf_counter()
            runs.append(mixed_run(args, threads, url, cpu_probe, rng, seen))
            print_mixed(f"run {i + 1} ({time.perf_counter() - t0:.0f}s)", runs[-1])
    finally:
        stop_server(proc)
    median = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    print_mixed(f"median of {len(runs)}", median)
    ok = median["throughput_ratio_c16"] >= 8 and median["p95_c16_over_p50_c1"] <= 3
    print(json.dumps({"workload": "mixed", "threads": threads, "cpu_count": os.cpu_count(),
                      "server_matmul_dtype": precision,
                      "seed": args.seed, "requests_c16": args.requests, "requests_c1": args.single_requests,
                      "runs": [{k: round(v, 2) for k, v in r.items()} for r in runs],
                      "median": {k: round(v, 2) for k, v in median.items()},
                      "result": "PASS" if ok else "FAIL"}))
    return 0


def main() -> int:
    """Run baseline and server levels; print a table and the JSON summary line."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--url", help="benchmark a running server instead of starting one")
    p.add_argument("--api-key", default=os.environ.get("MODEL_SERVICE_API_KEY"))
    p.add_argument("--model", default="SmolLM2-135M-Instruct")
    p.add_argument("--levels", default="1,4,16,64")
    p.add_argument("--copies", type=int, default=0,
                   help="request-set copies per level (default: sqrt(level))")
    p.add_argument("--max-batch-size", type=int, default=64)
    p.add_argument("--threads", type=int, default=0,
                   help="torch threads of the server and the baseline (default: auto, the server's "
                        "--threads auto, and the same choice step by step in the baseline)")
    p.add_argument("--matmul-dtype", choices=["auto", "float32", "bfloat16"], default=None,
                   help="the started server's --matmul-dtype (default: the server's default, auto)")
    p.add_argument("--skip-baseline", action="store_true")
    p.add_argument("--workload", choices=["default", "mixed"], default="default",
                   help="mixed: unique prompts, natural end of sequence, max_tokens 32..128 (see above)")
    p.add_argument("--repeat", type=int, default=1, help="mixed: whole runs to repeat (median reported)")
    p.add_argument("--seed", type=int, default=0, help="mixed: seed of the prompt generator")
    p.add_argument("--requests", type=int, default=48, help="mixed: requests at concurrency 16, per run")
    p.add_argument("--single-requests", type=int, default=10,
                   help="mixed: requests one at a time (baseline and server c1, the same ones), per run")
    args = p.parse_args()
    from model_service.config import usable_cores

    threads = args.threads or usable_cores()
    if args.workload == "mixed":
        return main_mixed(args, threads)
    base = base_requests()
    baseline = None
    if not args.skip_baseline:
        baseline = run_baseline(base, threads, auto_threads=not args.threads)
        print(f"baseline generate() one at a time: {baseline['tokens']} tokens in "
              f"{baseline['wall_s']:.1f}s = "
              f"{baseline['throughput']:.1f} tok/s, p50 latency {baseline['p50_latency']:.2f}s, "
              f"p95 {baseline['p95_latency']:.2f}s, {baseline['tok_per_cpu_s']:.1f} tok/cpu-s", flush=True)
    proc = None
    url = args.url
    cpu_probe = None
    if not url:
        import psutil

        proc, url = start_server(args)
        server = psutil.Process(proc.pid)

        def cpu_probe() -> float:
            t = server.cpu_times()
            return t.user + t.system
    precision = server_precision(url, args.api_key)
    print(f"server matmul precision: {precision} (baseline: the model's float32 generate())", flush=True)
    levels = {}
    try:
        for c in [int(x) for x in args.levels.split(",")]:
            copies = args.copies or max(1, round(c ** 0.5))
            res = asyncio.run(run_level(url, args.api_key, args.model, base * copies, c, cpu_probe))
            levels[c] = res
            print(f"c={c:<3} requests={res['requests']:<3} tokens={res['tokens']:<5} "
                  f"{res['throughput']:7.1f} tok/s  "
                  f"TTFT p50 {res['p50_ttft']:.2f}s p95 {res['p95_ttft']:.2f}s  "
                  f"latency p50 {res['p50_latency']:.2f}s p95 {res['p95_latency']:.2f}s"
                  + (f"  {res['tok_per_cpu_s']:.1f} tok/cpu-s" if res["tok_per_cpu_s"] else ""), flush=True)
    finally:
        stop_server(proc)
    summary: dict = {"threads": threads, "cpu_count": os.cpu_count(), "server_matmul_dtype": precision,
                     "load_avg_1m": round(os.getloadavg()[0], 2)}
    if baseline:
        summary["baseline_tok_s"] = round(baseline["throughput"], 1)
        summary["baseline_tok_per_cpu_s"] = round(baseline["tok_per_cpu_s"], 1)
    for c, res in levels.items():
        summary[f"c{c}_tok_s"] = round(res["throughput"], 1)
        summary[f"c{c}_p95_latency_s"] = round(res["p95_latency"], 2)
        summary[f"c{c}_p95_ttft_s"] = round(res["p95_ttft"], 2)
        if res["tok_per_cpu_s"]:
            summary[f"c{c}_tok_per_cpu_s"] = round(res["tok_per_cpu_s"], 1)
    if baseline and 16 in levels:
        summary["throughput_ratio_c16"] = round(levels[16]["throughput"] / baseline["throughput"], 2)
    if baseline and 16 in levels and levels[16]["tok_per_cpu_s"]:
        # CPU-normalised: the same ratio per CPU-second used, robust to other load on a shared machine
        summary["cpu_throughput_ratio_c16"] = round(
            levels[16]["tok_per_cpu_s"] / baseline["tok_per_cpu_s"], 2)
    if 1 in levels and 16 in levels:
        summary["p95_latency_ratio_c16"] = round(levels[16]["p95_latency"] / levels[1]["p95_latency"], 2)
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
