"""Prompt templates: files under each suite app's prompts folder
(``apps/<app>/prompts/<name>/v<N>.<lang>.txt`` plus ``v<N>.schema.json``; the folder comes from the
registry), seeded into :class:`core.models.PromptTemplate` rows, then rendered into chat messages.

A body has a ``[system]`` section and a ``[user]`` section; variables are ``string.Template``
placeholders (``$report``); a missing variable is an error, never silently blank.
"""
from __future__ import annotations

import json
import logging
import re
import string
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

from core.registry import suite_apps

logger = logging.getLogger(__name__)

_FILE_RE = re.compile(r"^v(?P<version>\d+)\.(?P<lang>en|zh-hans)\.txt$")
_SECTION_RE = re.compile(r"^\[(system|user)\]\s*$", re.MULTILINE)


class PromptError(Exception):
    """A template file or a rendering is wrong; the message names the template and the problem."""


@dataclass(frozen=True)
class PromptFile:
    name: str
    version: int
    language: str
    body: str
    output_schema: dict | None
    description: str
    source: str


def prompt_files(apps_dir: Path | None = None) -> list[PromptFile]:
    """Every template version in the suite apps' prompts folders, named ``<app label>.<folder>``.

    With ``apps_dir`` (a test tree), each app's folder is ``<apps_dir>/<label>/<prompts_dir>`` instead
    of the one inside the app's package, and ``source`` is relative to ``apps_dir``'s parent.
    """
    base = apps_dir.parent if apps_dir is not None else Path(settings.BASE_DIR)
    found: list[PromptFile] = []
    for suite_app in suite_apps():
        app = suite_app.label
        root = apps_dir / app / suite_app.prompts_dir if apps_dir is not None else suite_app.prompts_path
        if not root.is_dir():
            continue
        for folder in sorted(p for p in root.iterdir() if p.is_dir()):
            for path in sorted(folder.glob("v*.txt")):
                match = _FILE_RE.match(path.name)
                if not match:
                    raise PromptError(f"{path}: expected a name like v1.en.txt or v1.zh-hans.txt")
                version = int(match["version"])
                schema_path = folder / f"v{version}.schema.json"
                meta_path = folder / f"v{version}.meta.json"
                try:
                    schema = (json.loads(schema_path.read_text(encoding="utf-8"))
                              if schema_path.exists() else None)
                    meta = json.loads(meta_path.read_text(encoding="utf-8")) if meta_path.exists() else {}
                except ValueError as exc:
                    raise PromptError(f"{schema_path if schema_path.exists() else meta_path}: "
                                      f"invalid JSON: {exc}") from None
                body = path.read_text(encoding="utf-8")
                split_sections(body, name=str(path))  # validate early
                found.append(PromptFile(
                    name=f"{app}.{folder.name}", version=version, language=match["lang"], body=body,
                    output_schema=schema, description=str(meta.get("description", ""))[:300],
                    source=_source(path, base),
                ))
    return found


def _source(path: Path, base: Path) -> str:
    """``path`` relative to ``base`` where it lies inside it (an installed app elsewhere: absolute)."""
    try:
        return str(path.resolve().relative_to(base.resolve()))
    except ValueError:
        return str(path)


def split_sections(body: str, *, name: str = "template") -> dict[str, str]:
    parts = _SECTION_RE.split(body)
    sections: dict[str, str] = {}
    if parts[0].strip():
        raise PromptError(f"{name}: text before the first [system] or [user] line")
    for role, text in zip(parts[1::2], parts[2::2], strict=True):
        sections[role] = text.strip("\n")
    if "user" not in sections:
        raise PromptError(f"{name}: no [user] section")
    return sections


def render_messages(body: str, variables: dict, *, name: str = "template") -> list[dict]:
    """The chat messages for a template body and its variables."""
    messages = []
    for role, text in split_sections(body, name=name).items():
        try:
            content = string.Template(text).substitute(
                {k: "" if v is None else str(v) for k, v in variables.items()}
            )
        except KeyError as exc:
            raise PromptError(f"{name}: variable ${exc.args[0]} is not provided") from None
        except ValueError as exc:
            raise PromptError(f"{name}: {exc}") from None
        messages.append({"role": role, "content": content})
    messages.sort(key=lambda m: 0 if m["role"] == "system" else 1)
    return messages
