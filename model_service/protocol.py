"""Request bodies of the OpenAI-compatible endpoints (pydantic, strict types) and their validation.

Every problem becomes a :class:`BadRequest` (HTTP 400) whose message names the field. Nothing a
client sends is dropped in silence: an unknown field is a 400 naming it, except that an unknown field
whose value is ``null`` asks for nothing and is ignored (clients that send back an earlier answer's
message object include ``"audio": null``, ``"function_call": null``...). Fields accepted but
ignored on purpose, each for a stated reason, are listed in :data:`IGNORED_FIELDS`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from model_service.errors import BadRequest

MAX_TOP_LOGPROBS = 20

# Accepted and ignored, with the reason (also in docs/model_service.md).
IGNORED_FIELDS = {
    "user": "an end-user id for the provider's abuse monitoring; it cannot change the answer",
    "messages[].refusal": "output field of an earlier assistant answer sent back as history",
    "messages[].annotations": "output field (citations) of an earlier assistant answer sent back as history",
}


class _Base(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    @model_validator(mode="before")
    @classmethod
    def _drop_null_unknowns(cls, data: Any) -> Any:
        """An unknown field set to null asks for nothing: drop it (any other unknown field is a 400)."""
        if isinstance(data, dict):
            known = set(cls.model_fields) | {f.alias for f in cls.model_fields.values() if f.alias}
            return {k: v for k, v in data.items() if v is not None or k in known}
        return data


class StreamOptions(_Base):
    """``stream_options``."""

    include_usage: bool = False


class FunctionDef(_Base):
    """``tools[].function``."""

    name: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.\-]+$")]
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class Tool(_Base):
    """``tools[]``."""

    type: Literal["function"] = "function"
    function: FunctionDef


class NamedFunction(_Base):
    """``tool_choice.function``."""

    name: str


class NamedToolChoice(_Base):
    """``tool_choice`` naming a function."""

    type: Literal["function"] = "function"
    function: NamedFunction


class JSONSchemaFormat(_Base):
    """``response_format.json_schema``."""

    name: str = "response"
    description: str | None = None
    schema_: dict[str, Any] | None = Field(default=None, alias="schema")
    strict: bool | None = None


class ResponseFormat(_Base):
    """``response_format``."""

    type: Literal["text", "json_object", "json_schema"]
    json_schema: JSONSchemaFormat | None = None


class _Sampling(_Base):
    model: str | None = None
    temperature: Annotated[float, Field(ge=0.0, le=2.0)] | None = None
    top_p: Annotated[float, Field(gt=0.0, le=1.0)] | None = None
    top_k: int | None = None
    n: Annotated[int, Field(ge=1, le=16)] = 1
    stream: bool = False
    stream_options: StreamOptions | None = None
    stop: str | list[str] | None = None
    stop_token_ids: list[int] | None = None
    seed: int | None = None
    presence_penalty: Annotated[float, Field(ge=-2.0, le=2.0)] = 0.0
    frequency_penalty: Annotated[float, Field(ge=-2.0, le=2.0)] = 0.0
    repetition_penalty: Annotated[float, Field(gt=0.0, le=2.0)] = 1.0
    min_tokens: Annotated[int, Field(ge=0)] = 0
    min_p: Annotated[float, Field(ge=0.0, le=1.0)] = 0.0
    ignore_eos: bool = False
    user: str | None = None  # ignored: see IGNORED_FIELDS
    response_format: ResponseFormat | None = None
    guided_choice: list[str] | None = None
    guided_regex: str | None = None
    logit_bias: dict[str, float] | None = None

    def stop_list(self) -> list[str]:
        """``stop`` as a list (at most 16 entries, none empty)."""
        stops = [self.stop] if isinstance(self.stop, str) else list(self.stop or [])
        if len(stops) > 16:
            raise BadRequest("stop: at most 16 stop strings", param="stop")
        if any(not s for s in stops):
            raise BadRequest("stop: stop strings must not be empty", param="stop")
        return stops


class CompletionRequest(_Sampling):
    """``POST /v1/completions``."""

    prompt: str | list[str] | list[int] | list[list[int]]
    max_tokens: int | None = 16
    logprobs: Annotated[int, Field(ge=0, le=MAX_TOP_LOGPROBS)] | None = None
    echo: bool = False
    best_of: int | None = None
    suffix: str | None = None


class ChatMessage(_Base):
    """One entry of ``messages``."""

    role: str
    content: str | list[dict[str, Any]] | None = None
    name: str | None = None
    tool_calls: list[dict[str, Any]] | None = None
    tool_call_id: str | None = None
    reasoning_content: str | None = None
    refusal: str | None = None  # ignored: see IGNORED_FIELDS
    annotations: list[Any] | None = None  # ignored: see IGNORED_FIELDS


class ChatRequest(_Sampling):
    """``POST /v1/chat/completions``."""

    messages: Annotated[list[ChatMessage], Field(min_length=1)]
    max_tokens: int | None = None
    max_completion_tokens: int | None = None
    logprobs: bool = False
    top_logprobs: Annotated[int, Field(ge=0, le=MAX_TOP_LOGPROBS)] | None = None
    tools: list[Tool] | None = None
    tool_choice: Literal["none", "auto", "required"] | NamedToolChoice | None = None
    parallel_tool_calls: bool = True
    chat_template_kwargs: dict[str, Any] | None = None
    add_generation_prompt: bool = True
    continue_final_message: bool = False


def _describe(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        loc = ".".join(str(p) for p in err.get("loc", ()) if not str(p).startswith("function-"))
        parts.append(f"{loc or 'body'}: {err.get('msg', 'invalid')}")
    return "; ".join(parts)


def parse_body(raw: bytes, model: type[BaseModel]) -> Any:
    """Parse and validate a JSON body; malformed JSON or wrong types become a 400 that names the problem."""
    if not raw.strip():
        raise BadRequest("request body is empty; send a JSON object")
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        kinds = {e.get("type") for e in exc.errors()}
        if "json_invalid" in kinds:
            detail = exc.errors()[0].get("ctx", {}).get("error", "") or exc.errors()[0].get("msg", "")
            raise BadRequest(f"request body is not valid JSON: {detail}")
        if "model_type" in kinds and len(exc.errors()) == 1 and not exc.errors()[0].get("loc"):
            raise BadRequest("request body must be a JSON object")
        unknown = [e for e in exc.errors() if e.get("type") == "extra_forbidden"]
        if unknown:
            names = [_loc(e) for e in unknown]
            raise BadRequest(f"unknown parameter{'s' if len(names) > 1 else ''} {', '.join(names)}: "
                             "not supported by this server (remove it, or send null)", param=names[0],
                             code="unknown_parameter")
        first = exc.errors()[0]
        param = ".".join(str(p) for p in first.get("loc", ())) or None
        raise BadRequest(f"invalid request: {_describe(exc)}", param=param)


def _loc(err: Any) -> str:
    out = ""
    for part in err.get("loc", ()):
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out
