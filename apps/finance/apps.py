from django.apps import AppConfig


class FinanceConfig(AppConfig):
    name = "apps.finance"
    label = "finance"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from apps.finance import models
        from core.registry import register_job_model

        for model in getattr(models, "JOB_MODELS", ()):
            register_job_model(model)
