"""Manufacturing REST serializers."""
from __future__ import annotations

from rest_framework import serializers

from apps.manufacturing.models import Alert, FailureModelVersion, Machine
from apps.manufacturing.texts import text_display, texts_display
from core.api.serializers import BatchSerializer, JobSerializer


class SensorUploadSerializer(BatchSerializer):
    """A sensor CSV upload: progress {total, done, failed} and ``results_url`` (one row per machine)."""

    ingest = serializers.SerializerMethodField()
    errors_display = serializers.SerializerMethodField(
        help_text="``errors`` in the request's language (Accept-Language); ``errors`` stay as stored.")
    warnings_display = serializers.SerializerMethodField(
        help_text="``warnings`` in the request's language (Accept-Language).")

    class Meta(BatchSerializer.Meta):
        fields = [*BatchSerializer.Meta.fields, "ingest", "errors_display", "warnings_display"]
        read_only_fields = fields

    def get_ingest(self, batch) -> dict:
        return (batch.options or {}).get("ingest") or {}

    def get_errors_display(self, batch) -> list[str]:
        return texts_display(batch.errors)

    def get_warnings_display(self, batch) -> list[str]:
        return texts_display(batch.warnings)


class SensorUploadCreateSerializer(serializers.Serializer):
    file = serializers.FileField(help_text="A sensor CSV: long (machine_id, timestamp|cycle, sensor, value), "
                                           "wide (machine_id, timestamp|cycle, one column per sensor) or "
                                           "C-MAPSS.")



class FailurePredictionSerializer(JobSerializer):
    """One machine's prediction: calibrated numbers (classical models), the language model's view, the
    alert."""

    machine_id = serializers.CharField(source="machine.machine_id", read_only=True)
    source = serializers.CharField(read_only=True)
    failure_probability = serializers.FloatField(read_only=True, allow_null=True)
    horizon = serializers.FloatField(read_only=True, allow_null=True)
    horizon_unit = serializers.CharField(read_only=True)
    rul_estimate = serializers.FloatField(read_only=True, allow_null=True)
    anomaly_score = serializers.FloatField(read_only=True, allow_null=True)
    is_anomalous = serializers.BooleanField(read_only=True)
    drivers = serializers.JSONField(read_only=True)
    alert = serializers.SerializerMethodField()
    llm = serializers.JSONField(read_only=True)
    disagreement = serializers.BooleanField(read_only=True)
    input_issues = serializers.JSONField(read_only=True)
    result = serializers.JSONField(read_only=True)
    display = serializers.SerializerMethodField(
        help_text="The stored English texts in the request's language: ``notes``, ``input_issues``, "
                  "``alert_reasons``, ``error_message``, ``progress_message``.")

    def get_alert(self, prediction) -> dict | None:
        return (prediction.result or {}).get("alert")

    def get_display(self, prediction) -> dict:
        result = prediction.result or {}
        return {"notes": texts_display(result.get("notes")),
                "input_issues": texts_display(i.get("message") for i in prediction.input_issues or []),
                "alert_reasons": texts_display((result.get("alert") or {}).get("reasons")),
                "error_message": text_display(prediction.error_message) if prediction.error_message else "",
                "progress_message": text_display(prediction.progress_message)
                if prediction.progress_message else ""}


class MachineSerializer(serializers.ModelSerializer):
    url = serializers.SerializerMethodField()
    readings_url = serializers.SerializerMethodField()
    alert = serializers.SerializerMethodField()
    probability_threshold = serializers.FloatField(source="effective_probability_threshold", read_only=True)
    rul_threshold = serializers.FloatField(source="effective_rul_threshold", read_only=True)
    last_prediction = serializers.SerializerMethodField()
    rank = serializers.SerializerMethodField()

    class Meta:
        model = Machine
        fields = ["rank", "machine_id", "name", "location", "url", "readings_url", "failure_probability",
                  "horizon", "horizon_unit", "rul_estimate", "anomaly_score", "is_anomalous", "drivers",
                  "alert", "probability_threshold", "rul_threshold", "time_axis", "last_reading_at",
                  "last_predicted_at", "last_prediction"]
        read_only_fields = fields

    def _abs(self, path: str) -> str:
        request = self.context.get("request")
        return request.build_absolute_uri(path) if request else path

    def get_url(self, machine) -> str:
        return self._abs(machine.api_url())

    def get_readings_url(self, machine) -> str:
        from django.urls import reverse

        return self._abs(reverse("api-v1:manufacturing-machine-readings",
                                 kwargs={"machine_id": machine.machine_id}))

    def get_alert(self, machine) -> dict | None:
        alert = getattr(machine, "_open_alert", None)
        if alert is None:
            alert = machine.alerts.exclude(status=Alert.Status.RESOLVED).order_by("-created_at").first()
        if alert is None:
            return None
        return MachineAlertSerializer(alert, context=self.context).data

    def get_last_prediction(self, machine) -> str | None:
        if not machine.last_prediction_id:
            return None
        from django.urls import reverse

        return self._abs(reverse("api-v1:manufacturing-prediction-detail",
                                 kwargs={"prediction_id": machine.last_prediction_id}))

    def get_rank(self, machine) -> int | None:
        return getattr(machine, "_rank", None)


class MachineThresholdsSerializer(serializers.Serializer):
    probability_threshold = serializers.FloatField(min_value=0.0, max_value=1.0, allow_null=True,
                                                   required=False)
    rul_threshold = serializers.FloatField(min_value=0.0, allow_null=True, required=False)
    name = serializers.CharField(max_length=200, required=False, allow_blank=True)
    location = serializers.CharField(max_length=200, required=False, allow_blank=True)


class MachineAlertSerializer(serializers.ModelSerializer):
    url = serializers.SerializerMethodField()
    machine_id = serializers.CharField(source="machine.machine_id", read_only=True)
    acknowledged_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    resolved_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    prediction = serializers.SerializerMethodField()
    reasons_display = serializers.SerializerMethodField(help_text="``reasons`` in the request's language.")

    class Meta:
        model = Alert
        fields = ["id", "url", "machine_id", "level", "status", "reasons", "reasons_display",
                  "failure_probability",
                  "rul_estimate", "lead_time", "lead_time_unit", "recommendation", "recommendation_zh",
                  "updates", "created_at", "updated_at", "acknowledged_by", "acknowledged_at", "resolved_by",
                  "resolved_at", "note", "prediction"]
        read_only_fields = fields

    def _abs(self, path: str) -> str:
        request = self.context.get("request")
        return request.build_absolute_uri(path) if request else path

    def get_url(self, alert) -> str:
        return self._abs(alert.api_url())

    def get_reasons_display(self, alert) -> list[str]:
        return texts_display(alert.reasons)

    def get_prediction(self, alert) -> str | None:
        if not alert.prediction_id:
            return None
        from django.urls import reverse

        return self._abs(reverse("api-v1:manufacturing-prediction-detail",
                                 kwargs={"prediction_id": alert.prediction_id}))


class MachineAlertActionSerializer(serializers.Serializer):
    note = serializers.CharField(max_length=4000, required=False, allow_blank=True, default="")



class FailureModelVersionSerializer(serializers.ModelSerializer):
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = FailureModelVersion
        fields = ["id", "name", "model_version", "kind", "horizon", "horizon_unit", "is_active", "cv_metrics",
                  "metadata", "training_source", "created_by", "created_at", "activated_at"]
        read_only_fields = fields
