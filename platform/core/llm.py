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
  contradictions with the facts; :mod:`core.quality` has the checks); any problem rejects the answer.
- **First try**: greedy, with the template version's own repetition controls if its ``sampling`` sets
  any (``v<N>.meta.json``; e.g. finance's risk judgment v2, whose greedy answers looped).
- **One retry with other settings**: an answer that is not JSON, fails validation or the gate is asked
  for once more with the model service's repetition controls, a little temperature and another seed
  (:data:`RETRY_SETTINGS`, never weaker than the first try's). If the second answer fails too, the
  step is ``rejected``: the value is withheld and ``problems`` holds both tries' reasons (``1: ...``,
  ``2: ...``); ``meta()["tries"]`` records each try's settings and problems.
- **Failure of the model service**: a transient error (service down, 503, circuit open) is raised for
  the job to retry while it has attempts left (``final_attempt=False``); on the final attempt, and for a
  permanent error (the service rejects the request: a 4xx), the step is ``unavailable`` with the
  reason, so the calibrated half of the result still goes out.
"""
from __future__ import annotations

import copy
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
# The second try after a rejected answer: the model service's repetition controls (HF-style
# repetition_penalty on every token already seen, OpenAI-style frequency_penalty by count), a little
# temperature and another seed, so the same greedy path is not taken again.
RETRY_SETTINGS: dict[str, Any] = {"temperature": 0.3, "seed": 1, "repetition_penalty": 1.2,
                                  "frequency_penalty": 0.3}


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
    tries: list[dict] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status == OK

    @property
    def model(self) -> str:
        return self.answer.model if self.answer else ""

    @property
    def first_try_accepted(self) -> bool:
        """The first answer passed validation and the gate (no retry was needed)."""
        return bool(self.tries) and not self.tries[0]["problems"]

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
        if len(self.tries) > 1:
            out["tries"] = [{"settings": t["settings"], "problems": t["problems"]} for t in self.tries]
        return out


def llm_step(*, template: str, language: str, variables: dict[str, Any], max_tokens: int,
             validate: Callable[[Any], Any] | None = None, gate: Callable[[Any], list[str]] | None = None,
             privacy: Callable[[list[dict]], list[str]] | None = None, final_attempt: bool = False,
             top_logprobs: int | None = None, frequency_penalty: float | None = None,
             seed: int | None = 0, version: int | None = None, retry: bool = True,
             narrow_schema: Callable[[dict], dict] | None = None) -> LLMStep:
    """Run one prompt template through the model service (see the module docstring).

    ``version`` picks a template version other than the newest enabled one (prompt evaluation);
    ``retry=False`` keeps the first answer however it fares (measuring a template alone).
    ``narrow_schema(schema) -> schema`` tightens the template's schema for this call only (a copy is
    passed), e.g. an enum cut down to what this item offers; the answer must still fit the stored one.
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
        schema = narrow_schema(copy.deepcopy(row.output_schema)) if narrow_schema else row.output_schema
        extra["response_format"] = {"type": "json_schema", "json_schema": {
            "name": row.name.rsplit(".", 1)[-1], "schema": schema, "strict": True}}
    started = time.monotonic()
    # The first try is greedy, with the version's own repetition controls if it has any.
    first = {"temperature": 0.0, "seed": seed, **(row.sampling or {})}
    if frequency_penalty:
        first["frequency_penalty"] = max(frequency_penalty, first.get("frequency_penalty", 0.0))
    try:
        _attempt(step, client, row, messages, max_tokens, top_logprobs, extra, first, validate, gate)
    except TransientModelError as exc:
        if not final_attempt:
            raise
        return _unavailable(step, exc, started, f"the model service stayed unavailable: {exc}")
    except ModelServiceError as exc:
        return _unavailable(step, exc, started, f"the model service refused the request: {exc}")
    if step.status == REJECTED and retry:
        settings = {**(row.sampling or {}), **RETRY_SETTINGS, "seed": (seed or 0) + 1}
        for key in ("repetition_penalty", "frequency_penalty"):  # never weaker than the first try's
            settings[key] = max(settings[key], first.get(key, settings[key]))
        try:
            _attempt(step, client, row, messages, max_tokens, top_logprobs, extra, settings, validate, gate)
        except ModelServiceError as exc:
            step.problems.append(f"the retry with other settings could not be made: {exc}"[:500])
    step.latency_s = time.monotonic() - started
    if step.status == REJECTED:
        step.problems = [f"{i}: {p}" if len(step.tries) > 1 else p
                         for i, t in enumerate(step.tries, 1) for p in t["problems"]] + [
            p for p in step.problems if p.startswith("the retry")]
    return step


def _attempt(step: LLMStep, client, row, messages: list[dict], max_tokens: int, top_logprobs: int | None,
             extra: dict[str, Any], settings: dict[str, Any], validate, gate) -> None:
    """One try: call (asking once more with twice the budget if cut), parse, validate, gate. Sets the
    step's status, value, answer and truncation, and records the try in ``step.tries``."""
    sampling = {k: v for k, v in settings.items() if k not in ("temperature", "seed")}
    body_extra = {**extra, **sampling}
    budget = max_tokens
    answer: ChatResult | None = None
    for _ in range(2):
        step.attempts += 1
        answer = client.chat(messages=messages, max_tokens=budget, temperature=settings["temperature"],
                             seed=settings["seed"], top_logprobs=top_logprobs, extra=body_extra or None)
        if answer.finish_reason != "length" or row.output_schema is None:
            break
        budget = max_tokens * TRUNCATION_RETRY_FACTOR
    assert answer is not None
    step.answer = answer
    step.value = step.parsed = None
    step.truncated = answer.finish_reason == "length"
    notes: list[str] = []
    problems: list[str] = []
    if step.truncated:
        notes.append(f"the answer was cut at {budget} tokens; it was closed at its last complete value")
    parsed: Any = answer.content
    if row.output_schema is not None:
        parsed = json_salvage(answer.content) if step.truncated else _json_or_none(answer.content)
        if parsed is None:
            parsed = json_salvage(answer.content)
        if parsed is None:
            problems.append("the answer is not JSON")
    step.parsed = parsed
    if not problems:
        try:
            value = validate(parsed) if validate is not None else parsed
        except ValueError as exc:
            problems.append(f"the answer is not usable: {exc}")
        else:
            problems = list(gate(value)) if gate is not None else []
    step.tries.append({"settings": {k: v for k, v in settings.items() if v is not None},
                       "problems": notes + problems, "content": answer.content})
    if problems:
        step.status = REJECTED
        step.problems = notes + problems
        return
    step.value = value
    step.status = OK
    step.problems = notes


def _unavailable(step: LLMStep, exc: ModelServiceError, started: float, message: str) -> LLMStep:
    step.status = UNAVAILABLE
    step.error_code = exc.code
    step.latency_s = time.monotonic() - started
    step.problems.append(message[:500])
    logger.warning("llm step %s unavailable (%s)", step.template, exc.code)
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
