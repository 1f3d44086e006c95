"""Platform writes, by sub-domain: ``jobs`` (enqueue, execute under a lease, progress), ``batches``
(uploads become items: one ingest routine for every app), ``sweep`` (lost messages, dead workers),
``tokens`` (API tokens), ``bootstrap`` (roles and prompt templates after migrate), ``prompts`` (measured
prompt quality, activation) and ``diagnostic`` (the platform self-test job). Callers use
``from core import services`` and the names below."""
from core.services.batches import (
    BatchItems,
    BatchRejected,
    batch_claim,
    batch_create,
    batch_enqueue,
    batch_fail,
    batch_ingest,
    batch_items_created,
    safe_name,
)
from core.services.bootstrap import platform_bootstrap, prompt_templates_seed
from core.services.diagnostic import diagnostic_job_create, diagnostic_process
from core.services.jobs import (
    batch_close_if_finished,
    job_enqueue,
    job_execute,
    job_progress,
    job_run_inline,
    jobs_enqueue,
)
from core.services.prompts import (
    NoLabelledSet,
    prompt_evaluation_run,
    prompt_template_activate,
    prompt_version_compare,
)
from core.services.sweep import jobs_sweep
from core.services.tokens import TOKEN_PREFIX, api_token_create, api_token_revoke, token_hash

__all__ = [
    "TOKEN_PREFIX", "BatchItems", "BatchRejected", "NoLabelledSet", "api_token_create", "api_token_revoke",
    "batch_claim",
    "batch_close_if_finished", "batch_create", "batch_enqueue", "batch_fail", "batch_ingest",
    "batch_items_created", "diagnostic_job_create", "diagnostic_process", "job_enqueue", "job_execute",
    "job_progress", "job_run_inline", "jobs_enqueue", "jobs_sweep", "platform_bootstrap",
    "prompt_evaluation_run", "prompt_template_activate", "prompt_templates_seed", "prompt_version_compare",
    "safe_name", "token_hash",
]
