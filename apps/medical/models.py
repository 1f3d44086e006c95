"""Medical models: one Study job per uploaded DICOM study, its series, instances (files), key images,
the report (AI draft → edited → signed) with addenda, and the original identifiers kept apart.

Privacy: everything on these rows is de-identified except :class:`StudyIdentity`, which holds the
original patient and study identifiers. Only medical-role users see it; it never reaches a prompt,
a log line or the model service.
"""
from __future__ import annotations

from django.conf import settings
from django.db import models
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from core.models import Job

AI_DRAFT_NOTICE = _("AI-generated draft, not verified")


class Study(Job):
    """One imaging study of one upload: features of its series, then an AI draft report."""

    study_instance_uid = models.CharField(max_length=64, db_index=True,
                                          help_text=_("De-identified Study Instance UID."))
    modality = models.CharField(max_length=64, blank=True)
    body_part = models.CharField(max_length=64, blank=True)
    description = models.CharField(max_length=200, blank=True,
                                   help_text=_("De-identified study description."))
    indication = models.TextField(blank=True, help_text=_("Clinical indication, filtered of identifiers (as "
                                                          "entered: in the identity rows only)."))
    language = models.CharField(max_length=8, default="en")
    series_count = models.PositiveIntegerField(default=0)
    instance_count = models.PositiveIntegerField(default=0)
    frame_count = models.PositiveIntegerField(default=0)
    flags = models.JSONField(default=list, blank=True,
                             help_text=_("Review flags, e.g. burned-in annotation."))
    source = models.CharField(max_length=16, default="upload", help_text=_("upload, api, stow-rs or demo"))
    duplicate_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="duplicates",
        help_text=_("The first upload of the same study (same original Study Instance UID), if any."))

    job_type = "medical.study"
    type_label = _("Study")
    task_name = "medical.study_run"
    role = "medical"

    class Meta(Job.Meta):
        verbose_name_plural = "studies"

    def __str__(self) -> str:
        return self.title()

    def title(self) -> str:
        label = " ".join(x for x in (self.modality, self.body_part or self.description) if x)
        return f"{label or _('Study')} {str(self.id)[:8]}"

    def get_absolute_url(self) -> str:
        return reverse("medical:study_detail", kwargs={"study_id": self.pk})

    def api_url(self) -> str:
        return reverse("api-v1:medical-study-detail", kwargs={"study_id": self.pk})


class StudyIdentity(models.Model):
    """The original identifiers of a study, kept in the platform's database only.

    Shown only to medical-role users (and audited); never in a prompt, a log line or a model request.
    """

    study = models.OneToOneField(Study, on_delete=models.CASCADE, related_name="identity")
    patient_name = models.CharField(max_length=200, blank=True)
    patient_id = models.CharField(max_length=200, blank=True)
    patient_birth_date = models.CharField(max_length=32, blank=True)
    patient_sex = models.CharField(max_length=16, blank=True)
    accession_number = models.CharField(max_length=64, blank=True)
    study_date = models.CharField(max_length=32, blank=True)
    institution_name = models.CharField(max_length=200, blank=True)
    referring_physician_name = models.CharField(max_length=200, blank=True)
    original_study_instance_uid = models.CharField(max_length=64, blank=True, db_index=True)
    pseudonym = models.CharField(max_length=64, blank=True)
    identifiers = models.JSONField(default=dict, blank=True,
                                   help_text=_("Everything de-identification replaced, incl. the UID map."))

    def __str__(self) -> str:
        return f"identity of study {self.study_id}"


class UploadIdentity(models.Model):
    """The original names of an upload's files and ZIP members (they often carry the patient's name).

    Everything else (the batch, storage paths, instance rows, the API's ``files[].name``) holds the
    pseudonym (``file-001``, ``file-001/00002`` for a ZIP member); this row maps pseudonym → original
    name, and keeps the clinical indication as entered. Shown only to medical-role users, like
    :class:`StudyIdentity`.
    """

    batch = models.OneToOneField("core.Batch", on_delete=models.CASCADE, related_name="+")
    files = models.JSONField(default=dict, blank=True, help_text=_("Pseudonym → original file name."))
    indication = models.TextField(blank=True, help_text=_("The clinical indication as entered (each study "
                                                          "keeps it filtered of identifiers)."))

    def __str__(self) -> str:
        return f"file names of upload {self.batch_id}"


class Series(models.Model):
    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="series")
    series_instance_uid = models.CharField(max_length=64, help_text=_("De-identified Series Instance UID."))
    series_number = models.IntegerField(null=True, blank=True)
    modality = models.CharField(max_length=16, blank=True)
    description = models.CharField(max_length=200, blank=True)
    order = models.PositiveIntegerField(default=0)
    instance_count = models.PositiveIntegerField(default=0)
    frame_count = models.PositiveIntegerField(default=0)
    features = models.JSONField(null=True, blank=True)
    error_message = models.TextField(blank=True)

    class Meta:
        ordering = ["study", "order"]
        verbose_name_plural = "series"

    def __str__(self) -> str:
        return f"{self.modality} series {self.series_number or ''} {self.description}".strip()


class Instance(models.Model):
    """One uploaded file: a de-identified DICOM instance, or an error/skip naming the cause."""

    class Status(models.TextChoices):
        OK = "ok", _("Accepted")
        ERROR = "error", _("Error")
        SKIPPED = "skipped", _("Skipped")

    batch = models.ForeignKey("core.Batch", on_delete=models.CASCADE, related_name="+")
    study = models.ForeignKey(Study, null=True, blank=True, on_delete=models.CASCADE,
                              related_name="instances")
    series = models.ForeignKey(Series, null=True, blank=True, on_delete=models.CASCADE,
                               related_name="instances")
    file_name = models.CharField(max_length=500,
                                 help_text=_("A pseudonym (series/instance number or upload file number); "
                                             "the original name is in the upload's identity row."))
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OK, db_index=True)
    error_code = models.CharField(max_length=64, blank=True)
    error_message = models.TextField(blank=True)
    warnings = models.JSONField(default=list, blank=True)
    sop_instance_uid = models.CharField(max_length=64, blank=True,
                                        help_text=_("De-identified SOP Instance UID."))
    sop_class_uid = models.CharField(max_length=64, blank=True)
    modality = models.CharField(max_length=16, blank=True)
    transfer_syntax = models.CharField(max_length=100, blank=True)
    photometric_interpretation = models.CharField(max_length=32, blank=True)
    rows = models.PositiveIntegerField(null=True, blank=True)
    columns = models.PositiveIntegerField(null=True, blank=True)
    frames = models.PositiveIntegerField(default=0)
    instance_number = models.IntegerField(null=True, blank=True)
    order = models.PositiveIntegerField(default=0, help_text=_("Position in its series (slice order)."))
    size_bytes = models.BigIntegerField(default=0)
    file = models.FileField(upload_to="medical/instances/", blank=True, max_length=300,
                            help_text=_("The de-identified DICOM file."))
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["batch", "study", "series__order", "order", "file_name"]
        indexes = [models.Index(fields=["study", "status"])]

    def __str__(self) -> str:
        return f"{self.file_name} ({self.status})"


class KeyImage(models.Model):
    """A key image picked while the series was processed (PNG, de-identified pixels as uploaded)."""

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="key_images")
    series = models.ForeignKey(Series, on_delete=models.CASCADE, related_name="key_images")
    instance = models.ForeignKey(Instance, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    sop_instance_uid = models.CharField(max_length=64, blank=True)
    frame = models.PositiveIntegerField(default=0)
    index = models.PositiveIntegerField(default=0, help_text=_("Frame index across the series."))
    order = models.PositiveIntegerField(default=0)
    window = models.JSONField(default=dict, blank=True)
    width = models.PositiveIntegerField(default=0)
    height = models.PositiveIntegerField(default=0)
    png = models.BinaryField()

    class Meta:
        ordering = ["study", "order"]


class Report(models.Model):
    """The report of a study: the AI draft, the radiologist's edits, the signature. Final is final."""

    class Status(models.TextChoices):
        DRAFT = "draft", _("Draft")
        FINAL = "final", _("Final (signed)")

    study = models.OneToOneField(Study, on_delete=models.CASCADE, related_name="report")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.DRAFT, db_index=True)
    ai_generated = models.BooleanField(default=True)
    ai_sections = models.JSONField(null=True, blank=True, help_text=_("The draft as the model wrote it."))
    sections = models.JSONField(default=dict, help_text=_("technique, comparison, findings, impression, "
                                                          "recommendations, limitations"))
    language = models.CharField(max_length=8, default="en")
    postcheck_warnings = models.JSONField(default=list, blank=True)
    edits = models.JSONField(default=list, blank=True, help_text=_("Who changed which sections, when."))
    edited_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                  related_name="+")
    edited_at = models.DateTimeField(null=True, blank=True)
    signed_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                  related_name="+")
    signer_name = models.CharField(max_length=200, blank=True)
    signer_organization = models.CharField(max_length=200, blank=True)
    signed_at = models.DateTimeField(null=True, blank=True)
    sr_series_instance_uid = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"report of {self.study_id} ({self.status})"

    @property
    def is_final(self) -> bool:
        return self.status == self.Status.FINAL

    @property
    def shows_ai_notice(self) -> bool:
        """An AI-written report not yet verified by a radiologist."""
        return self.ai_generated and not self.is_final

    def save(self, *args, **kwargs):
        if self.pk is not None:
            stored = Report.objects.filter(pk=self.pk).values("status", "sections", "signed_at").first()
            if stored and stored["status"] == Report.Status.FINAL and (
                self.status != Report.Status.FINAL or self.sections != stored["sections"]
                or self.signed_at != stored["signed_at"]
            ):
                raise PermissionError("a signed report is never edited; add an addendum instead")
        super().save(*args, **kwargs)


class Addendum(models.Model):
    """A change to a signed report: appended, never replacing what was signed."""

    report = models.ForeignKey(Report, on_delete=models.CASCADE, related_name="addenda")
    text = models.TextField()
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    author_name = models.CharField(max_length=200)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["report", "created_at"]
        verbose_name_plural = "addenda"

    def as_dict(self) -> dict:
        return {"text": self.text, "author": self.author_name,
                "datetime": self.created_at.strftime("%Y-%m-%d %H:%M UTC")}


JOB_MODELS = (Study,)
