from django.contrib import admin

from apps.finance.models import Assessment, CreditModelVersion, ModelTraining, Review


@admin.register(CreditModelVersion)
class CreditModelVersionAdmin(admin.ModelAdmin):
    list_display = ("version", "algorithm", "is_active", "data_rows", "created_at", "trained_by")
    exclude = ("artifact", "calibration_png")
    readonly_fields = ("version", "algorithm", "metadata", "metrics", "fairness", "calibration",
                       "data_sha256", "data_filename", "data_rows", "is_active", "trained_by", "created_at",
                       "activated_at", "activated_by")

    def has_add_permission(self, request):
        return False  # train from the Scorecard versions page or `manage.py train_credit_model`


@admin.register(Assessment)
class AssessmentAdmin(admin.ModelAdmin):
    list_display = ("application_id", "status", "risk_level", "probability_of_default", "score",
                    "llm_risk_level", "needs_review", "final_decision", "queued_at")
    list_filter = ("status", "risk_level", "needs_review", "final_decision", "source")
    search_fields = ("application_id",)
    readonly_fields = [f.name for f in Assessment._meta.fields]

    def has_add_permission(self, request):
        return False


@admin.register(Review)
class ReviewAdmin(admin.ModelAdmin):
    list_display = ("assessment", "decision", "model_risk_level", "final_risk_level", "reviewer",
                    "created_at")
    readonly_fields = [f.name for f in Review._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(ModelTraining)
class ModelTrainingAdmin(admin.ModelAdmin):
    list_display = ("original_filename", "status", "activate", "credit_model", "queued_at")
    readonly_fields = [f.name for f in ModelTraining._meta.fields]
