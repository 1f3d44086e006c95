"""Settings for the industry AI suite, read from the environment.

Every value comes from an environment variable with a safe development default; a bad value stops
start-up with a :class:`config.env.ConfigError` that names the variable. See the README's
configuration table.
"""
from __future__ import annotations

import re
import secrets
from pathlib import Path

from config.embedded_redis import ensure_redis_url
from config.env import (
    ConfigError,
    database_from_url,
    env_bool,
    env_choice,
    env_float,
    env_int,
    env_list,
    env_str,
    env_url,
)

BASE_DIR = Path(__file__).resolve().parents[2]
VAR_DIR = Path(env_str("VAR_DIR", str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)

DJANGO_ENV = env_choice("DJANGO_ENV", ("development", "production", "test"), "development")
PRODUCTION = DJANGO_ENV == "production"
DEBUG = env_bool("DEBUG", False)
if PRODUCTION and DEBUG:
    raise ConfigError("DEBUG=true is not allowed when DJANGO_ENV=production")


def _secret_key() -> str:
    key = env_str("SECRET_KEY")
    if key:
        if PRODUCTION and len(key) < 50:
            raise ConfigError("SECRET_KEY must be at least 50 characters when DJANGO_ENV=production")
        return key
    if PRODUCTION:
        raise ConfigError("SECRET_KEY is required when DJANGO_ENV=production")
    path = VAR_DIR / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(64))
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = _secret_key()
# Rotation: the new key in SECRET_KEY, old ones here (comma-separated) until sessions, signed links and
# model artifacts made with them are gone or re-signed (manage.py resign_model_artifacts); docs/deploy.md.
SECRET_KEY_FALLBACKS = env_list("SECRET_KEY_FALLBACKS", [])
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

WEB_PORT = env_int("WEB_PORT", 8000, minimum=1, maximum=65535)
MODEL_SERVICE_PORT = env_int("MODEL_SERVICE_PORT", 8080, minimum=1, maximum=65535)

# The vertical apps: the one list of them. Core learns everything else about each (role, navigation,
# batch task, prompts, queue, demo) from its AppConfig through core.registry, once the apps are loaded.
SUITE_APPS = ["apps.finance", "apps.medical", "apps.manufacturing"]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "core",
    *SUITE_APPS,
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "core.middleware.SecurityHeadersMiddleware",
    "core.errors.AppErrorMiddleware",
]

ROOT_URLCONF = "config.urls"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "core.context_processors.navigation",
            ],
        },
    },
]
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

# --- database -------------------------------------------------------------------------------
DATABASE_URL = env_url(
    "DATABASE_URL", f"sqlite:///{VAR_DIR / 'db.sqlite3'}",
    schemes=("sqlite", "postgres", "postgresql", "pgsql")
)
DATABASES = {"default": database_from_url(DATABASE_URL)}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis: broker, cache, model-service response cache ---------------------------------------
REDIS_URL = env_url("REDIS_URL", None, schemes=("redis", "rediss"))
if REDIS_URL is None:
    REDIS_URL = ensure_redis_url(VAR_DIR) if env_bool("EMBEDDED_REDIS", True) else "redis://127.0.0.1:6379/0"

CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": env_str("CACHE_KEY_PREFIX", "suite"),
        "TIMEOUT": 300,
        "OPTIONS": {"socket_connect_timeout": 2, "socket_timeout": 2},
    }
}

# --- model service -----------------------------------------------------------------------------
MODEL_SERVICE_URL = env_url(
    "MODEL_SERVICE_URL", f"http://127.0.0.1:{MODEL_SERVICE_PORT}/v1", schemes=("http", "https")
).rstrip("/")
MODEL_SERVICE_API_KEY = env_str("MODEL_SERVICE_API_KEY", "")
MODEL_SERVICE_MODEL = env_str("MODEL_SERVICE_MODEL", "")  # empty: the server's default model
MODEL_SERVICE_TIMEOUT = env_float("MODEL_SERVICE_TIMEOUT", 120.0, minimum=1)
MODEL_SERVICE_CONNECT_TIMEOUT = env_float("MODEL_SERVICE_CONNECT_TIMEOUT", 5.0, minimum=0.1)
MODEL_SERVICE_RETRIES = env_int("MODEL_SERVICE_RETRIES", 2, minimum=0, maximum=10)
MODEL_SERVICE_BREAKER_THRESHOLD = env_int("MODEL_SERVICE_BREAKER_THRESHOLD", 5, minimum=1)
MODEL_SERVICE_BREAKER_COOLDOWN = env_float("MODEL_SERVICE_BREAKER_COOLDOWN", 30.0, minimum=1)
# Per-template routing (edge and centre): {"finance.field_extraction": "http://edge:8080/v1", ...}
MODEL_SERVICE_ROUTES = env_str("MODEL_SERVICE_ROUTES", "")
LLM_ENABLED = env_bool("LLM_ENABLED", True)

# Medical: the secret salt for de-identified UIDs (empty: derived from SECRET_KEY) and the
# organisation named on signed reports.
MEDICAL_DEID_SALT = env_str("MEDICAL_DEID_SALT", "")
if PRODUCTION and not MEDICAL_DEID_SALT:
    # Derived from SECRET_KEY otherwise: rotating the key would change every pseudonym and replacement UID,
    # and a returning patient's new studies would no longer match their earlier ones.
    raise ConfigError("MEDICAL_DEID_SALT is required when DJANGO_ENV=production (a stable secret "
                      "of 32+ characters behind de-identified UIDs and pseudonyms; never change it)")
MEDICAL_ORGANIZATION = env_str("MEDICAL_ORGANIZATION", "Radiology")

# Manufacturing: threads scikit-learn and OpenMP may use while a worker trains or predicts (one per
# worker process by default: several processes each using every core fight each other).
MANUFACTURING_THREADS = env_int("MANUFACTURING_THREADS", 1, minimum=1)

# Training data for the default models that `make setup` trains (the shared folder next to the repo).
FINANCE_TRAIN_CSV = env_str(
    "FINANCE_TRAIN_CSV", str(BASE_DIR.parent / "shared" / "data" / "finance" / "german_credit_train.csv")
)

# --- jobs and Celery ---------------------------------------------------------------------------
JOB_SOFT_TIME_LIMIT = env_int("JOB_SOFT_TIME_LIMIT", 300, minimum=5)
JOB_TIME_LIMIT = env_int("JOB_TIME_LIMIT", 360, minimum=10)
if JOB_TIME_LIMIT <= JOB_SOFT_TIME_LIMIT:
    raise ConfigError(f"JOB_TIME_LIMIT={JOB_TIME_LIMIT} must be above "
                      f"JOB_SOFT_TIME_LIMIT={JOB_SOFT_TIME_LIMIT}")
# A running job whose lease is older than this is considered abandoned (its worker died).
JOB_LEASE_SECONDS = env_int("JOB_LEASE_SECONDS", JOB_TIME_LIMIT + 60, minimum=1)
# A queued job untouched for this long gets its message sent again by the sweeper.
JOB_REQUEUE_AFTER = env_int("JOB_REQUEUE_AFTER", 600, minimum=1)
# A job whose worker was lost this many times fails as abandoned.
JOB_MAX_ATTEMPTS = env_int("JOB_MAX_ATTEMPTS", 5, minimum=1)
# Transient failures (model service or database away) are retried with backoff for this long after a
# job's first one; an outage shorter than this loses nothing.
JOB_RETRY_WINDOW = env_int("JOB_RETRY_WINDOW", 1800, minimum=1)
JOB_SWEEP_INTERVAL = env_float("JOB_SWEEP_INTERVAL", 60.0, minimum=0.5)
CELERY_VISIBILITY_TIMEOUT = env_int("CELERY_VISIBILITY_TIMEOUT", max(3600, JOB_TIME_LIMIT * 2), minimum=1)
if CELERY_VISIBILITY_TIMEOUT <= JOB_TIME_LIMIT:
    raise ConfigError(
        f"CELERY_VISIBILITY_TIMEOUT={CELERY_VISIBILITY_TIMEOUT} must be above JOB_TIME_LIMIT={JOB_TIME_LIMIT}"
    )
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)

# --- storage -----------------------------------------------------------------------------------
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(VAR_DIR / "media")))
MEDIA_URL = "/media/"
STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
S3_BUCKET = env_str("S3_BUCKET")
if S3_BUCKET:
    _default_storage = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": S3_BUCKET,
            "endpoint_url": env_url("S3_ENDPOINT_URL", None, schemes=("http", "https")),
            "access_key": env_str("S3_ACCESS_KEY_ID", required=True),
            "secret_key": env_str("S3_SECRET_ACCESS_KEY", required=True),
            "region_name": env_str("S3_REGION", "us-east-1"),
            "default_acl": None,
            "querystring_auth": True,
            "file_overwrite": False,
        },
    }
else:
    _default_storage = {"BACKEND": "django.core.files.storage.FileSystemStorage"}
STORAGES = {
    "default": _default_storage,
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"
        if PRODUCTION
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = not PRODUCTION  # serve app static files without collectstatic in development
UPLOAD_MAX_BYTES = env_int("UPLOAD_MAX_BYTES", 200 * 1024 * 1024, minimum=1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
DATA_UPLOAD_MAX_NUMBER_FILES = env_int("UPLOAD_MAX_FILES", 2000, minimum=1)

# --- auth, i18n, security ------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "core:dashboard"
LOGOUT_REDIRECT_URL = "login"
LOGIN_RATE_LIMIT = env_int("LOGIN_RATE_LIMIT", 10, minimum=1)  # failed attempts per IP per 15 minutes
# API requests that create work, per caller: "<n>/<s|min|hour|day>", or "off" (core/api/throttling.py).
API_SUBMIT_RATE = env_str("API_SUBMIT_RATE", "3000/min")
if API_SUBMIT_RATE.strip().lower() == "off":
    API_SUBMIT_RATE = None
elif not re.fullmatch(r"[1-9]\d*/(s|sec|second|m|min|minute|h|hour|d|day)", API_SUBMIT_RATE.strip()):
    raise ConfigError(f"API_SUBMIT_RATE={API_SUBMIT_RATE!r} is not '<number>/<s|min|hour|day>' or 'off'")

LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("zh-hans", "简体中文")]
# One catalogue per app (makemessages from the repo root files each string under its own app).
LOCALE_PATHS = [BASE_DIR / "platform" / "core" / "locale"] + [
    BASE_DIR.joinpath(*app.split("."), "locale") for app in SUITE_APPS
]
# One number format for the suite (core_tags ``num``/``pct``): Django's locale formats, zh-Hans grouped.
FORMAT_MODULE_PATH = ["core.formats"]
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = PRODUCTION
CSRF_COOKIE_SECURE = PRODUCTION
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
if PRODUCTION:
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000, minimum=0)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# --- REST --------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "core.auth.BearerTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "core.api.pagination.Pagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "core.api.errors.exception_handler",
    "DEFAULT_THROTTLE_CLASSES": ["core.api.throttling.SubmitRateThrottle"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": [
        "rest_framework.parsers.JSONParser",
        "rest_framework.parsers.MultiPartParser",
        "rest_framework.parsers.FormParser",
    ],
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Industry AI suite API",
    "DESCRIPTION": "Credit risk, radiology drafts and failure prediction. All work is asynchronous: "
    "a POST answers 202 with the new object's id and url; poll the url for status and result.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "SWAGGER_UI_DIST": "SIDECAR",  # vendored: the machines are offline
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Name each shared choice set once, so the schema is stable and `check --deploy` has no warnings.
    "ENUM_NAME_OVERRIDES": {
        "RiskLevelEnum": "apps.finance.models.RiskLevel",
        "JobStatusEnum": "core.models.JobStatus",
        "BatchStatusEnum": "core.models.Batch.Status",
        "InstanceStatusEnum": "apps.medical.models.Instance.Status",
        "ReportStatusEnum": "apps.medical.models.Report.Status",
        "AlertStatusEnum": "apps.manufacturing.models.Alert.Status",
    },
}

LOG_LEVEL = env_choice("LOG_LEVEL", ("DEBUG", "INFO", "WARNING", "ERROR"), "INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "httpx": {"level": "WARNING"},
        # pydicom's validation warnings quote element values and highdicom logs UIDs at INFO: keep
        # patient data out of the logs.
        "pydicom": {"level": "ERROR"},
        "highdicom": {"level": "WARNING"},
    },
}

# --- Celery (read by config/celery_app.py) --------------------------------------------------------
# One queue per suite app, named by its label (each AppConfig's celery_queue; ``manage.py check`` verifies).
# The language-model pool: jobs handed on after their CPU part (core.jobs.AwaitLLM) run on queue ``llm``,
# served by a worker with a thread pool of LLM_WIDTH threads, so that many model calls are in flight
# together whatever the number of CPU worker processes. Default: the model service's batch size.
CELERY_LLM_QUEUE = "llm"
LLM_WIDTH = env_int("LLM_WIDTH", 32, minimum=1, maximum=1024)
CELERY_QUEUES_ALL = ("default", *(app.rsplit(".", 1)[-1] for app in SUITE_APPS), "maintenance",
                     CELERY_LLM_QUEUE)
CELERY_BROKER_URL = REDIS_URL
CELERY_RESULT_BACKEND = None  # the database row is the source of truth
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_EVENT_SERIALIZER = "json"
CELERY_TIMEZONE = TIME_ZONE
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_CREATE_MISSING_QUEUES = True
CELERY_TASK_ROUTES = (
    {"core.jobs_sweep": {"queue": "maintenance"}, "core.job_continue": {"queue": CELERY_LLM_QUEUE},
     "core.*": {"queue": "default"}},
    "core.registry:task_route",  # "<app label>.*" to that suite app's celery_queue
)
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = JOB_SOFT_TIME_LIMIT
CELERY_TASK_TIME_LIMIT = JOB_TIME_LIMIT
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": CELERY_VISIBILITY_TIMEOUT,
    "socket_connect_timeout": 5,
    "socket_timeout": 10,
}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_CONNECTION_MAX_RETRIES = None
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = True
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BEAT_SCHEDULE = {
    "jobs-sweep": {"task": "core.jobs_sweep", "schedule": JOB_SWEEP_INTERVAL},
    # raw (identified) medical uploads left behind when their deletion failed
    "medical-raw-uploads-sweep": {"task": "medical.raw_uploads_sweep", "schedule": 3600},
}
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
