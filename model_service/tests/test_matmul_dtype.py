"""``--matmul-dtype``: the fused runner's matrix products in bfloat16 over float32 activations.

Checked on tiny random models against transformers' own float32 forward (chunked prefill, batched
decode of rows of different lengths on both sides of the packed-weight row threshold, swap-remove),
the choice ``auto`` makes, the start-up parity check's tolerance, and what ``/health`` reports.
"""

from __future__ import annotations

import pytest
import torch

from model_service import fast_llama
from model_service.cli import config_from_args
from model_service.fast_llama import FastLlamaRunner, resolve_matmul_dtype
from model_service.hf_runner import HFRunner
from model_service.runner import make_runner
from model_service.tests.tiny import reference_logits, tiny_model, tiny_service

BF16 = resolve_matmul_dtype("bfloat16", torch.device("cpu"), torch.float32) == "bfloat16"
needs_bf16 = pytest.mark.skipif(not BF16, reason="this CPU's oneDNN has no bfloat16 matmul")
PROMPTS = [list(range(3, 15)), list(range(20, 41)), [5, 9, 11, 13, 17], list(range(50, 58)),
           [7, 7, 8, 9, 10, 11]]


@pytest.fixture(scope="module", autouse=True)
def _threads():
    torch.set_num_threads(1)


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm())


@needs_bf16
@pytest.mark.parametrize("kind", ["llama", "llama-bias", "qwen2"])
def test_bfloat16_matmuls_follow_the_float32_forward(kind):
    model = tiny_model(kind, initializer_range=0.1)
    runner = FastLlamaRunner(model, max_batch=8, max_len=128, matmul_dtype="bfloat16")
    assert runner.matmul_dtype == "bfloat16"
    assert runner.layers[0].qkv.packed.dtype == torch.bfloat16
    seqs = [list(p) for p in PROMPTS]
    errors, agree, total = [], 0, 0
    with torch.inference_mode():
        for ids in seqs:
            runner.prefill(ids[:4], 0, want_logits=False)
            last = runner.prefill(ids[4:], 4, want_logits=True)
            runner.activate()
            errors.append(_rel(last, reference_logits(model, ids)))
        for step in range(8):  # 5 rows (packed path) then 4 after a swap-remove
            nxt = [(7 + 3 * step + i) % 120 + 3 for i in range(len(seqs))]
            logits = runner.decode(torch.tensor(nxt), torch.tensor([len(s) for s in seqs]))
            seqs = [s + [t] for s, t in zip(seqs, nxt, strict=True)]
            for i, s in enumerate(seqs):
                ref = reference_logits(model, s)
                errors.append(_rel(logits[i], ref))
                agree += int(logits[i].argmax() == ref.argmax())
                total += 1
            if step == 3:
                runner.swap_remove(0)
                seqs = [seqs[-1]] + seqs[1:-1]
    # bfloat16 keeps 8 bits of mantissa: about 0.4 % per product; float32 stays at 1e-6
    assert max(errors) < 0.03, max(errors)
    assert min(errors) > 1e-5  # it really multiplied in bfloat16
    assert agree / total >= 0.9


@needs_bf16
def test_make_runner_accepts_bfloat16_within_its_tolerance_and_still_refuses_a_wrong_model():
    model = tiny_model("llama", initializer_range=0.1)
    runner = make_runner(model, multi_device=False, max_batch=2, max_len=64, matmul_dtype="bfloat16")
    assert runner.name == "fast-llama" and runner.matmul_dtype == "bfloat16"
    broken = tiny_model("llama", initializer_range=0.2)
    for layer in broken.model.layers:
        layer.mlp.act_fn = torch.nn.Tanh()
    assert isinstance(make_runner(broken, multi_device=False, max_batch=2, max_len=64,
                                  matmul_dtype="bfloat16"), HFRunner)


def test_auto_is_bfloat16_only_for_a_float32_model_on_a_cpu_that_multiplies_it(monkeypatch):
    cpu = torch.device("cpu")
    monkeypatch.setattr(fast_llama, "bf16_matmul_supported", lambda: False)
    assert resolve_matmul_dtype("auto", cpu, torch.float32) == "float32"
    monkeypatch.setattr(fast_llama, "bf16_matmul_supported", lambda: True)
    assert resolve_matmul_dtype("auto", cpu, torch.float32) == ("bfloat16" if BF16 else "float32")
    assert resolve_matmul_dtype("auto", cpu, torch.bfloat16) == "float32"
    assert resolve_matmul_dtype("auto", torch.device("cuda"), torch.float32) == "float32"
    assert resolve_matmul_dtype("float32", cpu, torch.float32) == "float32"
    with pytest.raises(ValueError, match="matmul dtype"):
        resolve_matmul_dtype("int8", cpu, torch.float32)


def test_flag_and_environment_choose_the_matmul_dtype(monkeypatch):
    assert config_from_args([]).matmul_dtype == "auto"
    assert config_from_args(["--matmul-dtype", "float32"]).matmul_dtype == "float32"
    with pytest.raises(SystemExit):
        config_from_args(["--matmul-dtype", "int4"])
    monkeypatch.setenv("MODEL_SERVICE_MATMUL_DTYPE", "bfloat16")
    assert config_from_args([]).matmul_dtype == "bfloat16"
    monkeypatch.setenv("MODEL_SERVICE_MATMUL_DTYPE", "half")
    with pytest.raises(SystemExit):
        config_from_args([])


def test_health_says_which_precision_multiplies():
    assert tiny_service(matmul_dtype="float32").health()["matmul_dtype"] == "float32"
    want = "bfloat16" if BF16 else "float32"
    assert tiny_service(matmul_dtype="bfloat16").health()["matmul_dtype"] == want
