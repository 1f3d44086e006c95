from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _

from core.registry import SuiteApp


class MedicalConfig(SuiteApp, AppConfig):
    name = "apps.medical"
    label = "medical"
    default_auto_field = "django.db.models.BigAutoField"

    # what core needs (core.registry.SuiteApp)
    role = "medical"
    nav = (_("Radiology"), "medical:index")
    batch_task = "medical.batch_ingest"
    prompts_dir = "prompts"
    celery_queue = "medical"
    demo_user = "radiologist"
    demo_seed = "apps.medical.demo.demo_seed"
    demo_models = None
    prompt_evaluate = "apps.medical.evaluation.prompt_evaluate"
    attention = "apps.medical.selectors.attention"
    root_urls = (("dicomweb/", "dicomweb_urls"),)

    def ready(self) -> None:
        from apps.medical import models
        from core.registry import register_job_model

        for model in getattr(models, "JOB_MODELS", ()):
            register_job_model(model)
