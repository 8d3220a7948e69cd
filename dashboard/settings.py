"""Runwatch settings: one file, driven by environment variables.

The defaults give the embedded setup (SQLite under var/, in-memory channel layer);
DATABASE_URL and REDIS_URL switch to PostgreSQL and Redis for production.
"""

from __future__ import annotations

import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("RUNWATCH_VAR_DIR", BASE_DIR / "var"))
VAR_DIR.mkdir(parents=True, exist_ok=True)


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    if value.lower() in {"1", "true", "yes", "on"}:
        return True
    if value.lower() in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (true/false), got {value!r}")


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise ImproperlyConfigured(
            f"{name} must be an integer, got {value!r}"
        ) from None


def env_list(name: str, default: str = "") -> list[str]:
    return [
        item.strip()
        for item in os.environ.get(name, default).split(",")
        if item.strip()
    ]


DEBUG = env_bool("DEBUG", False)
EMBEDDED = not os.environ.get(
    "DATABASE_URL"
)  # SQLite under var/: a single-machine install


def _embedded_secret_key() -> str:
    """A random key kept in var/, so the embedded install needs no configuration."""
    key_file = VAR_DIR / "secret_key"
    if not key_file.exists():
        import secrets

        key_file.write_text(secrets.token_urlsafe(50))
        key_file.chmod(0o600)
    return key_file.read_text().strip()


SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if not (DEBUG or EMBEDDED):
        raise ImproperlyConfigured(
            "SECRET_KEY is required when DEBUG is off and DATABASE_URL is set"
        )
    SECRET_KEY = _embedded_secret_key()

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_filters",
    "django_htmx",
    "channels",
    "runs",
    "realtime",
    "dashboard",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "dashboard.urls"
ASGI_APPLICATION = "dashboard.asgi.application"
WSGI_APPLICATION = None

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

SQLITE_PATH = VAR_DIR / "runwatch.sqlite3"
DATABASE_URL = os.environ.get("DATABASE_URL", f"sqlite:///{SQLITE_PATH}")
# Persistent connections (seconds; 0 = closed after each request). Only for processes
# with long-lived threads (workers, commands): under daphne every request runs in a new
# thread, so web servers use the pool below instead.
DB_CONN_MAX_AGE = env_int("DB_CONN_MAX_AGE", 0)
DATABASES = {
    "default": dj_database_url.parse(DATABASE_URL, conn_max_age=DB_CONN_MAX_AGE)
}
IS_POSTGRES = DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"
# A process-wide connection pool (psycopg_pool) for servers: under ASGI every request
# runs in a fresh thread, which would otherwise open a new connection each time.
DB_POOL_MAX_SIZE = env_int("DB_POOL_MAX_SIZE", 0)
if IS_POSTGRES and DB_POOL_MAX_SIZE > 0:
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": 1,
        "max_size": DB_POOL_MAX_SIZE,
        "timeout": 10,
    }
if IS_POSTGRES:
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    DATABASES["default"].setdefault("TEST", {})["NAME"] = (
        os.environ.get("RUNWATCH_TEST_DB_NAME") or None
    )
else:
    # WAL + a busy timeout let the server, the worker and scripts share one SQLite file.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    # Live-server tests (browser, SDK) need a file, not an in-memory database.
    test_name = os.environ.get("RUNWATCH_TEST_DB_NAME") or "test-runwatch"
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / f"{test_name}.sqlite3")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = os.environ.get("REDIS_URL", "")
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [REDIS_URL], "capacity": 1000, "expiry": 10},
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/accounts/login/"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "staticfiles"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {
        # Unhandled errors of views and consumers, with their tracebacks.
        "django.request": {"handlers": ["console"], "level": "ERROR"},
        "runwatch": {
            "handlers": ["console"],
            "level": os.environ.get("RUNWATCH_LOG_LEVEL", "INFO"),
        },
    },
}

# --- Runwatch ---------------------------------------------------------------
# Extra task modules to import besides the tasks.py of installed apps.
RUNWATCH_TASK_MODULES = env_list("RUNWATCH_TASK_MODULES")
RUNWATCH_METADATA_MAX_BYTES = env_int("RUNWATCH_METADATA_MAX_BYTES", 262_144)
RUNWATCH_PAYLOAD_MAX_BYTES = env_int("RUNWATCH_PAYLOAD_MAX_BYTES", 3_145_728)
RUNWATCH_BATCH_MAX_ITEMS = env_int("RUNWATCH_BATCH_MAX_ITEMS", 1000)
# A streamed batch (`POST /api/v3/batches`) whose items are not all sent by then is ABORTED.
RUNWATCH_BATCH_SEAL_TIMEOUT_SECONDS = env_int(
    "RUNWATCH_BATCH_SEAL_TIMEOUT_SECONDS", 1800
)
# Request bodies (the Test page's form) must fit the largest payload and metadata, even
# pretty-printed (about twice the compact size), so that the size rules can answer them.
DATA_UPLOAD_MAX_MEMORY_SIZE = (
    2 * (RUNWATCH_PAYLOAD_MAX_BYTES + RUNWATCH_METADATA_MAX_BYTES) + 1_048_576
)
RUNWATCH_API_RATE_LIMIT = env_int("RUNWATCH_API_RATE_LIMIT", 1500)
RUNWATCH_API_RATE_REFILL_PER_SECOND = env_int(
    "RUNWATCH_API_RATE_REFILL_PER_SECOND", 100
)
# API request limits (413 beyond) and answers kept for x-trigger-request-idempotency-key.
RUNWATCH_API_BATCH_BODY_MAX_BYTES = env_int(
    "RUNWATCH_API_BATCH_BODY_MAX_BYTES", 5_000_000
)
RUNWATCH_API_BATCH_STREAM_MAX_BYTES = env_int(
    "RUNWATCH_API_BATCH_STREAM_MAX_BYTES", 134_217_728
)
RUNWATCH_PACKET_MAX_BYTES = env_int("RUNWATCH_PACKET_MAX_BYTES", 10_485_760)
RUNWATCH_PACKET_URL_TTL_SECONDS = env_int("RUNWATCH_PACKET_URL_TTL_SECONDS", 3600)
RUNWATCH_REQUEST_IDEMPOTENCY_TTL_SECONDS = env_int(
    "RUNWATCH_REQUEST_IDEMPOTENCY_TTL_SECONDS", 3600
)
RUNWATCH_HEARTBEAT_TIMEOUT_SECONDS = env_int("RUNWATCH_HEARTBEAT_TIMEOUT_SECONDS", 30)
# Metadata-change events only tell live feeds to re-read a run; drop them after this.
RUNWATCH_METADATA_EVENT_RETENTION_SECONDS = env_int(
    "RUNWATCH_METADATA_EVENT_RETENTION_SECONDS", 3600
)
# Live signals (batch/bulk/deployment changes) only wake the live feed; same idea.
RUNWATCH_LIVE_SIGNAL_RETENTION_SECONDS = env_int(
    "RUNWATCH_LIVE_SIGNAL_RETENTION_SECONDS", 3600
)
# Log lines kept per attempt; a task logging in a tight loop must not fill the disk.
RUNWATCH_MAX_LOG_LINES_PER_ATTEMPT = env_int("RUNWATCH_MAX_LOG_LINES_PER_ATTEMPT", 5000)
RUNWATCH_OUTPUT_MAX_BYTES = env_int("RUNWATCH_OUTPUT_MAX_BYTES", 10_485_760)
RUNWATCH_PUBLIC_URL = os.environ.get("RUNWATCH_PUBLIC_URL", "")
