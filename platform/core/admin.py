"""The admin: the product's name in its header (both languages), each core model, and one list of every
app's jobs (``/admin/core/job/``: ``core.Job`` is abstract, so the list reads the job registry)."""
from django.contrib import admin
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, path, reverse
from django.utils.translation import gettext_lazy as _

from core import registry, selectors
from core.models import ApiToken, AuditEvent, Batch, DiagnosticJob, JobAttempt, JobStatus, PromptTemplate

admin.site.site_header = _("Industry AI suite administration")
admin.site.site_title = _("Industry AI suite")
admin.site.index_title = _("Administration")

JOB_LIST_LIMIT = 200


def _viewable_job_types(user) -> dict[str, type]:
    return {job_type: model for job_type, model in registry.job_models().items()
            if user.has_perm(f"{model._meta.app_label}.view_{model._meta.model_name}")}


def job_changelist(request):
    """Every app's jobs in one table (newest first), filtered by type and status, each linked to its
    own admin page and to its page in the product."""
    models = _viewable_job_types(request.user)
    job_type = request.GET.get("type") or ""
    status = request.GET.get("status") or ""
    if status not in JobStatus.values:
        status = ""
    types = [job_type] if job_type in models else list(models)
    rows = []
    for job in selectors.job_list_all(job_types=types, status=status or None, limit=JOB_LIST_LIMIT):
        meta = job._meta
        try:
            change_url = reverse(f"admin:{meta.app_label}_{meta.model_name}_change", args=[job.pk])
        except NoReverseMatch:
            change_url = ""
        rows.append({"job": job, "change_url": change_url, "type_name": meta.verbose_name})
    context = {
        **admin.site.each_context(request),
        "title": _("Jobs (all apps)"),
        "rows": rows, "limit": JOB_LIST_LIMIT,
        "types": [(t, m._meta.verbose_name) for t, m in models.items()], "type": job_type,
        "statuses": JobStatus.choices, "status": status,
    }
    return TemplateResponse(request, "admin/core/job_list.html", context)


_site_get_urls = admin.site.get_urls
_site_get_app_list = admin.site.get_app_list


def _get_urls():
    return [path("core/job/", admin.site.admin_view(job_changelist), name="core_job_changelist"),
            *_site_get_urls()]


def _get_app_list(request, app_label=None):
    """Django's list, with the all-apps jobs list under the core section."""
    app_list = _site_get_app_list(request, app_label)
    if not _viewable_job_types(request.user):
        return app_list
    for app in app_list:
        if app["app_label"] == "core":
            app["models"].append({"name": _("Jobs (all apps)"), "object_name": "Job", "perms": {"view": True},
                                  "admin_url": reverse("admin:core_job_changelist"), "add_url": None,
                                  "view_only": True})
            app["models"].sort(key=lambda m: str(m["name"]))
    return app_list


admin.site.get_urls = _get_urls
admin.site.get_app_list = _get_app_list


@admin.register(PromptTemplate)
class PromptTemplateAdmin(admin.ModelAdmin):
    list_display = ("name", "version", "language", "is_enabled", "source", "created_at")
    list_filter = ("name", "language", "is_enabled")
    search_fields = ("name", "body")

    def get_readonly_fields(self, request, obj=None):
        # Versions are immutable; which one is active changes on the prompts page (core:prompts), which
        # asks for measured figures first.
        if obj is not None:
            return ("name", "version", "language", "body", "output_schema", "sampling", "description",
                    "source", "is_enabled", "created_at", "created_by")
        return ("source", "is_enabled", "created_at", "created_by")

    def save_model(self, request, obj, form, change):
        if not change:
            # A version written here is a candidate: it serves no job until it measured at least as well
            # as the active one (``evaluate_prompts``, then Activate on the prompts page).
            obj.created_by = request.user
            obj.source = "admin"
            obj.is_enabled = False
        super().save_model(request, obj, form, change)


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    list_display = ("created_at", "actor_label", "action", "object_type", "object_id", "ip_address")
    list_filter = ("action", "object_type")
    search_fields = ("actor_label", "object_id")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ("name", "user", "prefix", "created_at", "last_used_at", "revoked_at")
    readonly_fields = ("prefix", "key_hash", "created_at", "last_used_at")
    actions = ["revoke"]

    @admin.action(description="Revoke the selected tokens")
    def revoke(self, request, queryset):
        from core.services import api_token_revoke

        for token in queryset:
            api_token_revoke(token=token)


@admin.register(Batch)
class BatchAdmin(admin.ModelAdmin):
    list_display = ("id", "app", "original_filename", "status", "item_total", "created_at")
    list_filter = ("app", "status")


@admin.register(JobAttempt)
class JobAttemptAdmin(admin.ModelAdmin):
    list_display = ("job_type", "job_id", "number", "outcome", "worker", "started_at", "finished_at")
    list_filter = ("job_type", "outcome")


@admin.register(DiagnosticJob)
class DiagnosticJobAdmin(admin.ModelAdmin):
    list_display = ("id", "status", "attempts", "queued_at", "finished_at")
