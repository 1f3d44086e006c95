"""How far the model service's bfloat16 matmuls (``--matmul-dtype bfloat16``) move the embedded model's
answers from float32: logits and greedy tokens, in this process, on the mixed benchmark's prompts.

For ``--prompts`` unique chat prompts (``model_service_bench.mixed_requests``, seed ``--seed``) the fused
runner generates ``--tokens`` greedy tokens in float32; the bfloat16 runner is then fed the same
tokens (teacher forcing) and every position's logits are compared: top-1 agreement, relative L2 error,
and the float32 margin between the two best tokens where they disagree (small margins: near-ties). It
also generates freely in bfloat16 and counts continuations identical to float32's. Prints one JSON line.

    .venv/bin/python benchmarks/matmul_precision.py            # 30 prompts x 60 tokens, ~1 min on 2 cores
"""
from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
for _path in (ROOT, ROOT / "benchmarks"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))


def greedy(runner, ids: list[int], n: int, forced: list[int] | None = None):
    """(tokens, logits per position) of ``n`` greedy steps; with ``forced``, feed those tokens instead."""
    import torch

    runner.reset()
    logits = [runner.prefill(ids, 0, True)]
    runner.activate(1)
    out: list[int] = []
    for k in range(n):
        tok = forced[k] if forced is not None else int(logits[-1].argmax())
        out.append(tok)
        if k < n - 1:
            logits.append(runner.decode(torch.tensor([tok]), torch.tensor([len(ids) + k]))[0])
    return out, logits


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--prompts", type=int, default=30)
    p.add_argument("--tokens", type=int, default=60)
    p.add_argument("--seed", type=int, default=5)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    import model_service_bench as bench
    import torch

    from model_service.fast_llama import FastLlamaRunner
    from model_service.loader import load_model
    from model_service.runner import parity_problem

    torch.set_num_threads(args.threads)
    loaded = load_model(None)
    fp = FastLlamaRunner(loaded.model, max_batch=2, max_len=2048, matmul_dtype="float32")
    bf = FastLlamaRunner(loaded.model, max_batch=2, max_len=2048, matmul_dtype="bfloat16")
    if bf.matmul_dtype != "bfloat16":
        print(json.dumps({"error": "this CPU has no hardware bfloat16 matmul; nothing to compare"}))
        return 1
    parity = {"float32": parity_problem(loaded.model, fp) or "ok (<= 1e-3)",
              "bfloat16": parity_problem(loaded.model, bf) or "ok (<= 0.1)"}
    agree = total = same = 0
    errors: list[float] = []
    margins: list[float] = []
    with torch.inference_mode():
        for messages, _ in bench.mixed_requests(random.Random(args.seed), args.prompts, set()):
            ids = list(loaded.tokenizer.apply_chat_template(messages, add_generation_prompt=True,
                                                            tokenize=True, return_dict=True)["input_ids"])
            ref_tokens, ref_logits = greedy(fp, ids, args.tokens)
            _, forced_logits = greedy(bf, ids, args.tokens, forced=ref_tokens)
            free_tokens, _ = greedy(bf, ids, args.tokens)
            same += free_tokens == ref_tokens
            for a, b in zip(ref_logits, forced_logits, strict=True):
                total += 1
                errors.append(float((a - b).norm() / a.norm()))
                if int(a.argmax()) == int(b.argmax()):
                    agree += 1
                else:
                    top = torch.topk(a, 2).values
                    margins.append(float(top[0] - top[1]))
    print(json.dumps({
        "prompts": args.prompts, "tokens_per_prompt": args.tokens, "positions": total,
        "start_up_parity_check": parity,
        "top1_agreement": round(agree / total, 4),
        "relative_error_median": round(statistics.median(errors), 4),
        "relative_error_max": round(max(errors), 4),
        "disagreements_float32_margin_max": round(max(margins), 3) if margins else None,
        "identical_greedy_continuations": f"{same}/{args.prompts}"}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
