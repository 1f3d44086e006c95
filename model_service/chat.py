"""Chat prompts: normalise OpenAI messages and render them with the tokenizer's chat template.

Templates that know tools get ``tools=``; for the others (SmolLM2's among them) the tool list and
the call format are added to the system message, earlier calls are rendered as ``<tool_call>``
text and tool results as ``<tool_response>`` user turns.
"""

from __future__ import annotations

from typing import Any

from jinja2 import TemplateError

from model_service.errors import BadRequest
from model_service.protocol import ChatRequest
from model_service.tools import ToolPlan, render_call_history, tools_system_prompt

_ROLES = {"system", "developer", "user", "assistant", "tool"}
FALLBACK_TEMPLATE = (
    "{% for message in messages %}{{ message['role'] }}: {{ message['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}assistant:{% endif %}"
)


def template_supports_tools(tokenizer: Any) -> bool:
    """Whether the chat template renders a ``tools`` variable."""
    template = getattr(tokenizer, "chat_template", None) or ""
    return isinstance(template, str) and "tools" in template


def _text(content: Any, where: str) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    parts = []
    for i, part in enumerate(content):
        if part.get("type") != "text" or not isinstance(part.get("text"), str):
            raise BadRequest(f"{where}.content[{i}]: only text parts are supported by this model",
                             param=f"{where}.content")
        parts.append(part["text"])
    return "\n".join(parts)


def normalise_messages(req: ChatRequest, tools_native: bool) -> list[dict[str, Any]]:
    """Messages as plain dicts a template can render (400 for unknown roles or non-text parts)."""
    out: list[dict[str, Any]] = []
    for i, msg in enumerate(req.messages):
        where = f"messages[{i}]"
        role = msg.role
        if role not in _ROLES:
            raise BadRequest(f"{where}.role: unknown role {role!r} (use system, user, assistant or tool)",
                             param=f"{where}.role")
        content = _text(msg.content, where)
        if role == "developer":
            role = "system"
        entry: dict[str, Any] = {"role": role, "content": content}
        if role == "assistant" and msg.tool_calls:
            if tools_native:
                entry["tool_calls"] = msg.tool_calls
            else:
                history = render_call_history(msg.tool_calls)
                entry["content"] = f"{content}\n{history}".strip()
        if role == "tool":
            if tools_native:
                if msg.tool_call_id:
                    entry["tool_call_id"] = msg.tool_call_id
            else:
                entry = {"role": "user", "content": f"<tool_response>\n{content}\n</tool_response>"}
        if msg.name and role in {"user", "assistant"}:
            entry["name"] = msg.name
        out.append(entry)
    return out


def render_chat(tokenizer: Any, req: ChatRequest, plan: ToolPlan) -> str:
    """The prompt text for a chat request."""
    native = template_supports_tools(tokenizer)
    messages = normalise_messages(req, native)
    if plan.active and not native:
        note = tools_system_prompt(plan.tools, plan.named if plan.mode == "named" else None)
        if messages and messages[0]["role"] == "system":
            messages[0] = {**messages[0], "content": f"{messages[0]['content']}\n\n{note}".strip()}
        else:
            messages.insert(0, {"role": "system", "content": note})
    kwargs: dict[str, Any] = dict(req.chat_template_kwargs or {})
    kwargs.update(tokenize=False)
    if req.continue_final_message:
        if messages[-1]["role"] != "assistant":
            raise BadRequest("continue_final_message needs an assistant message last", param="messages")
        kwargs.update(add_generation_prompt=False, continue_final_message=True)
    else:
        kwargs["add_generation_prompt"] = req.add_generation_prompt
    if plan.active and native:
        kwargs["tools"] = plan.tools
    template = None if getattr(tokenizer, "chat_template", None) else FALLBACK_TEMPLATE
    try:
        text = tokenizer.apply_chat_template(messages, chat_template=template, **kwargs)
    except (TemplateError, TypeError, ValueError, KeyError, IndexError) as exc:
        raise BadRequest(f"messages cannot be rendered with the chat template: {exc}", param="messages")
    if not isinstance(text, str):
        raise BadRequest("the chat template did not produce text", param="messages")
    return text
