"""Prompt templates: files under each suite app's prompts folder
(``apps/<app>/prompts/<name>/v<N>.<lang>.txt`` plus ``v<N>.schema.json``; the folder comes from the
registry), seeded into :class:`core.models.PromptTemplate` rows, then rendered into chat messages.

A body has a ``[system]`` section and a ``[user]`` section; variables are ``string.Template``
placeholders (``$report``); a missing variable is an error, never silently blank.

``v<N>.meta.json`` may hold a ``"description"`` and a ``"sampling"`` object: the first try's repetition
controls (:data:`SAMPLING_LIMITS`), stored with the version like its text, so a version that decodes
differently is a new version, measured before it is activated.
"""
from __future__ import annotations

import json
import logging
import re
import string
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings

from core.registry import suite_apps

logger = logging.getLogger(__name__)

_FILE_RE = re.compile(r"^v(?P<version>\d+)\.(?P<lang>en|zh-hans)\.txt$")
_SECTION_RE = re.compile(r"^\[(system|user)\]\s*$", re.MULTILINE)


# What a version's "sampling" may set on its first try, and the allowed range of each (the model
# service's own limits). Temperature and seed are the step's: greedy first, sampled on the retry.
SAMPLING_LIMITS: dict[str, tuple[float, float]] = {
    "repetition_penalty": (0.5, 2.0), "frequency_penalty": (-2.0, 2.0), "presence_penalty": (-2.0, 2.0),
    "min_p": (0.0, 1.0),
}


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
    sampling: dict = field(default_factory=dict)


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
                sampling = meta.get("sampling") or {}
                problems = sampling_problems(sampling)
                if problems:
                    raise PromptError(f"{meta_path}: \"sampling\": {'; '.join(problems)}")
                found.append(PromptFile(
                    name=f"{app}.{folder.name}", version=version, language=match["lang"], body=body,
                    output_schema=schema, description=str(meta.get("description", ""))[:300],
                    source=_source(path, base), sampling=dict(sampling),
                ))
    return found


def sampling_problems(sampling) -> list[str]:
    """What is wrong with a version's ``sampling`` object (empty when nothing): unknown keys, values
    that are not numbers or out of range (:data:`SAMPLING_LIMITS`)."""
    if not isinstance(sampling, dict):
        return [f"expected an object, got {type(sampling).__name__}"]
    problems = []
    for key, value in sampling.items():
        if key not in SAMPLING_LIMITS:
            problems.append(f"{key!r} is not one of {', '.join(SAMPLING_LIMITS)}")
        elif isinstance(value, bool) or not isinstance(value, int | float):
            problems.append(f"{key} must be a number, got {value!r}")
        elif not SAMPLING_LIMITS[key][0] <= value <= SAMPLING_LIMITS[key][1]:
            low, high = SAMPLING_LIMITS[key]
            problems.append(f"{key} must be between {low} and {high}, got {value}")
    return problems


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
