"""Platform models: jobs and batches, attempts, prompt templates, API tokens, the audit log."""
from __future__ import annotations

import uuid
from typing import Any, ClassVar

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class JobStatus(models.TextChoices):
    QUEUED = "queued", _("Queued")
    RUNNING = "running", _("Running")
    SUCCEEDED = "succeeded", _("Succeeded")
    FAILED = "failed", _("Failed")
    NEEDS_REVIEW = "needs_review", _("Needs review")


TERMINAL_STATUSES = frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.NEEDS_REVIEW})


class Job(models.Model):
    """One unit of asynchronous work. Each app subclasses it (an assessment, a study, a prediction).

    The row is the source of truth; the Celery message carries only its id. A worker claims the job
    by taking a lease (``lease_token``, ``lease_expires_at``) and writes the result only while it
    still holds that lease, so a job delivered twice produces one result.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    batch = models.ForeignKey("core.Batch", null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    status = models.CharField(max_length=16, choices=JobStatus.choices, default=JobStatus.QUEUED,
                              db_index=True)
    progress = models.FloatField(default=0.0, help_text=_("Fraction done, 0 to 1."))
    progress_message = models.CharField(max_length=200, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    error_code = models.CharField(max_length=64, blank=True)
    error_message = models.TextField(blank=True)
    queued_at = models.DateTimeField(default=timezone.now, db_index=True)
    enqueued_at = models.DateTimeField(null=True, blank=True, help_text=_("When a message was last sent."))
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    lease_token = models.UUIDField(null=True, blank=True, editable=False)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    model_name = models.CharField(max_length=200, blank=True)
    model_version = models.CharField(max_length=100, blank=True)
    prompt_template = models.CharField(max_length=200, blank=True)
    prompt_version = models.PositiveIntegerField(null=True, blank=True)
    timings = models.JSONField(default=dict, blank=True)
    result = models.JSONField(null=True, blank=True)
    stage = models.JSONField(
        null=True, blank=True, editable=False,
        help_text=_("Between the CPU part and the language-model part of a job: what the second part needs."))

    #: "<app>.<kind>", the key in the job registry; set by each subclass.
    job_type: ClassVar[str] = ""
    #: the Celery task (by name) that runs one job of this type.
    task_name: ClassVar[str] = ""
    #: the role (group) a user needs to see these jobs.
    role: ClassVar[str] = ""
    #: what a user calls this kind of job, lazily translated (dashboard, job pages); None: the verbose name.
    type_label: ClassVar[Any] = None

    class Meta:
        abstract = True
        ordering = ["-queued_at"]

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES

    def title(self) -> str:
        """A short human label for lists; subclasses override."""
        return str(self.id)[:8]

    def progress_display(self) -> str:
        """``progress_message`` as the reader sees it; an app storing English sentences translates here."""
        return self.progress_message

    def error_display(self) -> str:
        """``error_message`` as the reader sees it (see :meth:`progress_display`)."""
        return self.error_message

    def get_absolute_url(self) -> str:
        from django.urls import reverse

        return reverse("core:job_detail", kwargs={"job_id": self.id})


class JobAttempt(models.Model):
    """Each time a worker picked a job up, and how that attempt ended."""

    class Outcome(models.TextChoices):
        RUNNING = "running", _("Running")
        SUCCEEDED = "succeeded", _("Succeeded")
        NEEDS_REVIEW = "needs_review", _("Needs review")
        RETRY = "retry", _("Will retry")
        HANDED_ON = "handed_on", _("Handed on to the language-model pool")
        FAILED = "failed", _("Failed")
        ABANDONED = "abandoned", _("Abandoned (worker lost)")
        SUPERSEDED = "superseded", _("Superseded (lease lost)")

    job_type = models.CharField(max_length=64, db_index=True)
    job_id = models.UUIDField(db_index=True)
    number = models.PositiveIntegerField()
    lease_token = models.UUIDField()
    worker = models.CharField(max_length=200, blank=True)
    outcome = models.CharField(max_length=16, choices=Outcome.choices, default=Outcome.RUNNING)
    error_code = models.CharField(max_length=64, blank=True)
    error_message = models.TextField(blank=True)
    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["job_id", "number"]


class Batch(models.Model):
    """An uploaded file whose items become jobs. Progress is counted from the items' statuses."""

    class Status(models.TextChoices):
        QUEUED = "queued", _("Queued")
        PARSING = "parsing", _("Reading the file")
        RUNNING = "running", _("Running")
        DONE = "done", _("Done")
        FAILED = "failed", _("Failed")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    app = models.CharField(max_length=32, db_index=True)
    kind = models.CharField(max_length=64, help_text=_("The item job type, e.g. finance.assessment"))
    file = models.FileField(upload_to="uploads/%Y/%m/%d/", blank=True)
    original_filename = models.CharField(max_length=255, blank=True)
    size_bytes = models.BigIntegerField(default=0)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED, db_index=True)
    item_total = models.PositiveIntegerField(default=0)
    errors = models.JSONField(default=list, blank=True, help_text=_("File-level errors."))
    warnings = models.JSONField(default=list, blank=True)
    options = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    parsed_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    parse_lease_expires_at = models.DateTimeField(
        null=True, blank=True,
        help_text=_("While a worker reads the file, no other delivery may read it until this time passes."),
    )

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "batches"

    def __str__(self) -> str:
        return f"{self.app} batch {self.original_filename or self.id}"

    def get_absolute_url(self) -> str:
        from django.urls import reverse

        return reverse("core:batch_detail", kwargs={"batch_id": self.id})


class PromptTemplate(models.Model):
    """One immutable version of a prompt in one language. A job records which one it used."""

    class Language(models.TextChoices):
        EN = "en", "English"
        ZH_HANS = "zh-hans", "简体中文"

    name = models.CharField(max_length=120, help_text=_("<app>.<template>, e.g. finance.risk_judgment"))
    version = models.PositiveIntegerField()
    language = models.CharField(max_length=8, choices=Language.choices)
    body = models.TextField(help_text=_("[system] and [user] sections; $variables"))
    output_schema = models.JSONField(null=True, blank=True,
                                     help_text=_("JSON Schema of the constrained answer"))
    description = models.CharField(max_length=300, blank=True)
    sampling = models.JSONField(
        default=dict, blank=True,
        help_text=_("The first try's repetition controls, e.g. {\"repetition_penalty\": 1.2} "
                    "(v<N>.meta.json's \"sampling\"); empty: plain greedy decoding"))
    source = models.CharField(max_length=200, blank=True, help_text=_("The file it was seeded from, if any."))
    is_enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["name", "-version", "language"]
        constraints = [
            models.UniqueConstraint(fields=["name", "version", "language"],
                                    name="prompt_template_unique_version"),
        ]

    def __str__(self) -> str:
        return f"{self.name} v{self.version} ({self.language})"

    def clean(self) -> None:
        from django.core.exceptions import ValidationError

        from core.prompts import sampling_problems

        problems = sampling_problems(self.sampling)
        if problems:
            raise ValidationError({"sampling": problems})

    def save(self, *args, **kwargs):
        if self.pk is not None:
            original = PromptTemplate.objects.filter(pk=self.pk).values(
                "body", "output_schema", "sampling", "name", "version", "language").first()
            if original and (
                original["body"] != self.body
                or original["output_schema"] != self.output_schema
                or original["sampling"] != self.sampling
                or (original["name"], original["version"], original["language"])
                != (self.name, self.version, self.language)
            ):
                raise ValueError(
                    f"prompt template {self} is immutable: add a new version instead of editing this one"
                )
        super().save(*args, **kwargs)


class PromptEvaluation(models.Model):
    """One measured run of a prompt template version on its app's labelled set (``evaluate_prompts``).

    A new version is compared with the active one on these rows before it is activated.
    """

    name = models.CharField(max_length=120, db_index=True, help_text=_("<app>.<template>"))
    version = models.PositiveIntegerField()
    language = models.CharField(max_length=8)
    model = models.CharField(max_length=200, blank=True, help_text=_("The model that answered."))
    n = models.PositiveIntegerField(default=0, help_text=_("Labelled items evaluated."))
    metrics = models.JSONField(default=dict, help_text=_("Metric name to value."))
    primary = models.CharField(max_length=64, blank=True, help_text=_("The metric a version is judged by."))
    primary_value = models.FloatField(null=True, blank=True)
    higher_is_better = models.BooleanField(default=True)
    failures = models.JSONField(default=list, blank=True, help_text=_("Up to 20 failed items, with why."))
    duration_s = models.FloatField(default=0.0)
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["name", "-version", "language", "-created_at"]
        indexes = [models.Index(fields=["name", "version", "language"], name="prompt_eval_version_idx")]

    def __str__(self) -> str:
        return f"{self.name} v{self.version} ({self.language}): {self.primary}={self.primary_value}"


class ApiToken(models.Model):
    """A bearer token for the REST API. Only its SHA-256 hash is stored."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, unique=True)
    key_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class AuditQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise PermissionError("the audit log is append-only")

    def delete(self):
        raise PermissionError("the audit log is append-only")


class AuditEvent(models.Model):
    """Append-only record of who submitted, viewed, exported, reviewed or signed what."""

    class Action(models.TextChoices):
        SUBMIT = "submit", _("Submitted")
        VIEW = "view", _("Viewed")
        EXPORT = "export", _("Exported")
        REVIEW = "review", _("Reviewed")
        SIGN = "sign", _("Signed")
        EDIT = "edit", _("Edited")
        LOGIN = "login", _("Logged in")
        LOGIN_FAILED = "login_failed", _("Login failed")
        LOGOUT = "logout", _("Logged out")
        TOKEN_CREATE = "token_create", _("Token created")
        TOKEN_REVOKE = "token_revoke", _("Token revoked")
        ADMIN = "admin", _("Administration")
        TRAIN = "train", _("Trained a model")
        ACTIVATE = "activate", _("Activated a model")

    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                              related_name="+")
    actor_label = models.CharField(max_length=150, blank=True)
    action = models.CharField(max_length=32, choices=Action.choices, db_index=True)
    object_type = models.CharField(max_length=64, blank=True, db_index=True)
    object_id = models.CharField(max_length=64, blank=True, db_index=True)
    detail = models.JSONField(default=dict, blank=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    objects = AuditQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return (f"{self.created_at:%Y-%m-%d %H:%M} {self.actor_label} {self.action} "
                f"{self.object_type} {self.object_id}")

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise PermissionError("the audit log is append-only")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise PermissionError("the audit log is append-only")


class DiagnosticJob(Job):
    """A platform self-test: waits a little (with progress), then asks the model service one question.

    Admins run it from the dashboard to check the whole chain web → queue → worker → model service →
    database; the test suite uses it before any app exists.
    """

    prompt = models.TextField(default="Say OK.")
    delay_seconds = models.FloatField(default=0.0)
    use_model = models.BooleanField(default=True)

    job_type = "core.diagnostic"
    type_label = _("Platform self-test")
    task_name = "core.diagnostic_run"
    role = "admin"

    def title(self) -> str:
        return f"diagnostic {str(self.id)[:8]}"
