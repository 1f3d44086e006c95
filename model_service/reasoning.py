"""Reasoning output: text inside ``<think>…</think>`` goes to ``reasoning_content``, never to ``content``.

Works on streamed text: a tag split across deltas is held back until it is complete. When the
prompt already opened ``<think>`` (templates of R1-style models do), generation starts inside the
reasoning block.
"""

from __future__ import annotations

THINK_OPEN = "<think>"
THINK_CLOSE = "</think>"


def prompt_opens_think(prompt: str) -> bool:
    """Whether the rendered prompt ends inside an open ``<think>`` block."""
    return prompt.rstrip().endswith(THINK_OPEN)


def _partial_suffix(text: str, tag: str) -> int:
    for n in range(min(len(tag) - 1, len(text)), 0, -1):
        if text.endswith(tag[:n]):
            return n
    return 0


class ReasoningSplitter:
    """Feed text deltas, get ``(reasoning, content)`` deltas."""

    def __init__(self, in_reasoning: bool = False):
        self.state = "reasoning" if in_reasoning else "start"
        self.buf = ""
        self.content_started = False
        self.saw_reasoning = in_reasoning

    def _content(self, text: str) -> str:
        if not self.content_started:
            text = text.lstrip()
            if text:
                self.content_started = True
        return text

    def feed(self, text: str) -> tuple[str, str]:
        """Process a delta; returns the reasoning and content text that are now certain."""
        self.buf += text
        reasoning, content = "", ""
        while self.buf:
            if self.state == "start":
                stripped = self.buf.lstrip()
                if stripped.startswith(THINK_OPEN):
                    self.state = "reasoning"
                    self.saw_reasoning = True
                    self.buf = stripped[len(THINK_OPEN):]
                    continue
                if THINK_OPEN.startswith(stripped):
                    break  # could still become <think>
                self.state = "content"
                continue
            if self.state == "reasoning":
                idx = self.buf.find(THINK_CLOSE)
                if idx >= 0:
                    reasoning += self.buf[:idx]
                    self.buf = self.buf[idx + len(THINK_CLOSE):]
                    self.state = "content"
                    continue
                keep = _partial_suffix(self.buf, THINK_CLOSE)
                reasoning += self.buf[: len(self.buf) - keep]
                self.buf = self.buf[len(self.buf) - keep:]
                break
            content += self._content(self.buf)
            self.buf = ""
        return reasoning, content

    def finish(self) -> tuple[str, str]:
        """Flush what is held back at the end of the output."""
        rest, self.buf = self.buf, ""
        if self.state == "reasoning":
            return rest, ""
        return "", self._content(rest)


def split_reasoning(text: str, in_reasoning: bool) -> tuple[str | None, str]:
    """Split a whole output; reasoning is None when there was no think block."""
    splitter = ReasoningSplitter(in_reasoning)
    r1, c1 = splitter.feed(text)
    r2, c2 = splitter.finish()
    return ((r1 + r2).strip() if splitter.saw_reasoning else None), c1 + c2
