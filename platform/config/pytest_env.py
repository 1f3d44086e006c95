"""Environment for the test suite, loaded as a pytest plugin (``-p config.pytest_env`` in pyproject).

It must run before pytest-django reads the settings, which happens before any conftest.py is
imported: the test process and every process the tests start (workers, beat, the model service)
then share one Redis database of their own and one var/ folder.
"""
import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ["DJANGO_ENV"] = "test"
os.environ.setdefault("VAR_DIR", str(ROOT / "var" / "test"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("CACHE_KEY_PREFIX", "suite-test")
os.environ.setdefault("JOB_SWEEP_INTERVAL", "2")
os.environ.setdefault("MODEL_SERVICE_RETRIES", "1")
os.environ.setdefault("MODEL_SERVICE_TIMEOUT", "120")
if "REDIS_URL" not in os.environ:
    from config.embedded_redis import redis_answers, start_embedded_redis

    if not redis_answers():
        start_embedded_redis(Path(os.environ["VAR_DIR"]))
    os.environ["REDIS_URL"] = "redis://127.0.0.1:6379/9"  # a database of its own: no mixing with `make run`
