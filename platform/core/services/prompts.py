"""Measured prompt quality: run a template version on its app's labelled set, store the figures, and
activate a version only when it measured at least as well as the active one.

Each suite app that has labelled sets declares ``prompt_evaluate`` on its AppConfig (see
:class:`core.registry.SuiteApp`); core knows nothing of what is measured, only the answer's shape.

"Active" is the newest enabled version of a template (what :func:`core.selectors.prompt_template_get`
serves). Versions shipped as files are part of a release and enabled when seeded; a version written in
the admin starts disabled, as a candidate, until :func:`prompt_template_activate`.
"""
from __future__ import annotations

import logging
import math
import time

from django.db import transaction

from core.audit import audit_record
from core.errors import ConflictError, InputError
from core.models import PromptEvaluation, PromptTemplate
from core.registry import suite_app

logger = logging.getLogger(__name__)

# A candidate may measure this much worse than the active version (noise on small labelled sets).
ACTIVATION_TOLERANCE = 0.01
MAX_FAILURES = 20


class NoLabelledSet(LookupError):
    """The app has no labelled set for this template; nothing was measured."""


def _short_name(name: str) -> tuple[str, str]:
    app_label, _, short = name.partition(".")
    if not short:
        raise InputError(f"template {name!r}: expected <app>.<template>", field="template")
    return app_label, short


def prompt_evaluation_run(*, name: str, version: int, language: str, limit: int | None = None,
                          user=None) -> PromptEvaluation:
    """Run ``name`` v``version`` in ``language`` through the app's evaluator and store the figures.

    Raises :class:`NoLabelledSet` where the app measures nothing for this template; errors of the model
    service propagate (an evaluation that could not run is not stored).
    """
    app_label, short = _short_name(name)
    if not PromptTemplate.objects.filter(name=name, version=version, language=language).exists():
        raise InputError(f"no prompt template {name} v{version} ({language})", field="version")
    evaluate = suite_app(app_label).hook("prompt_evaluate")
    if evaluate is None:
        raise NoLabelledSet(f"{name}: no labelled set")
    started = time.monotonic()
    try:
        answer = evaluate(template=short, version=version, language=language, limit=limit)
    except LookupError:
        raise NoLabelledSet(f"{name}: no labelled set") from None
    metrics = {str(k): float(v) for k, v in (answer.get("metrics") or {}).items()
               if isinstance(v, int | float) and math.isfinite(v)}
    primary = str(answer.get("primary") or next(iter(metrics), ""))
    evaluation = PromptEvaluation.objects.create(
        name=name, version=version, language=language, model=str(answer.get("model") or "")[:200],
        n=int(answer.get("n") or 0), metrics=metrics, primary=primary, primary_value=metrics.get(primary),
        higher_is_better=bool(answer.get("higher_is_better", True)),
        failures=list(answer.get("failures") or [])[:MAX_FAILURES],
        duration_s=round(time.monotonic() - started, 2), created_by=user,
    )
    logger.info("prompt evaluation %s", evaluation)
    return evaluation


def _latest(name: str, version: int, language: str) -> PromptEvaluation | None:
    return (PromptEvaluation.objects.filter(name=name, version=version, language=language)
            .order_by("-created_at").first())


def prompt_version_compare(*, name: str, version: int, language: str) -> dict:
    """The candidate's latest figures against the active version's, and whether it may be activated."""
    active = PromptTemplate.objects.filter(name=name, language=language, is_enabled=True).order_by("-version")
    active_row = active.first()
    candidate = _latest(name, version, language)
    current = _latest(name, active_row.version, language) if active_row else None
    out = {"name": name, "language": language, "version": version,
           "active_version": active_row.version if active_row else None,
           "candidate": candidate, "active": current, "allowed": False, "reason": ""}
    if active_row is None or active_row.version == version:
        out["allowed"], out["reason"] = True, "no other active version"
        return out
    if candidate is None or candidate.primary_value is None:
        out["reason"] = f"v{version} has not been evaluated in {language}: run evaluate_prompts first"
        return out
    if current is None or current.primary_value is None:
        out["reason"] = (f"the active v{active_row.version} has not been evaluated in {language}: "
                         "run evaluate_prompts on it first")
        return out
    if candidate.primary != current.primary:
        out["reason"] = (f"the versions were measured on different metrics "
                         f"({candidate.primary}, {current.primary})")
        return out
    sign = 1 if candidate.higher_is_better else -1
    delta = sign * (candidate.primary_value - current.primary_value)
    out["delta"] = delta
    out["allowed"] = delta >= -ACTIVATION_TOLERANCE
    out["reason"] = (f"{candidate.primary}: v{version} {candidate.primary_value:.3f} against "
                     f"v{active_row.version} {current.primary_value:.3f}")
    return out


@transaction.atomic
def prompt_template_activate(*, name: str, version: int, user=None, force: bool = False,
                             request=None) -> dict:
    """Make ``name`` v``version`` the active version in every language it has.

    Refused (409, the message says why) unless it measured at least as well as the active version in
    each language, or ``force`` (recorded in the audit log). Newer versions are disabled so that this
    one is served.
    """
    rows = list(PromptTemplate.objects.select_for_update().filter(name=name, version=version))
    if not rows:
        raise InputError(f"no prompt template {name} v{version}", field="version")
    comparisons = [prompt_version_compare(name=name, version=version, language=row.language) for row in rows]
    refused = [c for c in comparisons if not c["allowed"]]
    if refused and not force:
        raise ConflictError("; ".join(f"{c['language']}: {c['reason']}" for c in refused),
                            code="evaluation_required")
    PromptTemplate.objects.filter(name=name, version=version).update(is_enabled=True)
    PromptTemplate.objects.filter(name=name, version__gt=version).update(is_enabled=False)
    audit_record(actor=user, action="prompt_activate", object_type="prompt_template",
                 object_id=f"{name} v{version}", request=request,
                 detail={"forced": bool(force and refused),
                         "comparison": {c["language"]: c["reason"] for c in comparisons}})
    return {"name": name, "version": version, "forced": bool(force and refused),
            "comparisons": comparisons}
