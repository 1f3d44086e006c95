from django.apps import AppConfig


class ManufacturingConfig(AppConfig):
    name = "apps.manufacturing"
    label = "manufacturing"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from apps.manufacturing import models
        from core.registry import register_job_model

        for model in getattr(models, "JOB_MODELS", ()):
            register_job_model(model)
