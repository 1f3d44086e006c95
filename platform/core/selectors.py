"""Platform reads: jobs across apps, batches with progress, prompt templates, readiness."""
from __future__ import annotations

from itertools import islice

from django.db.models import Count, Q

from core import registry
from core.models import Batch, Job, JobStatus, PromptTemplate
from core.roles import user_roles


def job_types_for_user(user) -> list[str]:
    roles = user_roles(user)
    return [t for t, m in registry.job_models().items() if m.role in roles]


def job_list_for_user(*, user, limit: int = 50, status: str | None = None,
                      mine_only: bool = True) -> list[Job]:
    """The user's recent jobs of every type their roles allow, newest first."""
    rows: list[Job] = []
    for job_type in job_types_for_user(user):
        qs = registry.job_model(job_type).objects.all()
        if mine_only:
            qs = qs.filter(owner=user)
        if status:
            qs = qs.filter(status=status)
        rows.extend(qs.order_by("-queued_at")[:limit])
    rows.sort(key=lambda j: j.queued_at, reverse=True)
    return list(islice(rows, limit))


def job_list_all(*, job_types: list[str], status: str | None = None, limit: int = 100) -> list[Job]:
    """The newest jobs of the given types (every app's, for the admin), newest first."""
    rows: list[Job] = []
    for job_type in job_types:
        qs = registry.job_model(job_type).objects.select_related("owner")
        if status:
            qs = qs.filter(status=status)
        rows.extend(qs.order_by("-queued_at")[:limit])
    rows.sort(key=lambda j: j.queued_at, reverse=True)
    return rows[:limit]


def job_get_for_user(*, user, job_id) -> Job | None:
    """A job by id, whatever its type, if the user's roles allow its app; else None."""
    roles = user_roles(user)
    for model in registry.job_models().values():
        job = model.objects.filter(pk=job_id).first()
        if job is not None:
            return job if model.role in roles else None
    return None


def batch_progress(*, batch: Batch) -> dict:
    """``total``, ``done``, ``failed``, ``needs_review``, ``running``, ``queued`` from the items' statuses."""
    total = batch.item_total
    counts = {"done": 0, "failed": 0, "needs_review": 0, "running": 0, "queued": 0}
    try:
        model = registry.job_model(batch.kind)
    except LookupError:
        model = None
    if model is not None and batch.status not in (Batch.Status.QUEUED, Batch.Status.PARSING):
        agg = model.objects.filter(batch_id=batch.pk).aggregate(
            succeeded=Count("pk", filter=Q(status=JobStatus.SUCCEEDED)),
            failed=Count("pk", filter=Q(status=JobStatus.FAILED)),
            needs_review=Count("pk", filter=Q(status=JobStatus.NEEDS_REVIEW)),
            running=Count("pk", filter=Q(status=JobStatus.RUNNING)),
            queued=Count("pk", filter=Q(status=JobStatus.QUEUED)),
        )
        counts.update(failed=agg["failed"], needs_review=agg["needs_review"], running=agg["running"],
                      queued=agg["queued"])
        counts["done"] = agg["succeeded"] + agg["needs_review"] + agg["failed"]
    percent = (round(100.0 * counts["done"] / total, 1) if total
               else (100.0 if batch.status == Batch.Status.DONE else 0.0))
    return {"total": total, **counts, "percent": percent, "status": batch.status}


def attention_for_user(*, user) -> list[dict]:
    """What waits for the user, per suite app their roles allow (the apps' ``attention`` registry hooks):
    ``[{"app", "url", "items": [{"label", "count", "url"}], "total"}]``, in INSTALLED_APPS order."""
    from django.urls import reverse

    roles = user_roles(user)
    groups = []
    for app in registry.suite_apps():
        hook = app.hook("attention")
        if hook is None or app.role not in roles:
            continue
        items = [dict(item, count=int(item["count"])) for item in hook(user=user)]
        groups.append({"app": app.nav[0], "url": reverse(app.nav[1]), "items": items,
                       "total": sum(item["count"] for item in items)})
    return groups


def batch_list_for_user(*, user, limit: int = 20, app: str | None = None) -> list[Batch]:
    roles = user_roles(user)
    qs = Batch.objects.filter(owner=user, app__in=[r for r in roles if r != "admin"])
    if app:
        qs = qs.filter(app=app)
    return list(qs.order_by("-created_at")[:limit])


def batch_get_for_user(*, user, batch_id) -> Batch | None:
    batch = Batch.objects.filter(pk=batch_id).first()
    if batch is None or batch.app not in user_roles(user):
        return None
    return batch


def prompt_template_get(*, name: str, language: str = "en", version: int | None = None) -> PromptTemplate:
    """The newest enabled version of a template in a language (falls back to English)."""
    qs = PromptTemplate.objects.filter(name=name, is_enabled=True)
    if version is not None:
        qs = qs.filter(version=version)
    template = qs.filter(language=language).order_by("-version").first()
    if template is None and language != "en":
        template = qs.filter(language="en").order_by("-version").first()
    if template is None:
        raise LookupError(f"no enabled prompt template {name!r} (language {language}); "
                          "run `manage.py seed_prompts`")
    return template


def prompt_overview() -> list[dict]:
    """Every template with its versions: which is active per language and each version's latest figures."""
    from core.models import PromptEvaluation

    latest: dict[tuple[str, int, str], PromptEvaluation] = {}
    for ev in PromptEvaluation.objects.order_by("created_at"):
        latest[(ev.name, ev.version, ev.language)] = ev
    templates: dict[str, dict] = {}
    for row in PromptTemplate.objects.order_by("name", "-version", "language"):
        entry = templates.setdefault(row.name, {"name": row.name, "versions": {}, "active": {}})
        if row.is_enabled and row.language not in entry["active"]:
            entry["active"][row.language] = row.version
        version = entry["versions"].setdefault(row.version, {
            "version": row.version, "description": row.description, "source": row.source, "languages": [],
            "sampling": ", ".join(f"{k} {v}" for k, v in sorted((row.sampling or {}).items()))})
        version["languages"].append({"language": row.language, "enabled": row.is_enabled,
                                     "evaluation": latest.get((row.name, row.version, row.language))})
    out = []
    for entry in templates.values():
        versions = list(entry["versions"].values())
        for v in versions:
            v["active_in"] = sorted(lang for lang, ver in entry["active"].items() if ver == v["version"])
        out.append({"name": entry["name"], "versions": versions})
    return out
