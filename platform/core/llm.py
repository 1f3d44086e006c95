"""The language-model step: one routine that every app's job handler uses.

``llm_step`` runs a prompt template through the model service in five stages::

    render template vN ──> privacy hook ──> call (constrained JSON) ──> parse + validate ──> gate

and answers an :class:`LLMStep`: the validated output with its metadata, or "no usable output" with
the reasons. What an app may rely on:

- **Rendering**: the active version of the template in the job's language (``prompt_template_get``),
  variables substituted; a missing variable is a :class:`core.prompts.PromptError` (a bug: the job fails).
- **Privacy**: ``privacy(messages)`` returns what it found that must never leave the platform; anything
  found stops the step before the call with :class:`PermanentJobError` ``privacy_check_failed`` (the
  message says how many, never what).
- **One truncation policy**: the schema goes to the model service as ``response_format`` (constrained
  decoding), so the answer is always a prefix of a valid document. An answer cut at ``max_tokens`` is
  asked for once more with twice the budget; if it is cut again, it is closed at its last complete
  value (:func:`json_salvage`), validated like any other, and marked ``truncated``.
- **Validation**: ``validate(parsed)`` returns the value the app keeps or raises
  :class:`LLMOutputInvalid` (any ``ValueError``) with the reason; the step is then ``rejected``.
- **Gate**: ``gate(value)`` returns the problems that make the output unusable (loops, debris,
  contradictions with the facts); any problem makes the step ``rejected`` and the value is withheld.
- **Failure of the model service**: a transient error (service down, 503, circuit open) is raised for
  the job to retry while it has attempts left (``final_attempt=False``); on the final attempt, and for a
  permanent error (the service rejects the request: a 4xx), the step is ``unavailable`` with the
  reason, so the calibrated half of the result still goes out.
"""
from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from core.jobs import PermanentJobError
from core.model_client import ChatResult, ModelServiceError, TransientModelError, get_model_client

logger = logging.getLogger(__name__)

OK = "ok"
REJECTED = "rejected"
UNAVAILABLE = "unavailable"
TRUNCATION_RETRY_FACTOR = 2


class LLMOutputInvalid(ValueError):
    """The model's answer parsed but is not what the app can use; the message says why."""


@dataclass
class LLMStep:
    """What one language-model step produced.

    ``status`` is ``ok`` (``value`` holds the validated output), ``rejected`` (the model answered but
    the output failed validation or the gate: ``value`` is None, ``problems`` says why) or
    ``unavailable`` (no answer: ``problems`` holds the model service's reason).
    """

    status: str
    template: str
    template_version: int | None
    language: str
    value: Any = None
    parsed: Any = None
    answer: ChatResult | None = None
    truncated: bool = False
    problems: list[str] = field(default_factory=list)
    error_code: str = ""
    latency_s: float = 0.0
    attempts: int = 0

    @property
    def ok(self) -> bool:
        return self.status == OK

    @property
    def model(self) -> str:
        return self.answer.model if self.answer else ""

    @property
    def prompt_label(self) -> str:
        return (f"{self.template} v{self.template_version} ({self.language})" if self.template_version
                else self.template)

    def meta(self) -> dict[str, Any]:
        """The step's record for a job result: status, reasons, model, prompt, timing, usage."""
        out: dict[str, Any] = {
            "status": self.status, "model": self.model, "prompt": self.prompt_label,
            "latency_s": round(self.latency_s, 3), "truncated": self.truncated,
        }
        if self.answer is not None:
            out["usage"] = self.answer.usage
            out["finish_reason"] = self.answer.finish_reason
        if self.problems:
            out["problems"] = list(self.problems)
        if self.error_code:
            out["error"] = self.error_code
        return out


def llm_step(*, template: str, language: str, variables: dict[str, Any], max_tokens: int,
             validate: Callable[[Any], Any] | None = None, gate: Callable[[Any], list[str]] | None = None,
             privacy: Callable[[list[dict]], list[str]] | None = None, final_attempt: bool = False,
             top_logprobs: int | None = None, frequency_penalty: float | None = None,
             seed: int | None = 0, version: int | None = None) -> LLMStep:
    """Run one prompt template through the model service (see the module docstring).

    ``version`` picks a template version other than the newest enabled one (prompt evaluation).
    """
    from core.prompts import render_messages
    from core.selectors import prompt_template_get

    row = prompt_template_get(name=template, language=language, version=version)
    step = LLMStep(status=UNAVAILABLE, template=row.name, template_version=row.version, language=row.language)
    messages = render_messages(row.body, variables, name=f"{row.name} v{row.version}")
    if privacy is not None:
        found = privacy(messages)
        if found:
            raise PermanentJobError(f"privacy check: the prompt would contain {len(found)} identifier(s); "
                                    "nothing was sent to the model service", code="privacy_check_failed")
    client = get_model_client(row.name)
    extra: dict[str, Any] = {}
    if row.output_schema is not None:
        # The schema goes in response_format directly (not ``schema=``): an answer cut at max_tokens then
        # comes back and can be retried or salvaged instead of raising.
        extra["response_format"] = {"type": "json_schema", "json_schema": {
            "name": row.name.rsplit(".", 1)[-1], "schema": row.output_schema, "strict": True}}
    if frequency_penalty:
        extra["frequency_penalty"] = frequency_penalty
    started = time.monotonic()
    budget = max_tokens
    answer: ChatResult | None = None
    try:
        for _ in range(2):
            step.attempts += 1
            answer = client.chat(messages=messages, max_tokens=budget, temperature=0.0, seed=seed,
                                 top_logprobs=top_logprobs, extra=extra or None)
            if answer.finish_reason != "length" or row.output_schema is None:
                break
            budget = max_tokens * TRUNCATION_RETRY_FACTOR
    except TransientModelError as exc:
        if not final_attempt:
            raise
        return _unavailable(step, exc, started, f"the model service stayed unavailable: {exc}")
    except ModelServiceError as exc:
        return _unavailable(step, exc, started, f"the model service refused the request: {exc}")
    step.latency_s = time.monotonic() - started
    step.answer = answer
    assert answer is not None
    step.truncated = answer.finish_reason == "length"
    if step.truncated:
        step.problems.append(f"the answer was cut at {budget} tokens; "
                             "it was closed at its last complete value")
    if row.output_schema is not None:
        parsed = json_salvage(answer.content) if step.truncated else _json_or_none(answer.content)
        if parsed is None:
            parsed = json_salvage(answer.content)
        if parsed is None:
            return _rejected(step, "the answer is not JSON")
    else:
        parsed = answer.content
    step.parsed = parsed
    try:
        value = validate(parsed) if validate is not None else parsed
    except ValueError as exc:
        return _rejected(step, f"the answer is not usable: {exc}")
    problems = list(gate(value)) if gate is not None else []
    if problems:
        step.problems.extend(problems)
        step.status = REJECTED
        return step
    step.value = value
    step.status = OK
    return step


def _unavailable(step: LLMStep, exc: ModelServiceError, started: float, message: str) -> LLMStep:
    step.status = UNAVAILABLE
    step.error_code = exc.code
    step.latency_s = time.monotonic() - started
    step.problems.append(message[:500])
    logger.warning("llm step %s unavailable (%s)", step.template, exc.code)
    return step


def _rejected(step: LLMStep, reason: str) -> LLMStep:
    step.status = REJECTED
    step.problems.append(reason)
    return step


def _json_or_none(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


def json_salvage(text: str) -> Any:
    """A JSON document from an answer cut short; None if nothing parses.

    Constrained decoding guarantees a prefix of a valid document, so closing the open string and
    containers (dropping a dangling key or comma) gives the longest usable value. Whole answers parse
    as they are.
    """
    text = (text or "").strip()
    parsed = _json_or_none(text)
    if parsed is not None:
        return parsed
    cuts = [len(text)] + [i for i in range(len(text) - 1, 0, -1) if text[i] == ","][:200]
    for cut in cuts:
        candidate = _close_json(text[:cut])
        if candidate is not None:
            parsed = _json_or_none(candidate)
            if parsed is not None:
                return parsed
    return None


def _close_json(prefix: str) -> str | None:
    stack: list[str] = []
    in_string = escape = False
    for ch in prefix:
        if in_string:
            if escape:
                escape = False
            elif ch == "\\":
                escape = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "{[":
            stack.append("}" if ch == "{" else "]")
        elif ch in "}]":
            if not stack:
                return None
            stack.pop()
    out = prefix
    if in_string:
        if escape:
            out = out[:-1]
        out += '"'
    out = out.rstrip()
    if out.endswith(","):
        out = out[:-1]
    if out.endswith(":") or not stack and not out:
        return None
    return out + "".join(reversed(stack))
