from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _

from core.registry import SuiteApp


class FinanceConfig(SuiteApp, AppConfig):
    name = "apps.finance"
    label = "finance"
    default_auto_field = "django.db.models.BigAutoField"

    # what core needs (core.registry.SuiteApp)
    role = "finance"
    nav = (_("Credit risk"), "finance:index")
    batch_task = "finance.batch_ingest"
    prompts_dir = "prompts"
    celery_queue = "finance"
    demo_user = "analyst"
    demo_seed = "apps.finance.demo.demo_seed"
    demo_models = "apps.finance.demo.demo_models"
    attention = "apps.finance.selectors.attention"
    artifacts_resign = "apps.finance.services.credit_model_artifacts_resign"
    prompt_evaluate = "apps.finance.evaluation.prompt_evaluate"

    def ready(self) -> None:
        from apps.finance import models
        from core.registry import register_job_model

        for model in getattr(models, "JOB_MODELS", ()):
            register_job_model(model)
