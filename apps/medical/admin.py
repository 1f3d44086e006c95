"""Admin views of the medical app (read-mostly: the workflow runs in the app's own pages)."""
from django.contrib import admin

from apps.medical.models import Addendum, Instance, Report, Series, Study


@admin.register(Study)
class StudyAdmin(admin.ModelAdmin):
    list_display = ("id", "modality", "body_part", "status", "series_count", "frame_count", "source",
                    "queued_at")
    list_filter = ("status", "modality", "source")
    readonly_fields = [f.name for f in Study._meta.fields]
    search_fields = ("id", "study_instance_uid", "description")


@admin.register(Series)
class SeriesAdmin(admin.ModelAdmin):
    list_display = ("study", "order", "modality", "description", "instance_count", "frame_count")
    readonly_fields = [f.name for f in Series._meta.fields]


@admin.register(Instance)
class InstanceAdmin(admin.ModelAdmin):
    list_display = ("file_name", "status", "error_code", "modality", "frames", "study")
    list_filter = ("status", "error_code", "modality")
    readonly_fields = [f.name for f in Instance._meta.fields]


@admin.register(Report)
class ReportAdmin(admin.ModelAdmin):
    list_display = ("study", "status", "ai_generated", "signer_name", "signed_at")
    list_filter = ("status", "ai_generated")
    readonly_fields = [f.name for f in Report._meta.fields]


@admin.register(Addendum)
class AddendumAdmin(admin.ModelAdmin):
    list_display = ("report", "author_name", "created_at")
    readonly_fields = [f.name for f in Addendum._meta.fields]
