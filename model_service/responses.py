"""OpenAI response shapes: logprobs (chat and legacy), chat messages with reasoning and tool calls."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from model_service.reasoning import split_reasoning
from model_service.sampling import TokenLogprob
from model_service.tools import ToolPlan, make_call, parse_tool_calls


class Vocab:
    """Token id -> (text, bytes) for logprobs, from xgrammar's decoded vocabulary."""

    def __init__(self, decoded: list[bytes]):
        self.decoded = decoded

    def bytes_of(self, token_id: int) -> bytes:
        """The raw bytes a token stands for."""
        return self.decoded[token_id] if 0 <= token_id < len(self.decoded) else b""

    def text_of(self, token_id: int) -> str:
        """The token as text (invalid UTF-8 fragments become U+FFFD)."""
        return self.bytes_of(token_id).decode("utf-8", errors="replace")


def chat_logprob_entry(lp: TokenLogprob, vocab: Vocab) -> dict[str, Any]:
    """One ``choices[].logprobs.content[]`` item."""
    return {
        "token": vocab.text_of(lp.token_id),
        "logprob": lp.logprob,
        "bytes": list(vocab.bytes_of(lp.token_id)),
        "top_logprobs": [{"token": vocab.text_of(t), "logprob": v, "bytes": list(vocab.bytes_of(t))}
                         for t, v in lp.top],
    }


def completion_logprobs(lps: list[TokenLogprob], vocab: Vocab, offset: int) -> dict[str, Any]:
    """The legacy ``logprobs`` object: tokens, token_logprobs, top_logprobs, text_offset."""
    tokens, token_lps, tops, offsets = [], [], [], []
    for lp in lps:
        text = vocab.text_of(lp.token_id)
        tokens.append(text)
        token_lps.append(lp.logprob)
        top = {vocab.text_of(t): v for t, v in lp.top}
        top.setdefault(text, lp.logprob)
        tops.append(top)
        offsets.append(offset)
        offset += len(text)
    return {"tokens": tokens, "token_logprobs": token_lps, "top_logprobs": tops, "text_offset": offsets}


@dataclass
class Result:
    """A finished generation (one choice)."""

    text: str = ""
    token_ids: list[int] = field(default_factory=list)
    logprobs: list[TokenLogprob] = field(default_factory=list)
    finish_reason: str | None = None
    completion_tokens: int = 0
    prompt_tokens: int = 0
    error: str | None = None


def new_id(prefix: str) -> str:
    """``chatcmpl-...`` / ``cmpl-...`` ids."""
    return f"{prefix}-{uuid.uuid4().hex}"


def now() -> int:
    """``created`` timestamp."""
    return int(time.time())


def chat_message(result: Result, plan: ToolPlan, *, reasoning_on: bool, in_reasoning: bool
                 ) -> tuple[dict[str, Any], str]:
    """The assistant message and finish reason for one finished chat generation."""
    reasoning, content = (split_reasoning(result.text, in_reasoning) if reasoning_on else (None, result.text))
    finish = result.finish_reason or "stop"
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if plan.mode == "named" and plan.named:
        message["content"] = None
        message["tool_calls"] = [make_call(plan.named, content.strip())]
        if finish == "stop":
            finish = "tool_calls"
    elif plan.active:
        before, calls = parse_tool_calls(content, {t["function"]["name"] for t in plan.tools})
        if calls:  # as vLLM: complete calls make it a tool_calls answer even if text after them was cut
            message["content"] = before
            message["tool_calls"] = calls
            if finish in {"stop", "length"}:
                finish = "tool_calls"
    if reasoning is not None:
        message["reasoning_content"] = reasoning
        message["reasoning"] = reasoning
    return message, finish


def usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    """The ``usage`` object."""
    return {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens}
