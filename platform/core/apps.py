from django.apps import AppConfig
from django.db.models.signals import post_migrate


class CoreConfig(AppConfig):
    name = "core"
    verbose_name = "Platform core"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from core import services
        from core.models import DiagnosticJob
        from core.registry import register_job_model

        register_job_model(DiagnosticJob)
        post_migrate.connect(services.platform_bootstrap, sender=self)
