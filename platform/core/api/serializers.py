"""Serializers shared by every app: a job's common fields and a batch with its progress."""
from __future__ import annotations

from django.urls import reverse
from rest_framework import serializers

from core.models import Batch, DiagnosticJob
from core.selectors import batch_progress


class JobSerializer(serializers.Serializer):
    """The fields every job shows; app serializers subclass and add theirs (and their ``result``)."""

    id = serializers.UUIDField(read_only=True)
    type = serializers.SerializerMethodField()
    url = serializers.SerializerMethodField()
    status = serializers.CharField(read_only=True)
    progress = serializers.FloatField(read_only=True)
    progress_message = serializers.CharField(read_only=True)
    attempts = serializers.IntegerField(read_only=True)
    error = serializers.SerializerMethodField()
    queued_at = serializers.DateTimeField(read_only=True)
    started_at = serializers.DateTimeField(read_only=True)
    finished_at = serializers.DateTimeField(read_only=True)
    model = serializers.SerializerMethodField()
    batch = serializers.UUIDField(source="batch_id", read_only=True, allow_null=True)

    def get_type(self, job) -> str:
        return job.job_type

    def get_url(self, job) -> str:
        request = self.context.get("request")
        path = (job.api_url() if hasattr(job, "api_url")
                else reverse("api-v1:job-detail", kwargs={"job_id": job.pk}))
        return request.build_absolute_uri(path) if request else path

    def get_error(self, job) -> dict | None:
        if not job.error_code:
            return None
        return {"code": job.error_code, "message": job.error_message}

    def get_model(self, job) -> dict:
        return {
            "name": job.model_name, "version": job.model_version,
            "prompt_template": job.prompt_template, "prompt_version": job.prompt_version,
            "timings": job.timings,
        }


class GenericJobSerializer(JobSerializer):
    result = serializers.JSONField(read_only=True)


class BatchSerializer(serializers.ModelSerializer):
    url = serializers.SerializerMethodField()
    results_url = serializers.SerializerMethodField()
    progress = serializers.SerializerMethodField()
    filename = serializers.CharField(source="original_filename", read_only=True)

    class Meta:
        model = Batch
        fields = ["id", "url", "app", "status", "filename", "size_bytes", "progress", "errors", "warnings",
                  "created_at", "parsed_at", "finished_at", "results_url"]
        read_only_fields = fields

    def _abs(self, path: str) -> str:
        request = self.context.get("request")
        return request.build_absolute_uri(path) if request else path

    def get_url(self, batch) -> str:
        return self._abs(reverse(f"api-v1:{batch.app}-batch-detail", kwargs={"batch_id": batch.pk}))

    def get_results_url(self, batch) -> str:
        return self._abs(reverse(f"api-v1:{batch.app}-batch-results", kwargs={"batch_id": batch.pk}))

    def get_progress(self, batch) -> dict:
        return batch_progress(batch=batch)


class DiagnosticCreateSerializer(serializers.Serializer):
    prompt = serializers.CharField(max_length=2000, default="Say OK.")
    delay_seconds = serializers.FloatField(min_value=0, max_value=600, default=0)
    use_model = serializers.BooleanField(default=True)


class DiagnosticSerializer(JobSerializer):
    prompt = serializers.CharField(read_only=True)
    result = serializers.JSONField(read_only=True)

    class Meta:
        model = DiagnosticJob
