"""Finance models: scorecard versions, training jobs, assessments (one per application) and reviews."""
from __future__ import annotations

from django.conf import settings
from django.db import models
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from core.models import Job


class RiskLevel(models.IntegerChoices):
    LOW = 1, _("Low")
    MEDIUM = 2, _("Medium")
    HIGH = 3, _("High")


RISK_LABELS = {1: "low", 2: "medium", 3: "high"}


class CreditModelVersion(models.Model):
    """One trained scorecard: the serialized model, its quality and fairness reports, who trained it."""

    version = models.PositiveIntegerField(unique=True)
    algorithm = models.CharField(max_length=120, blank=True)
    artifact = models.BinaryField(help_text=_("The trained scorecard as a signed model artifact "
                                              "(core.artifacts, kind finance.scorecard)."))
    metadata = models.JSONField(default=dict, blank=True,
                                help_text=_("Training parameters, PD cut-offs, points scale, feature list."))
    metrics = models.JSONField(default=dict, blank=True, help_text=_("AUC, KS, Gini, Brier score."))
    fairness = models.JSONField(default=dict, blank=True)
    calibration = models.JSONField(default=list, blank=True, help_text=_("Reliability-curve points."))
    calibration_png = models.BinaryField(null=True, blank=True)
    judgment_calibration = models.JSONField(
        default=dict, blank=True,
        help_text=_("The language model's judgment measured on validation data, per language: AUC, "
                    "whether it is informative, its weight in the stack and the review rate it causes."))
    data_sha256 = models.CharField(max_length=64, blank=True)
    data_filename = models.CharField(max_length=255, blank=True)
    data_rows = models.PositiveIntegerField(default=0)
    is_active = models.BooleanField(default=False, db_index=True)
    trained_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    activated_at = models.DateTimeField(null=True, blank=True)
    activated_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                     on_delete=models.SET_NULL, related_name="+")
    note = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["-version"]
        constraints = [
            models.UniqueConstraint(fields=["is_active"], condition=models.Q(is_active=True),
                                    name="finance_one_active_credit_model"),
        ]

    def __str__(self) -> str:
        return f"scorecard v{self.version}"

    @property
    def label(self) -> str:
        return f"scorecard v{self.version}"

    def get_absolute_url(self) -> str:
        return reverse("finance:model_detail", kwargs={"version": self.version})


class ModelTraining(Job):
    """Training a new scorecard version from an uploaded labelled CSV (admin)."""

    data = models.FileField(upload_to="finance/training/%Y/%m/%d/")
    original_filename = models.CharField(max_length=255, blank=True)
    activate = models.BooleanField(default=False)
    note = models.CharField(max_length=300, blank=True)
    credit_model = models.OneToOneField(CreditModelVersion, null=True, blank=True, on_delete=models.SET_NULL,
                                        related_name="training")

    job_type = "finance.model_train"
    type_label = _("Scorecard training")
    task_name = "finance.model_train"
    role = "admin"

    class Meta(Job.Meta):
        pass

    def title(self) -> str:
        return f"train scorecard ({self.original_filename or 'CSV'})"

    def get_absolute_url(self) -> str:
        return reverse("finance:training_detail", kwargs={"job_id": self.pk})


class Assessment(Job):
    """The credit-risk assessment of one loan application."""

    class Source(models.TextChoices):
        FORM = "form", _("Web form")
        API = "api", _("REST API")
        BATCH = "batch", _("Batch upload")
        DEMO = "demo", _("Demo")

    class Language(models.TextChoices):
        EN = "en", "English"
        ZH_HANS = "zh-hans", "简体中文"

    class Decision(models.TextChoices):
        NONE = "", _("Not reviewed")
        APPROVED = "approved", _("Approved")
        OVERRIDDEN = "overridden", _("Overridden")

    # --- input ------------------------------------------------------------------------------
    application_id = models.CharField(max_length=100, blank=True, db_index=True)
    applicant = models.JSONField(default=dict, blank=True,
                                 help_text=_("Applicant fields as submitted (validated)."))
    report = models.TextField(blank=True)
    language = models.CharField(max_length=8, choices=Language.choices, default=Language.EN)
    source = models.CharField(max_length=8, choices=Source.choices, default=Source.FORM)
    row_number = models.PositiveIntegerField(null=True, blank=True, help_text=_("Line in the uploaded CSV."))
    credit_model = models.ForeignKey(CreditModelVersion, null=True, blank=True, on_delete=models.PROTECT,
                                     related_name="assessments")
    # --- model outputs (copied from the result for filtering and sorting) ---------------------------
    risk_level = models.PositiveSmallIntegerField(choices=RiskLevel.choices, null=True, blank=True,
                                                  db_index=True)
    scorecard_risk_level = models.PositiveSmallIntegerField(choices=RiskLevel.choices, null=True, blank=True)
    llm_risk_level = models.PositiveSmallIntegerField(choices=RiskLevel.choices, null=True, blank=True)
    probability_of_default = models.FloatField(null=True, blank=True, db_index=True)
    score = models.IntegerField(null=True, blank=True, db_index=True)
    needs_review = models.BooleanField(default=False, db_index=True)
    # --- the human decision ---------------------------------------------------------------------
    final_decision = models.CharField(max_length=12, choices=Decision.choices, default=Decision.NONE,
                                      blank=True, db_index=True)
    final_risk_level = models.PositiveSmallIntegerField(choices=RiskLevel.choices, null=True, blank=True)
    reviewed_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                    on_delete=models.SET_NULL, related_name="+")
    reviewed_at = models.DateTimeField(null=True, blank=True)

    job_type = "finance.assessment"
    type_label = _("Assessment")
    task_name = "finance.assessment_run"
    role = "finance"

    class Meta(Job.Meta):
        indexes = [models.Index(fields=["batch", "row_number"], name="finance_assess_batch_row")]

    def __str__(self) -> str:
        return self.title()

    def title(self) -> str:
        return self.application_id or str(self.id)[:8]

    def get_absolute_url(self) -> str:
        return reverse("finance:assessment_detail", kwargs={"job_id": self.pk})

    def api_url(self) -> str:
        return reverse("api-v1:finance-assessment-detail", kwargs={"job_id": self.pk})

    @property
    def risk_label(self) -> str:
        return RISK_LABELS.get(self.risk_level or 0, "")

    @property
    def review_pending(self) -> bool:
        return self.needs_review and not self.final_decision


class Review(models.Model):
    """An analyst's decision on an assessment: approve the model's level or override it."""

    class Decision(models.TextChoices):
        APPROVE = "approve", _("Approve")
        OVERRIDE = "override", _("Override")

    assessment = models.ForeignKey(Assessment, on_delete=models.CASCADE, related_name="reviews")
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    decision = models.CharField(max_length=10, choices=Decision.choices)
    model_risk_level = models.PositiveSmallIntegerField(choices=RiskLevel.choices, null=True, blank=True)
    final_risk_level = models.PositiveSmallIntegerField(choices=RiskLevel.choices)
    comment = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.decision} {self.assessment_id} by {self.reviewer_id}"


JOB_MODELS = (Assessment, ModelTraining)
