from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _

from core.registry import SuiteApp


class ManufacturingConfig(SuiteApp, AppConfig):
    name = "apps.manufacturing"
    label = "manufacturing"
    default_auto_field = "django.db.models.BigAutoField"

    # what core needs (core.registry.SuiteApp)
    role = "manufacturing"
    nav = (_("Equipment"), "manufacturing:index")
    batch_task = "manufacturing.batch_ingest"
    prompts_dir = "prompts"
    celery_queue = "manufacturing"
    demo_user = "engineer"
    demo_seed = "apps.manufacturing.demo.demo_seed"
    demo_models = "apps.manufacturing.demo.demo_models"
    attention = "apps.manufacturing.selectors.attention"
    artifacts_resign = "apps.manufacturing.services.failure_model_artifacts_resign"
    prompt_evaluate = "apps.manufacturing.evaluation.prompt_evaluate"

    def ready(self) -> None:
        from apps.manufacturing import models
        from core.registry import register_job_model

        for model in getattr(models, "JOB_MODELS", ()):
            register_job_model(model)
