from django.contrib import admin

from core.models import ApiToken, AuditEvent, Batch, DiagnosticJob, JobAttempt, PromptTemplate


@admin.register(PromptTemplate)
class PromptTemplateAdmin(admin.ModelAdmin):
    list_display = ("name", "version", "language", "is_enabled", "source", "created_at")
    list_filter = ("name", "language", "is_enabled")
    search_fields = ("name", "body")

    def get_readonly_fields(self, request, obj=None):
        # Versions are immutable; which one is active changes on the prompts page (core:prompts), which
        # asks for measured figures first.
        if obj is not None:
            return ("name", "version", "language", "body", "output_schema", "description", "source",
                    "is_enabled", "created_at", "created_by")
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
