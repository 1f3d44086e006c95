"""REST serializers of the finance app."""
from __future__ import annotations

from rest_framework import serializers

from apps.finance.models import Assessment, Review
from core.api.serializers import BatchSerializer, JobSerializer


class AssessmentCreateSerializer(serializers.Serializer):
    application_id = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")
    applicant = serializers.DictField(required=False, default=dict,
                                      help_text="Applicant fields: the columns of the German Credit file "
                                                "(names, English or Chinese labels); values as in the file.")
    report = serializers.CharField(required=False, allow_blank=True, default="", max_length=20000,
                                   trim_whitespace=True, help_text="Free-text credit application report.")
    language = serializers.ChoiceField(choices=Assessment.Language.values, required=False, default="en")


class ReviewSerializer(serializers.ModelSerializer):
    reviewer = serializers.CharField(source="reviewer.username", read_only=True)

    class Meta:
        model = Review
        fields = ["id", "decision", "model_risk_level", "final_risk_level", "comment", "reviewer",
                  "created_at"]
        read_only_fields = fields


class ReviewCreateSerializer(serializers.Serializer):
    decision = serializers.ChoiceField(choices=Review.Decision.values)
    final_risk_level = serializers.IntegerField(min_value=1, max_value=3, required=False, allow_null=True)
    comment = serializers.CharField(required=False, allow_blank=True, default="", max_length=4000)


class AssessmentSerializer(JobSerializer):
    application_id = serializers.CharField(read_only=True)
    source = serializers.CharField(read_only=True)
    language = serializers.CharField(read_only=True)
    row = serializers.IntegerField(source="row_number", read_only=True, allow_null=True)
    scorecard_version = serializers.SerializerMethodField()
    result = serializers.JSONField(read_only=True)
    final = serializers.SerializerMethodField()

    def get_scorecard_version(self, job) -> int | None:
        return job.credit_model.version if job.credit_model_id and job.credit_model else None

    def get_final(self, job) -> dict:
        """The human decision, apart from the model outputs in ``result``."""
        return {
            "decision": job.final_decision or None,
            "risk_level": job.final_risk_level,
            "reviewed_by": job.reviewed_by.get_username() if job.reviewed_by_id and job.reviewed_by else None,
            "reviewed_at": job.reviewed_at,
            "review_pending": job.review_pending,
        }


class AssessmentDetailSerializer(AssessmentSerializer):
    applicant = serializers.JSONField(read_only=True)
    report = serializers.CharField(read_only=True)
    reviews = serializers.SerializerMethodField()

    def get_reviews(self, job) -> list[dict]:
        return ReviewSerializer(job.reviews.select_related("reviewer").order_by("created_at"), many=True).data


class FinanceBatchSerializer(BatchSerializer):
    class Meta(BatchSerializer.Meta):
        pass


class BatchCreateSerializer(serializers.Serializer):
    file = serializers.FileField(help_text="CSV, one application per row: the German Credit columns, "
                                           "optional application_id and report; UTF-8 or GBK.")
    language = serializers.ChoiceField(choices=Assessment.Language.values, required=False, default="en")
