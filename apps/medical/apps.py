from django.apps import AppConfig


class MedicalConfig(AppConfig):
    name = "apps.medical"
    label = "medical"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from apps.medical import models
        from core.registry import register_job_model

        for model in getattr(models, "JOB_MODELS", ()):
            register_job_model(model)
