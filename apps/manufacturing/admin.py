"""Admin views of the manufacturing app (read-mostly: the workflow runs in the app's own pages).

Machines, readings, predictions and training runs (job results), model versions and alerts are
written by the services, which audit each action (thresholds, alert reviews, activation): here their
fields are read-only and nothing is added by hand. Only a sensor's unit and descriptions may be
corrected.
"""
from django.contrib import admin

from apps.manufacturing.models import (
    Alert,
    FailureModelVersion,
    Machine,
    Prediction,
    ReadingChunk,
    Sensor,
    TrainingRun,
)


class _NoAdd:
    def has_add_permission(self, request):
        return False


@admin.register(Machine)
class MachineAdmin(_NoAdd, admin.ModelAdmin):
    list_display = ("machine_id", "name", "location", "failure_probability", "rul_estimate", "alert_level",
                    "is_anomalous", "last_predicted_at")
    list_filter = ("alert_level", "is_anomalous", "time_axis")
    search_fields = ("machine_id", "name", "location")
    readonly_fields = [f.name for f in Machine._meta.fields]  # thresholds: the machine page (audited)


@admin.register(Sensor)
class SensorAdmin(_NoAdd, admin.ModelAdmin):
    list_display = ("name", "unit", "symbol", "description", "is_setting")
    list_filter = ("is_setting",)
    search_fields = ("name", "symbol", "description")
    readonly_fields = ("name", "is_setting", "created_at")


@admin.register(ReadingChunk)
class ReadingChunkAdmin(_NoAdd, admin.ModelAdmin):
    list_display = ("machine", "source", "time_axis", "steps", "readings", "start", "end", "created_at")
    list_filter = ("source", "time_axis")
    search_fields = ("machine__machine_id",)
    exclude = ("data",)  # the compressed series: binary
    readonly_fields = [f.name for f in ReadingChunk._meta.fields if f.name != "data"]


@admin.register(FailureModelVersion)
class FailureModelVersionAdmin(_NoAdd, admin.ModelAdmin):
    """Versions are trained on the Models page or with ``manage.py train_failure_model``, and activated
    there (so the activation is audited)."""

    list_display = ("name", "model_version", "kind", "horizon", "horizon_unit", "is_active", "created_by",
                    "created_at", "activated_at")
    list_filter = ("is_active", "kind", "horizon_unit")
    search_fields = ("name", "model_version", "training_source")
    readonly_fields = [f.name for f in FailureModelVersion._meta.fields]


@admin.register(Prediction)
class PredictionAdmin(_NoAdd, admin.ModelAdmin):
    list_display = ("machine", "status", "failure_probability", "rul_estimate", "anomaly_score",
                    "alert_level", "disagreement", "source", "queued_at")
    list_filter = ("status", "alert_level", "source", "disagreement", "is_anomalous")
    search_fields = ("id", "machine__machine_id", "error_code")
    readonly_fields = [f.name for f in Prediction._meta.fields]
    list_select_related = ("machine",)


@admin.register(TrainingRun)
class TrainingRunAdmin(_NoAdd, admin.ModelAdmin):
    list_display = ("original_filename", "name", "status", "data_format", "horizon", "activate",
                    "created_version", "queued_at")
    list_filter = ("status", "data_format", "activate")
    search_fields = ("id", "original_filename", "name")
    readonly_fields = [f.name for f in TrainingRun._meta.fields]


@admin.register(Alert)
class AlertAdmin(_NoAdd, admin.ModelAdmin):
    list_display = ("machine", "level", "status", "failure_probability", "rul_estimate", "lead_time",
                    "updates", "created_at", "acknowledged_by", "resolved_by")
    list_filter = ("level", "status")
    search_fields = ("machine__machine_id", "note")
    readonly_fields = [f.name for f in Alert._meta.fields]  # acknowledge/resolve: the Alerts page (audited)
    list_select_related = ("machine", "acknowledged_by", "resolved_by")
