"""Finance writes, by sub-domain (``<entity>_<action>(*, ...)``):

- :mod:`.assessments` create (validate and queue), the job handler ``assessment_process``, review;
- :mod:`.llm` the language model's calls (field extraction, risk judgment) through core's LLM step;
- :mod:`.judgment` the judgment measured on held-out labelled applications, stored with the scorecard;
- :mod:`.batches` CSV uploads: ``batch_create`` and ``batch_ingest`` with its row reader;
- :mod:`.credit_models` scorecard versions: signed artifacts, load, train, store, activate, training
  jobs, re-signing after a key rotation;
- :mod:`.reads` the audit of reads (views and exports) that the pages and the API share.

Every write action audits itself here, once (``request=`` records the client's IP). Errors a user can
cause are :mod:`apps.finance.errors` classes (core's ``AppError``). Callers use
``from apps.finance import services`` and the names below.
"""
from apps.finance.errors import FilterError, FinanceConflict, FinanceInputError
from apps.finance.services.assessments import (
    NOTES,
    REPORT_MAX_CHARS,
    applicant_clean,
    applicant_complete,
    assessment_create,
    assessment_process,
    assessment_review,
)
from apps.finance.services.batches import batch_create, batch_header_check, batch_ingest, batch_read
from apps.finance.services.credit_models import (
    SCORECARD_KIND,
    TRAINING_SEED,
    credit_model_activate,
    credit_model_active_or_error,
    credit_model_artifacts_resign,
    credit_model_store,
    credit_model_train,
    credit_model_train_compute,
    model_training_create,
    model_training_process,
    scorecard_artifact_pack,
    scorecard_artifact_unpack,
    scorecard_artifact_upgrade,
    scorecard_job_load,
    scorecard_load,
    training_frame_read,
)
from apps.finance.services.judgment import judgment_calibrate
from apps.finance.services.llm import (
    EXTRACTION_MAX_TOKENS,
    EXTRACTION_TEMPLATE,
    JUDGMENT_MAX_TOKENS,
    JUDGMENT_TEMPLATE,
    fields_extract,
    risk_judge,
)
from core.audit import read_audit

__all__ = [
    "EXTRACTION_MAX_TOKENS", "EXTRACTION_TEMPLATE", "JUDGMENT_MAX_TOKENS", "JUDGMENT_TEMPLATE", "NOTES",
    "REPORT_MAX_CHARS", "SCORECARD_KIND", "TRAINING_SEED",
    "FilterError", "FinanceConflict", "FinanceInputError",
    "applicant_clean", "applicant_complete", "assessment_create", "assessment_process", "assessment_review",
    "batch_create", "batch_header_check", "batch_ingest", "batch_read",
    "credit_model_activate", "credit_model_active_or_error", "credit_model_artifacts_resign",
    "credit_model_store", "credit_model_train", "credit_model_train_compute",
    "fields_extract", "risk_judge", "judgment_calibrate",
    "model_training_create", "model_training_process",
    "read_audit",
    "scorecard_artifact_pack", "scorecard_artifact_unpack", "scorecard_artifact_upgrade",
    "scorecard_job_load", "scorecard_load", "training_frame_read",
]
