"""Function calling: the tool prompt, which grammar a ``tool_choice`` needs, and parsing calls back.

Calls use the Hermes/Qwen format that many open models are trained on::

    <tool_call>
    {"name": "calculate_area", "arguments": {"shape": "circle", "radius": 5}}
    </tool_call>

``tool_choice``: ``none`` (no tools), ``auto`` (free text; a call's JSON is constrained once the
model opens ``<tool_call>``), ``required`` (at least one call), or a named function (the output is
exactly that function's arguments, constrained to its parameter schema).
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from typing import Any

from model_service.errors import BadRequest
from model_service.protocol import ChatRequest, NamedToolChoice

_CALL_RE = re.compile(r"<tool_call>\s*(\{.*?\})\s*</tool_call>", re.DOTALL)
EMPTY_PARAMETERS: dict[str, Any] = {"type": "object", "properties": {}}


@dataclass
class ToolPlan:
    """What a chat request's tools mean for prompting, grammar and parsing."""

    mode: str  # "none", "auto", "required" or "named"
    tools: list[dict[str, Any]]
    named: str | None = None

    @property
    def active(self) -> bool:
        """Whether tools take part in this request at all."""
        return self.mode != "none" and bool(self.tools)


def plan_tools(req: ChatRequest) -> ToolPlan:
    """Validate ``tools``/``tool_choice`` and decide the mode (400 on contradictions)."""
    tools = [t.model_dump(by_alias=True, exclude_none=True) for t in (req.tools or [])]
    for t in tools:
        t["function"].setdefault("parameters", EMPTY_PARAMETERS)
    names = [t["function"]["name"] for t in tools]
    if len(set(names)) != len(names):
        raise BadRequest("tools: function names must be unique", param="tools")
    choice = req.tool_choice
    if choice is None:
        choice = "auto" if tools else "none"
    if isinstance(choice, NamedToolChoice):
        if choice.function.name not in names:
            raise BadRequest(f"tool_choice names function {choice.function.name!r}, which is not in tools",
                             param="tool_choice")
        return ToolPlan(mode="named", tools=tools, named=choice.function.name)
    if choice in ("required", "auto") and not tools:
        if choice == "required":
            raise BadRequest("tool_choice 'required' needs a non-empty tools list", param="tool_choice")
        return ToolPlan(mode="none", tools=[])
    return ToolPlan(mode=choice, tools=tools)


def tools_system_prompt(tools: list[dict[str, Any]], named: str | None = None) -> str:
    """The instructions added to the system message when the chat template knows nothing of tools."""
    lines = ["You can call functions. Their signatures (JSON Schema) are inside <tools></tools>:", "<tools>"]
    lines += [json.dumps(t, ensure_ascii=False) for t in tools]
    lines += ["</tools>"]
    if named:
        lines.append(f"Call the function {named}: answer only with its arguments as one JSON object.")
    else:
        lines += ["To call a function, answer with a JSON object of its name and arguments inside "
                  "<tool_call></tool_call> tags:", "<tool_call>",
                  '{"name": <function-name>, "arguments": <args-json-object>}', "</tool_call>"]
    return "\n".join(lines)


def parameters_of(plan: ToolPlan, name: str) -> dict[str, Any]:
    """The parameter schema of a tool."""
    for t in plan.tools:
        if t["function"]["name"] == name:
            return t["function"].get("parameters") or EMPTY_PARAMETERS
    raise KeyError(name)


def new_call_id() -> str:
    """An OpenAI-style tool call id."""
    return "call_" + uuid.uuid4().hex[:24]


def make_call(name: str, arguments: str) -> dict[str, Any]:
    """One entry of ``message.tool_calls``."""
    return {"id": new_call_id(), "type": "function", "function": {"name": name, "arguments": arguments}}


def parse_tool_calls(text: str, known: set[str]) -> tuple[str | None, list[dict[str, Any]]]:
    """Split model output into (content before the first call, tool calls); unknown names are ignored."""
    calls: list[dict[str, Any]] = []
    first = None
    for match in _CALL_RE.finditer(text):
        try:
            obj = json.loads(match.group(1))
        except json.JSONDecodeError:
            continue
        if not isinstance(obj, dict) or obj.get("name") not in known:
            continue
        args = obj.get("arguments", {})
        calls.append(make_call(obj["name"], json.dumps(args, ensure_ascii=False)))
        if first is None:
            first = match.start()
    if not calls:
        return text, []
    content = text[:first].strip() if first is not None else ""
    return (content or None), calls


def render_call_history(tool_calls: list[dict[str, Any]]) -> str:
    """An assistant message's earlier ``tool_calls`` as text, for templates without tool support."""
    blocks = []
    for call in tool_calls:
        fn = call.get("function") or {}
        args = fn.get("arguments", "{}")
        try:
            args_obj = json.loads(args) if isinstance(args, str) else args
        except json.JSONDecodeError:
            args_obj = args
        blocks.append("<tool_call>\n" + json.dumps({"name": fn.get("name"), "arguments": args_obj},
                                                   ensure_ascii=False) + "\n</tool_call>")
    return "\n".join(blocks)
