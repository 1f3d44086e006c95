"""Manufacturing models: machines and sensors, stored readings, failure-model versions, predictions
(jobs), training runs (jobs) and alerts.

Readings are stored compactly: each upload or push of one machine becomes one :class:`ReadingChunk`
holding the cleaned, regular series of that delivery (a compressed NumPy archive: the time index
plus one float column per sensor or setting). A machine's series is the merge of its chunks in
order, later readings winning where the same time and sensor appear twice
(:func:`apps.manufacturing.ingest.merge_series`). Chunks are append-only; many small pushes are
folded into one chunk by :func:`apps.manufacturing.services.readings.machine_series_compact`. A
million readings take a few megabytes instead of a million rows.
"""
from __future__ import annotations

import io
import uuid

import numpy as np
import pandas as pd
from django.conf import settings
from django.db import models
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from core.models import Job

#: Defaults when a machine has no thresholds of its own (settings may override).
DEFAULT_PROBABILITY_THRESHOLD = 0.5
DEFAULT_RUL_THRESHOLD = 30.0


class TimeAxis(models.TextChoices):
    CYCLE = "cycle", _("Cycles")
    TIMESTAMP = "timestamp", _("Timestamps")


class Machine(models.Model):
    """A piece of equipment, identified by the ``machine_id`` its files and pushes use."""

    machine_id = models.CharField(max_length=100, unique=True)
    name = models.CharField(max_length=200, blank=True)
    location = models.CharField(max_length=200, blank=True)
    time_axis = models.CharField(max_length=16, choices=TimeAxis.choices, blank=True)
    probability_threshold = models.FloatField(
        null=True, blank=True,
        help_text=_("Alert when the calibrated failure probability reaches this (0–1)."))
    rul_threshold = models.FloatField(
        null=True, blank=True, help_text=_("Alert when the remaining useful life falls to this or below."))
    # the latest finished prediction, for ranking the fleet
    last_prediction = models.ForeignKey("manufacturing.Prediction", null=True, blank=True,
                                        on_delete=models.SET_NULL, related_name="+")
    failure_probability = models.FloatField(null=True, blank=True, db_index=True)
    horizon = models.FloatField(null=True, blank=True)
    horizon_unit = models.CharField(max_length=16, blank=True)
    rul_estimate = models.FloatField(null=True, blank=True)
    anomaly_score = models.FloatField(null=True, blank=True)
    is_anomalous = models.BooleanField(default=False)
    drivers = models.JSONField(default=list, blank=True)
    alert_level = models.CharField(max_length=16, blank=True)
    last_predicted_at = models.DateTimeField(null=True, blank=True)
    last_reading_at = models.CharField(max_length=40, blank=True, help_text=_("Time of the newest reading."))
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["machine_id"]

    def __str__(self) -> str:
        return self.name or self.machine_id

    def get_absolute_url(self) -> str:
        return reverse("manufacturing:machine_detail", kwargs={"machine_id": self.machine_id})

    def api_url(self) -> str:
        return reverse("api-v1:manufacturing-machine-detail", kwargs={"machine_id": self.machine_id})

    @property
    def effective_probability_threshold(self) -> float:
        if self.probability_threshold is not None:
            return self.probability_threshold
        return float(getattr(settings, "MANUFACTURING_PROBABILITY_THRESHOLD", DEFAULT_PROBABILITY_THRESHOLD))

    @property
    def effective_rul_threshold(self) -> float:
        if self.rul_threshold is not None:
            return self.rul_threshold
        return float(getattr(settings, "MANUFACTURING_RUL_THRESHOLD", DEFAULT_RUL_THRESHOLD))


class Sensor(models.Model):
    """A sensor (or operating setting) by name, with its unit and a description."""

    name = models.CharField(max_length=100, unique=True)
    unit = models.CharField(max_length=40, blank=True)
    symbol = models.CharField(max_length=40, blank=True)
    description = models.CharField(max_length=200, blank=True)
    description_zh = models.CharField(max_length=200, blank=True)
    is_setting = models.BooleanField(default=False,
                                     help_text=_("An operating setting rather than a measurement."))
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.unit})" if self.unit else self.name


class ReadingChunk(models.Model):
    """One delivery of readings for one machine (an upload's share or one push), stored compactly."""

    class Source(models.TextChoices):
        UPLOAD = "upload", _("Upload")
        PUSH = "push", _("REST push")
        DEMO = "demo", _("Demo")

    machine = models.ForeignKey(Machine, on_delete=models.CASCADE, related_name="chunks")
    source = models.CharField(max_length=16, choices=Source.choices)
    batch = models.ForeignKey("core.Batch", null=True, blank=True, on_delete=models.SET_NULL,
                              related_name="+")
    time_axis = models.CharField(max_length=16, choices=TimeAxis.choices)
    columns = models.JSONField(default=list)
    steps = models.PositiveIntegerField(default=0)
    readings = models.PositiveIntegerField(default=0)
    start = models.CharField(max_length=40, blank=True)
    end = models.CharField(max_length=40, blank=True)
    data = models.BinaryField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["machine_id", "id"]

    def __str__(self) -> str:
        return f"{self.machine_id}: {self.steps} steps ({self.source})"

    # --- (de)serialisation of the series --------------------------------------------------------
    @staticmethod
    def encode(frame: pd.DataFrame) -> bytes:
        """A frame indexed by cycle or timestamp → compressed npz bytes."""
        index = frame.index
        if isinstance(index, pd.DatetimeIndex):
            idx = index.asi8
        else:
            idx = np.asarray(index, dtype=float)
        buf = io.BytesIO()
        np.savez_compressed(buf, index=idx, values=frame.to_numpy(dtype=float))
        return buf.getvalue()

    def frame(self) -> pd.DataFrame:
        with np.load(io.BytesIO(bytes(self.data)), allow_pickle=False) as npz:
            idx, values = npz["index"], npz["values"]
        if self.time_axis == TimeAxis.TIMESTAMP:
            index = pd.DatetimeIndex(pd.to_datetime(idx), name="timestamp")
        else:
            index = pd.Index(idx, name="cycle")
            if len(idx) and np.all(np.mod(idx, 1) == 0) and np.all(np.abs(idx) < 2.0**53):
                index = pd.Index(idx.astype(np.int64), name="cycle")
        return pd.DataFrame(values, index=index, columns=list(self.columns))


class FailureModelVersion(models.Model):
    """A trained failure model (RUL regressor, calibrated classifier, anomaly detector) and its record."""

    name = models.CharField(max_length=120)
    model_version = models.CharField(max_length=40, help_text=_("Fingerprint of the trained model."))
    kind = models.CharField(max_length=20, default="failure")
    artifact = models.FileField(upload_to="manufacturing/models/")
    horizon = models.FloatField(null=True, blank=True)
    horizon_unit = models.CharField(max_length=16, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    cv_metrics = models.JSONField(default=dict, blank=True)
    training_source = models.CharField(max_length=255, blank=True)
    is_active = models.BooleanField(default=False, db_index=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    activated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["is_active"], condition=models.Q(is_active=True),
                                    name="one_active_failure_model"),
        ]

    def __str__(self) -> str:
        return f"{self.name} {self.model_version}"

    @property
    def label(self) -> str:
        return f"{self.name} ({self.model_version})"


class _StoredTextDisplay:
    """Progress and error sentences are stored in English; pages show them in the reader's language."""

    def progress_display(self) -> str:
        from apps.manufacturing.texts import text_display

        return text_display(self.progress_message)

    def error_display(self) -> str:
        from apps.manufacturing.texts import text_display

        return text_display(self.error_message)


class Prediction(_StoredTextDisplay, Job):
    """One machine's failure prediction from its stored readings (after an upload or a push)."""

    machine = models.ForeignKey(Machine, on_delete=models.CASCADE, related_name="predictions")
    chunk = models.ForeignKey(ReadingChunk, null=True, blank=True, on_delete=models.SET_NULL,
                              related_name="+", help_text=_("The newest readings this prediction sees."))
    source = models.CharField(max_length=16, choices=ReadingChunk.Source.choices,
                              default=ReadingChunk.Source.UPLOAD)
    language = models.CharField(max_length=8, default="en")
    failure_model = models.ForeignKey(FailureModelVersion, null=True, blank=True, on_delete=models.SET_NULL,
                                      related_name="predictions")
    input_issues = models.JSONField(default=list, blank=True,
                                    help_text=_("Errors and warnings from reading this machine's data."))
    failure_probability = models.FloatField(null=True, blank=True)
    horizon = models.FloatField(null=True, blank=True)
    horizon_unit = models.CharField(max_length=16, blank=True)
    rul_estimate = models.FloatField(null=True, blank=True)
    anomaly_score = models.FloatField(null=True, blank=True)
    is_anomalous = models.BooleanField(default=False)
    drivers = models.JSONField(default=list, blank=True)
    llm = models.JSONField(null=True, blank=True)
    disagreement = models.BooleanField(default=False)
    alert_level = models.CharField(max_length=16, blank=True)

    job_type = "manufacturing.prediction"
    type_label = _("Prediction")
    task_name = "manufacturing.prediction_run"
    role = "manufacturing"

    class Meta(Job.Meta):
        indexes = [models.Index(fields=["machine", "-queued_at"])]

    def title(self) -> str:
        return f"{self.machine.machine_id} · {str(self.id)[:8]}"

    def get_absolute_url(self) -> str:
        return reverse("manufacturing:prediction_detail", kwargs={"prediction_id": self.id})

    def api_url(self) -> str:
        return reverse("api-v1:manufacturing-prediction-detail", kwargs={"prediction_id": self.id})


class TrainingRun(_StoredTextDisplay, Job):
    """Training a failure model from uploaded run-to-failure history (a CSV, or a C-MAPSS file)."""

    upload = models.FileField(upload_to="manufacturing/training/%Y/%m/%d/", blank=True)
    original_filename = models.CharField(max_length=255, blank=True)
    data_format = models.CharField(max_length=16, default="auto")
    horizon = models.FloatField(default=30)
    name = models.CharField(max_length=120, default="failure model")
    activate = models.BooleanField(default=False)
    created_version = models.ForeignKey(FailureModelVersion, null=True, blank=True, on_delete=models.SET_NULL,
                                        related_name="+")

    job_type = "manufacturing.training"
    type_label = _("Training")
    task_name = "manufacturing.training_run"
    role = "manufacturing"

    def title(self) -> str:
        return f"training {self.original_filename or str(self.id)[:8]}"

    def get_absolute_url(self) -> str:
        return reverse("manufacturing:training_detail", kwargs={"training_id": self.id})

    def api_url(self) -> str:
        return reverse("api-v1:job-detail", kwargs={"job_id": self.id})


class Alert(models.Model):
    """A machine at risk: raised by a prediction, acknowledged and resolved by people."""

    class Level(models.TextChoices):
        WARNING = "warning", _("Warning")
        CRITICAL = "critical", _("Critical")

    class Status(models.TextChoices):
        OPEN = "open", _("Open")
        ACKNOWLEDGED = "acknowledged", _("Acknowledged")
        RESOLVED = "resolved", _("Resolved")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    machine = models.ForeignKey(Machine, on_delete=models.CASCADE, related_name="alerts")
    prediction = models.ForeignKey(Prediction, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="alerts",
                                   help_text=_("The latest prediction that raised or updated it."))
    level = models.CharField(max_length=16, choices=Level.choices)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN, db_index=True)
    reasons = models.JSONField(default=list, blank=True)
    failure_probability = models.FloatField(null=True, blank=True)
    rul_estimate = models.FloatField(null=True, blank=True)
    lead_time = models.FloatField(null=True, blank=True,
                                  help_text=_("Expected time left to plan maintenance."))
    lead_time_unit = models.CharField(max_length=16, blank=True)
    recommendation = models.TextField(blank=True)
    recommendation_zh = models.TextField(blank=True)
    updates = models.PositiveIntegerField(default=1, help_text=_("Predictions that confirmed it."))
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    updated_at = models.DateTimeField(default=timezone.now)
    acknowledged_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                        on_delete=models.SET_NULL, related_name="+")
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                    on_delete=models.SET_NULL, related_name="+")
    resolved_at = models.DateTimeField(null=True, blank=True)
    note = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.machine.machine_id} {self.level} ({self.status})"

    def api_url(self) -> str:
        return reverse("api-v1:manufacturing-alert-detail", kwargs={"alert_id": self.id})


JOB_MODELS = (Prediction, TrainingRun)
