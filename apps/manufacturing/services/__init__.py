"""Manufacturing writes, by sub-domain (``<entity>_<action>(*, ...)``); import them from here.

- :mod:`.readings` sensors, machines, the stored chunks of readings and a machine's series;
- :mod:`.uploads` readings arriving: sensor files (batches) and readings pushed over the API;
- :mod:`.predictions` the prediction job: create, score (the job handler), result, side effects;
- :mod:`.llm` the language model's explanation (core's LLM step);
- :mod:`.alerts` alerts raised, acknowledged and resolved, and a machine's thresholds;
- :mod:`.failure_models` the model registry: signed artifacts, load, activate, re-sign;
- :mod:`.training` reading run-to-failure history and the training job;
- :mod:`.reads` the audit of reads (views and exports), shared by the pages and the API;
- :mod:`.common` what they share (language, ingestion options, thread limit, issue lines).

The decision rules (combination, alert, review) are in :mod:`apps.manufacturing.decisions`; the
user-facing exceptions in :mod:`apps.manufacturing.errors`. Every write a user starts records its
audit event in the service that does it (pass ``request`` for the IP address), once; reads are
recorded by the views with :func:`read_audit`, once per request.
"""
from __future__ import annotations

from apps.manufacturing.errors import AlertAlreadyResolved, ReadingsRejected
from core.audit import read_audit

from .alerts import alert_acknowledge, alert_raise, alert_resolve, machine_thresholds_update
from .common import (
    ingest_options,
    issue_text,
    issues_for,
    manufacturing_threads,
    prompt_language,
    thread_limit,
)
from .failure_models import (
    ARTIFACT_KIND,
    failure_model_activate,
    failure_model_active,
    failure_model_artifacts_resign,
    failure_model_cache,
    failure_model_load,
    failure_model_pack,
    failure_model_register,
    failure_model_unpack,
)
from .llm import LLM_MAX_TOKENS, PROMPT_NAME, llm_explain
from .predictions import prediction_apply, prediction_create, prediction_process
from .readings import (
    COMPACT_AFTER_CHUNKS,
    check_axis,
    chunk_store,
    machine_get_or_create,
    machine_series,
    machine_series_compact,
    machine_series_compact_if_long,
    sensors_ensure,
)
from .training import train_from_frame, training_create, training_frame, training_process
from .uploads import batch_ingest, readings_push, upload_create

__all__ = [
    "ARTIFACT_KIND",
    "COMPACT_AFTER_CHUNKS",
    "LLM_MAX_TOKENS",
    "PROMPT_NAME",
    "AlertAlreadyResolved",
    "ReadingsRejected",
    "alert_acknowledge",
    "alert_raise",
    "alert_resolve",
    "batch_ingest",
    "check_axis",
    "chunk_store",
    "failure_model_activate",
    "failure_model_active",
    "failure_model_artifacts_resign",
    "failure_model_cache",
    "failure_model_load",
    "failure_model_pack",
    "failure_model_register",
    "failure_model_unpack",
    "ingest_options",
    "issue_text",
    "issues_for",
    "llm_explain",
    "machine_get_or_create",
    "machine_series",
    "machine_series_compact",
    "machine_series_compact_if_long",
    "machine_thresholds_update",
    "manufacturing_threads",
    "prediction_apply",
    "prediction_create",
    "prediction_process",
    "prompt_language",
    "read_audit",
    "readings_push",
    "sensors_ensure",
    "thread_limit",
    "train_from_frame",
    "training_create",
    "training_frame",
    "training_process",
    "upload_create",
]
