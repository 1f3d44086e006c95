"""Finance models (filled by the finance issue)."""

JOB_MODELS = ()
