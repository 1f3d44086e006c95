"""After ``migrate``: the role groups and the prompt templates from the apps' files."""
from __future__ import annotations

import logging

from core.models import PromptTemplate
from core.roles import roles_ensure

logger = logging.getLogger(__name__)


def platform_bootstrap(sender=None, **kwargs) -> None:
    """After migrate: the role groups and the prompt templates from the apps' files."""
    roles_ensure()
    prompt_templates_seed()


def prompt_templates_seed() -> dict[str, int]:
    """Create rows for template files not yet in the database. Existing versions are never changed;
    a file whose text differs from its stored version is reported (add a new version instead)."""
    from core.prompts import prompt_files

    created = unchanged = conflicts = 0
    for pf in prompt_files():
        existing = PromptTemplate.objects.filter(name=pf.name, version=pf.version,
                                                 language=pf.language).first()
        if existing is None:
            PromptTemplate.objects.create(
                name=pf.name, version=pf.version, language=pf.language, body=pf.body,
                output_schema=pf.output_schema, description=pf.description, source=pf.source,
                sampling=pf.sampling,
            )
            created += 1
        elif (existing.body, existing.output_schema, existing.sampling) != (
                pf.body, pf.output_schema, pf.sampling):
            conflicts += 1
            logger.warning("prompt %s v%d (%s) changed on disk but versions are immutable: add v%d",
                           pf.name, pf.version, pf.language, pf.version + 1)
        else:
            unchanged += 1
    return {"created": created, "unchanged": unchanged, "conflicts": conflicts}
