"""Sampling parameters and batched token selection (greedy, temperature, top-k, top-p, min-p, penalties).

Each sampled row draws from its own ``torch.Generator``; a request with ``seed`` gets a generator
seeded with it, so its draws do not depend on what else shares the batch.

Logits processing, in the scheduler's order: grammar mask, presence/frequency penalties, repetition
penalty (over prompt and output tokens, as in transformers and vLLM), ``min_tokens`` (end tokens are
masked until that many tokens exist), then log-probabilities are taken; sampling then applies
temperature, min-p, top-k and top-p.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import torch


@dataclass
class SamplingParams:
    """What a request asks of generation (already validated by the API layer)."""

    max_tokens: int
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    seed: int | None = None
    stop: list[str] = field(default_factory=list)
    stop_token_ids: list[int] = field(default_factory=list)
    ignore_eos: bool = False
    logprobs: int | None = None  # None: off; k >= 0: chosen token plus k alternatives
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    repetition_penalty: float = 1.0
    min_tokens: int = 0
    min_p: float = 0.0

    @property
    def greedy(self) -> bool:
        """Temperature 0 means argmax."""
        return self.temperature <= 1e-5

    def make_generator(self, device: torch.device | str = "cpu") -> torch.Generator | None:
        """A generator for sampled rows: seeded by ``seed`` when given, else from fresh entropy."""
        if self.greedy:
            return None
        gen = torch.Generator(device=device)
        gen.manual_seed(self.seed if self.seed is not None else random.SystemRandom().getrandbits(63))
        return gen


def apply_penalties(logits: torch.Tensor, row: int, generated: list[int], presence: float,
                    frequency: float) -> None:
    """OpenAI presence/frequency penalties over the tokens generated so far (in place)."""
    if not generated or (presence == 0.0 and frequency == 0.0):
        return
    ids, counts = torch.unique(torch.tensor(generated, device=logits.device), return_counts=True)
    logits[row, ids] -= frequency * counts.to(logits.dtype) + presence


def apply_repetition_penalty(logits: torch.Tensor, row: int, seen: torch.Tensor, penalty: float) -> None:
    """transformers/vLLM repetition penalty (in place): logits of ``seen`` tokens (a [V] bool mask of the
    prompt and output tokens) are divided by ``penalty`` when positive and multiplied when negative."""
    if penalty == 1.0:
        return
    x = logits[row]
    logits[row] = torch.where(seen, torch.where(x > 0, x / penalty, x * penalty), x)


def suppress_tokens(logits: torch.Tensor, row: int, token_ids: list[int] | set[int]) -> None:
    """Forbid ``token_ids`` in ``row`` (``min_tokens``), unless nothing else would be allowed (a grammar
    that only allows the end): then the row is left as it was."""
    ids = [t for t in token_ids if 0 <= t < logits.shape[-1]]
    if not ids:
        return
    idx = torch.tensor(ids, device=logits.device)
    saved = logits[row, idx].clone()
    logits[row, idx] = float("-inf")
    if not bool(torch.isfinite(logits[row]).any()):
        logits[row, idx] = saved


def _filter(logits: torch.Tensor, top_k: torch.Tensor, top_p: torch.Tensor,
            min_p: torch.Tensor | None = None) -> torch.Tensor:
    """Mask logits outside each row's min-p / top-k / nucleus (rows of a [m, V] tensor)."""
    if min_p is not None and bool((min_p > 0).any()):
        probs = torch.softmax(logits, dim=-1)
        keep = probs >= min_p[:, None] * probs.max(dim=-1, keepdim=True).values
        logits = logits.masked_fill(~keep, float("-inf"))
    if bool((top_k > 0).any()) or bool((top_p < 1.0).any()):
        sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
        vocab = logits.shape[-1]
        ranks = torch.arange(vocab, device=logits.device)[None, :]
        k = torch.where(top_k > 0, top_k, torch.full_like(top_k, vocab))
        drop = ranks >= k[:, None]
        probs = torch.softmax(sorted_logits, dim=-1)
        cum = probs.cumsum(dim=-1) - probs  # mass strictly before each token
        drop |= cum > top_p[:, None]
        drop[:, 0] = False
        sorted_logits = sorted_logits.masked_fill(drop, float("-inf"))
        logits = torch.empty_like(logits).scatter_(1, order, sorted_logits)
    return logits


def select_tokens(logits: torch.Tensor, params: list[SamplingParams],
                  gens: list[torch.Generator | None]) -> list[int]:
    """Pick one token per row of ``logits`` [n, V] (already grammar-masked and penalised)."""
    n = logits.shape[0]
    greedy = [i for i, p in enumerate(params) if p.greedy]
    if len(greedy) == n:
        return logits.argmax(dim=-1).tolist()
    out = [0] * n
    if greedy:
        idx = torch.tensor(greedy, device=logits.device)
        for i, tok in zip(greedy, logits.index_select(0, idx).argmax(dim=-1).tolist(), strict=True):
            out[i] = tok
    sampled = [i for i, p in enumerate(params) if not p.greedy]
    if sampled:
        idx = torch.tensor(sampled, device=logits.device)
        sub = logits.index_select(0, idx)
        temps = torch.tensor([params[i].temperature for i in sampled], device=logits.device, dtype=sub.dtype)
        sub = sub / temps[:, None]
        top_k = torch.tensor([params[i].top_k for i in sampled], device=logits.device)
        top_p = torch.tensor([params[i].top_p for i in sampled], device=logits.device, dtype=sub.dtype)
        min_p = torch.tensor([params[i].min_p for i in sampled], device=logits.device, dtype=sub.dtype)
        probs = torch.softmax(_filter(sub, top_k, top_p, min_p), dim=-1)
        for j, i in enumerate(sampled):
            out[i] = int(torch.multinomial(probs[j], 1, generator=gens[i]))
    return out


@dataclass
class TokenLogprob:
    """A generated token's log-probability and the top alternatives (token ids)."""

    token_id: int
    logprob: float
    top: list[tuple[int, float]]


def compute_logprobs(logits: torch.Tensor, rows: list[int], chosen: list[int],
                     ks: list[int]) -> list[TokenLogprob]:
    """Log-softmax of the (grammar-masked, untempered) logits for ``rows``; -inf alternatives are left out."""
    if not rows:
        return []
    idx = torch.tensor(rows, device=logits.device)
    lp = torch.log_softmax(logits.index_select(0, idx).float(), dim=-1)
    out: list[TokenLogprob] = []
    kmax = max(ks)
    top_vals, top_ids = (lp.topk(kmax, dim=-1) if kmax > 0 else (None, None))
    for j, (tok, k) in enumerate(zip(chosen, ks, strict=True)):
        value = float(lp[j, tok])
        top: list[tuple[int, float]] = []
        if k > 0 and top_vals is not None and top_ids is not None:
            for t, v in zip(top_ids[j, :k].tolist(), top_vals[j, :k].tolist(), strict=True):
                if v != float("-inf"):
                    top.append((t, v))
        out.append(TokenLogprob(token_id=tok, logprob=max(value, -9999.0), top=top))
    return out
