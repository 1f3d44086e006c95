"""Logits processing of the sampler: repetition penalty, min-p, min_tokens' end-token suppression."""

from __future__ import annotations

import torch

from model_service.sampling import SamplingParams, apply_repetition_penalty, select_tokens, suppress_tokens


def test_repetition_penalty_divides_positive_and_multiplies_negative_seen_logits():
    logits = torch.tensor([[2.0, -1.0, 3.0, 0.5]])
    seen = torch.tensor([True, True, False, False])
    apply_repetition_penalty(logits, 0, seen, 2.0)
    assert logits.tolist() == [[1.0, -2.0, 3.0, 0.5]]


def test_min_p_drops_tokens_below_a_share_of_the_best():
    # probabilities ~ [0.5, 0.3, 0.2 - eps, eps]: min_p 0.5 keeps only tokens with p >= 0.25
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.19, 0.01]]))
    params = SamplingParams(max_tokens=1, temperature=1.0, min_p=0.5)
    picks = set()
    for seed in range(200):
        gen = torch.Generator().manual_seed(seed)
        picks |= set(select_tokens(logits.clone(), [params], [gen]))
    assert picks == {0, 1}
    one = SamplingParams(max_tokens=1, temperature=2.0, min_p=1.0)
    assert {select_tokens(logits.clone(), [one], [torch.Generator().manual_seed(s)])[0]
            for s in range(50)} == {0}


def test_suppress_tokens_unless_nothing_else_is_allowed():
    logits = torch.tensor([[1.0, 5.0, 2.0], [float("-inf"), 5.0, float("-inf")]])
    suppress_tokens(logits, 0, {1})
    assert logits[0].tolist() == [1.0, float("-inf"), 2.0]
    suppress_tokens(logits, 1, {1})  # a grammar that only allows the end keeps it
    assert logits[1].tolist() == [float("-inf"), 5.0, float("-inf")]
