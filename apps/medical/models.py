"""Medical models (filled by the medical issue)."""

JOB_MODELS = ()
