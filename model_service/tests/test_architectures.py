"""Architectures beyond SmolLM2: tiny random models built from configs, through the service's runners.

Each runner's logits (chunked prefill, batched decode of rows of different lengths, swap-remove) are
compared with transformers' own forward over the whole sequence. Llama with and without biases and
Qwen2 go through the fused runner and the generic one; Mistral with a sliding window and GPT-2
through the generic one (which ``make_runner`` picks for them).
"""

from __future__ import annotations

import pytest
import torch

from model_service.errors import ConfigError
from model_service.fast_llama import SHORT_SEGMENT, FastLlamaRunner
from model_service.hf_runner import HFRunner
from model_service.runner import Segment, fast_path_problem, make_runner
from model_service.tests.tiny import reference_logits, tiny_model

TOL = 1e-4
# rows of different lengths; the long ones pass the Mistral model's sliding window of 8
PROMPTS = [list(range(3, 15)), list(range(20, 41)), [5, 9, 11, 13, 17]]

CASES = [("llama", FastLlamaRunner), ("llama", HFRunner), ("llama-bias", FastLlamaRunner),
         ("llama-bias", HFRunner), ("qwen2", FastLlamaRunner), ("qwen2", HFRunner),
         ("mistral-sliding", HFRunner), ("gpt2", HFRunner)]


@pytest.fixture(scope="module", autouse=True)
def _threads():
    torch.set_num_threads(1)


def _err(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max())


@pytest.mark.parametrize("kind,runner_cls", CASES, ids=[f"{k}-{c.name}" for k, c in CASES])
def test_runner_logits_match_the_models_own_forward(kind, runner_cls):
    model = tiny_model(kind)
    runner = runner_cls(model, max_batch=4, max_len=128)
    seqs = [list(p) for p in PROMPTS]
    with torch.inference_mode():
        for ids in seqs:  # chunked prefill: 4 tokens, then the rest
            runner.prefill(ids[:4], 0, want_logits=False)
            last = runner.prefill(ids[4:], 4, want_logits=True)
            runner.activate()
            assert _err(last, reference_logits(model, ids)) < TOL
        for step in range(10):  # batched decode past the sliding window
            nxt = [(7 + 3 * step + i) % 120 + 3 for i in range(len(seqs))]
            logits = runner.decode(torch.tensor(nxt), torch.tensor([len(s) for s in seqs]))
            seqs = [s + [t] for s, t in zip(seqs, nxt, strict=True)]
            for i, s in enumerate(seqs):
                assert _err(logits[i], reference_logits(model, s)) < TOL, (kind, step, i)
            if step == 4:  # the first row leaves; the last one takes its slot
                runner.swap_remove(0)
                seqs = [seqs[2], seqs[1]]



@pytest.mark.parametrize("kind", ["llama", "qwen2"])
def test_fused_runner_short_and_long_segments_and_forced_tokens_match_the_models_own_forward(kind):
    # segments up to SHORT_SEGMENT tokens attend with products on the keys in place, longer ones
    # through SDPA: each path from position 0 and after cached positions, and forced tokens of a
    # running row in the same pass as another row's decode token
    assert SHORT_SEGMENT == 32
    model = tiny_model(kind)
    runner = FastLlamaRunner(model, max_batch=4, max_len=128)
    a, b = list(range(3, 43)), list(range(50, 90))  # 40 tokens each
    with torch.inference_mode():
        runner.prefill(a[:35], 0, want_logits=False)  # SDPA, causal from 0
        assert _err(runner.prefill(a[35:], 35, want_logits=True), reference_logits(model, a)) < TOL  # short
        runner.activate()
        runner.prefill(b[:3], 0, want_logits=False)  # short from 0
        assert _err(runner.prefill(b[3:], 3, want_logits=True), reference_logits(model, b)) < TOL  # SDPA
        runner.activate()
        order, logits = runner.step([7, 9], [40, 40], [Segment(0, [11, 12, 13], 41)])
    assert order == [1, 0]
    assert _err(logits[0], reference_logits(model, b + [9])) < TOL
    assert _err(logits[1], reference_logits(model, a + [7, 11, 12, 13])) < TOL
    assert runner.lengths == [44, 41]

def test_sliding_window_batch_of_different_lengths_gives_unbatched_greedy_tokens():
    model = tiny_model("mistral-sliding")
    assert fast_path_problem(model, False) == "sliding-window attention"
    runner = make_runner(model, multi_device=False, max_batch=4, max_len=128)
    assert isinstance(runner, HFRunner)
    prompts = [list(range(3, 9)), list(range(20, 43))]  # 6 and 23 tokens, window 8
    new = 12
    model.generation_config.eos_token_id = None  # exactly ``new`` tokens
    with torch.inference_mode():
        expected = [model.generate(torch.tensor([p]), max_new_tokens=new, do_sample=False,
                                   pad_token_id=0)[0, len(p):].tolist() for p in prompts]
        seqs = []
        for p in prompts:
            first = runner.prefill(p, 0, want_logits=True)
            runner.activate()
            seqs.append(list(p) + [int(first.argmax())])
        for _ in range(new - 1):
            last, positions = [s[-1] for s in seqs], [len(s) - 1 for s in seqs]
            logits = runner.decode(torch.tensor(last), torch.tensor(positions))
            seqs = [s + [int(row.argmax())] for s, row in zip(seqs, logits, strict=True)]
    assert [s[len(p):] for s, p in zip(seqs, prompts, strict=True)] == expected
    # the window matters: without it the same weights give other logits
    cfg = model.config.to_dict() | {"sliding_window": None}
    full = type(model)(type(model.config).from_dict(cfg)).eval()
    full.load_state_dict(model.state_dict())
    assert _err(reference_logits(full, prompts[1]), reference_logits(model, prompts[1])) > 1e-3


@pytest.mark.parametrize("kind,expected", [("llama", "fast-llama"), ("llama-bias", "fast-llama"),
                                           ("qwen2", "fast-llama"), ("mistral-sliding", "transformers"),
                                           ("gpt2", "transformers")])
def test_make_runner_picks_a_runner_that_matches_the_model(kind, expected):
    model = tiny_model(kind)
    runner = make_runner(model, multi_device=False, max_batch=2, max_len=64)
    assert runner.name == expected
    ids = [4, 8, 15, 16, 23, 42]
    with torch.inference_mode():
        logits = runner.prefill(ids, 0, want_logits=True)
    assert _err(logits, reference_logits(model, ids)) < TOL


def test_fused_runner_refuses_a_model_it_would_compute_wrongly():
    # The fused runner assumes SiLU; a model whose MLP does something else must not get it.
    model = tiny_model("llama", initializer_range=0.2)
    for layer in model.model.layers:
        layer.mlp.act_fn = torch.nn.Tanh()
    runner = make_runner(model, multi_device=False, max_batch=2, max_len=64)
    assert isinstance(runner, HFRunner)
    with pytest.raises(ConfigError, match="differ"):
        make_runner(model, multi_device=False, max_batch=2, max_len=64, kind="fast")
    partial = tiny_model("llama")
    partial.model.layers[0].self_attn.q_proj.bias = torch.nn.Parameter(torch.ones(32), requires_grad=False)
    assert "bias" in (fast_path_problem(partial, False) or "")
    assert isinstance(make_runner(partial, multi_device=False, max_batch=2, max_len=64), HFRunner)
