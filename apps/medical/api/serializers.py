"""REST shapes of the medical app: uploads (batches) with per-file status, studies with their report."""
from __future__ import annotations

from django.urls import reverse
from rest_framework import serializers

from apps.medical import selectors
from apps.medical.models import AI_DRAFT_NOTICE, Instance, Report
from apps.medical.prompting import REPORT_FIELDS
from core.api.serializers import BatchSerializer, JobSerializer

#: the features of a series shown in the API (the rest stays in the study's result)
SERIES_FEATURES = ("rows", "columns", "pixel_spacing_mm", "slice_thickness_mm", "spacing_between_slices_mm",
                   "orientation", "units", "intensity", "hu_classes", "histogram", "body_part", "acquisition",
                   "transfer_syntaxes")


def _abs(context, path: str) -> str:
    request = context.get("request")
    return request.build_absolute_uri(path) if request else path


def file_row(inst: Instance) -> dict:
    """One uploaded file's status (de-identified UIDs only). ``name`` is the file's pseudonym (``file-001``,
    ``file-001/00002`` for a ZIP member): original names often carry the patient's name, they are in the
    identity row only (``?include=identity`` on the study)."""
    return {
        "name": inst.file_name,
        "status": inst.status,
        "error": ({"code": inst.error_code, "message": inst.error_message} if inst.error_code else None),
        "warnings": inst.warnings,
        "study": str(inst.study_id) if inst.study_id else None,
        "sop_instance_uid": inst.sop_instance_uid or None,
        "series_instance_uid": inst.series.series_instance_uid if inst.series_id else None,
        "modality": inst.modality or None,
        "transfer_syntax": inst.transfer_syntax or None,
        "frames": inst.frames,
    }


def duplicate_data(study, context) -> dict | None:
    """The earlier upload this study repeats: its id, API URL and when it was uploaded (no UID)."""
    if not study.duplicate_of_id:
        return None
    earlier = study.duplicate_of
    return {"id": str(earlier.pk), "url": _abs(context, earlier.api_url()), "uploaded_at": earlier.queued_at}


def report_data(report: Report | None, context) -> dict | None:
    if report is None:
        return None
    sections = {k: report.sections.get(k, [] if k in ("findings", "recommendations") else "")
                for k in REPORT_FIELDS}
    return {
        "status": report.status,
        "ai_generated": report.ai_generated,
        "verified": report.is_final,
        "notice": str(AI_DRAFT_NOTICE) if report.shows_ai_notice else None,
        **sections,
        "sections": sections,
        "postcheck_warnings": report.postcheck_warnings,
        "language": report.language,
        "edited_at": report.edited_at,
        "edits": report.edits,
        "signed_by": report.signer_name or None,
        "signer_organization": report.signer_organization or None,
        "signed_at": report.signed_at,
        "addenda": [{"text": a.text, "author": a.author_name, "created_at": a.created_at}
                    for a in report.addenda.all()],
    }


class StudySummarySerializer(JobSerializer):
    """A study in lists (no per-file rows)."""

    study_instance_uid = serializers.CharField(read_only=True)
    modality = serializers.CharField(read_only=True)
    body_part = serializers.CharField(read_only=True)
    description = serializers.CharField(read_only=True)
    report_status = serializers.SerializerMethodField()
    duplicate_of = serializers.SerializerMethodField(
        help_text="The first upload of the same study (same original Study Instance UID), or null")

    def get_report_status(self, study) -> str | None:
        return study.report.status if selectors.has_report(study) else None

    def get_duplicate_of(self, study) -> dict | None:
        return duplicate_data(study, self.context)


class StudySerializer(StudySummarySerializer):
    indication = serializers.CharField(read_only=True, help_text="Filtered of identifiers (as entered: "
                                                                 "identity.indication)")
    language = serializers.CharField(read_only=True)
    series_count = serializers.IntegerField(read_only=True)
    instance_count = serializers.IntegerField(read_only=True)
    frame_count = serializers.IntegerField(read_only=True)
    flags = serializers.JSONField(read_only=True)
    upload = serializers.SerializerMethodField()
    series = serializers.SerializerMethodField()
    files = serializers.SerializerMethodField()
    report = serializers.SerializerMethodField()
    downloads = serializers.SerializerMethodField()
    result = serializers.JSONField(read_only=True)
    identity = serializers.SerializerMethodField()
    draft = serializers.SerializerMethodField()

    def get_upload(self, study) -> str | None:
        if not study.batch_id:
            return None
        return _abs(self.context, reverse("api-v1:medical-batch-detail", kwargs={"batch_id": study.batch_id}))

    def get_series(self, study) -> list[dict]:
        out = []
        for s in study.series.all():
            f = s.features or {}
            out.append({
                "series_instance_uid": s.series_instance_uid, "series_number": s.series_number,
                "modality": s.modality, "description": s.description, "instances": s.instance_count,
                "frames": s.frame_count, "error": s.error_message or None,
                "features": {k: f.get(k) for k in SERIES_FEATURES if k in f} or None,
            })
        return out

    def get_files(self, study) -> list[dict]:
        files = study.instances.select_related("series").order_by("series__order", "order")
        return [file_row(i) for i in files]

    def get_report(self, study) -> dict | None:
        return report_data(selectors.study_report(study=study), self.context)

    def get_downloads(self, study) -> dict | None:
        if selectors.study_report(study=study) is None:
            return None
        names = {"pdf": "medical-study-pdf", "sr": "medical-study-sr", "fhir": "medical-study-fhir"}
        return {k: _abs(self.context, reverse(f"api-v1:{v}", kwargs={"study_id": study.pk}))
                for k, v in names.items()}

    def get_draft(self, study) -> dict | None:
        """Whether the AI draft is usable; when not, ``"no usable draft"`` with the reasons, and the
        structured facts (technique, features) that stand whatever the model did."""
        quality = (study.result or {}).get("draft_quality") if isinstance(study.result, dict) else None
        if not quality:
            return None
        return {"usable": quality.get("usable", False), "status": quality.get("status"),
                "message": None if quality.get("usable") else "no usable draft",
                "reasons": quality.get("reasons") or [], "tries": quality.get("tries", 0),
                "technique": quality.get("technique"), "features": quality.get("features") or []}

    def get_identity(self, study) -> dict | None:
        """Original identifiers: only with ``?include=identity`` (the caller has the medical role)."""
        if not self.context.get("include_identity"):
            return None
        identity = getattr(study, "identity", None)
        if identity is None:
            return None
        return {
            "patient_name": identity.patient_name, "patient_id": identity.patient_id,
            "patient_birth_date": identity.patient_birth_date, "patient_sex": identity.patient_sex,
            "accession_number": identity.accession_number, "study_date": identity.study_date,
            "study_instance_uid": identity.original_study_instance_uid,
            "files": (identity.identifiers or {}).get("files") or {},
            "indication": (identity.identifiers or {}).get("indication", ""),
        }


class UploadSerializer(BatchSerializer):
    """An upload (core Batch): progress over its studies, every file's status, links to the studies."""

    studies = serializers.SerializerMethodField()
    files = serializers.SerializerMethodField()
    indication = serializers.SerializerMethodField()
    already_uploaded = serializers.SerializerMethodField(
        help_text="How many of this upload's studies had been uploaded before (duplicate_of set)")

    class Meta(BatchSerializer.Meta):
        fields = [*BatchSerializer.Meta.fields, "indication", "studies", "already_uploaded", "files"]
        read_only_fields = fields

    def get_studies(self, batch) -> list[dict]:
        return [{"id": str(s.pk), "url": _abs(self.context, s.api_url()), "status": s.status,
                 "modality": s.modality, "report_status": s.report_status,
                 "duplicate_of": duplicate_data(s, self.context)}
                for s in selectors.batch_studies(batch=batch)]

    def get_already_uploaded(self, batch) -> int:
        return selectors.batch_studies_already_uploaded(batch=batch)

    def get_files(self, batch) -> list[dict]:
        return [file_row(i) for i in selectors.batch_files(batch=batch)]

    def get_indication(self, batch) -> str:
        return (batch.options or {}).get("indication", "")


class UploadCreateSerializer(serializers.Serializer):
    files = serializers.ListField(child=serializers.FileField(allow_empty_file=True), allow_empty=False,
                                  help_text="DICOM files and/or ZIP archives (repeat the field)")
    indication = serializers.CharField(required=False, allow_blank=True, max_length=4000,
                                       help_text="Clinical indication (scrubbed of identifiers before use)")
    language = serializers.ChoiceField(choices=["en", "zh-hans"], required=False, default="en")


class ReportEditSerializer(serializers.Serializer):
    technique = serializers.CharField(required=False, allow_blank=True)
    comparison = serializers.CharField(required=False, allow_blank=True)
    findings = serializers.ListField(
        child=serializers.DictField(child=serializers.CharField(allow_blank=True)), required=False)
    impression = serializers.CharField(required=False, allow_blank=True)
    recommendations = serializers.ListField(child=serializers.CharField(), required=False)
    limitations = serializers.CharField(required=False, allow_blank=True)


class SignSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200, help_text="The signing radiologist's name")
    organization = serializers.CharField(max_length=200, required=False, allow_blank=True)


class AddendumSerializer(serializers.Serializer):
    text = serializers.CharField(max_length=20000)
    name = serializers.CharField(max_length=200, required=False, allow_blank=True)

