"""Manufacturing models (filled by the manufacturing issue)."""

JOB_MODELS = ()
