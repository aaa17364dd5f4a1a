"""Settings shared by every environment, read from the environment.

SQLite, a file cache and a filesystem Celery broker by default (the sandbox needs no servers);
PostgreSQL when DATABASE_URL is set; Redis for cache, rate-limit counters and the Celery broker
when REDIS_URL is set.
"""

import os
from datetime import timedelta
from pathlib import Path

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = Path(os.environ.get("CARREL_VAR_DIR", BASE_DIR / "var"))
VAR_DIR.mkdir(parents=True, exist_ok=True)


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "django-insecure-sandbox-only-key-never-use-this-in-production")
DEBUG = env_bool("DJANGO_DEBUG", True)
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1],testserver")
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS")

CARREL_VERSION = "0.1.0"
CARREL_API_VERSION = "v1"
CARREL_SANDBOX = env_bool("CARREL_SANDBOX", False)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.sites",
    "rest_framework",
    "drf_spectacular",
    # Swagger UI's files as static files of our own: the API docs load nothing from a CDN.
    "drf_spectacular_sidecar",
    # Before allauth: the console's templates restyle allauth's pages (allauth/layouts, allauth/elements).
    "console",
    "allauth",
    "allauth.account",
    "allauth.socialaccount",
    "allauth.socialaccount.providers.github",
    "allauth.socialaccount.providers.google",
    "allauth.socialaccount.providers.orcid",
    "allauth.socialaccount.providers.openid_connect",
    "platform_site",
    "accounts",
    "audit",
    "projects",
    "workspaces",
    "budgets",
    "idle",
    "invitations",
    "templates.apps.TemplatesConfig",
]

MIDDLEWARE = [
    "platform_site.middleware.RequestContextMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "platform_site.api.ratelimit.RateLimitMiddleware",
]

ROOT_URLCONF = "platform_site.urls"
WSGI_APPLICATION = "platform_site.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "platform_site" / "html"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "console.context.navigation",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.config(
        env="DATABASE_URL",
        default=f"sqlite:///{VAR_DIR / 'carrel.sqlite3'}",
        conn_max_age=int(os.environ.get("DATABASE_CONN_MAX_AGE", "60")),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # The sandbox's web server and worker write at once. A transaction that reads and then writes fails
    # at once with "database is locked" unless it takes the write lock when it begins; then it waits.
    DATABASES["default"].setdefault("OPTIONS", {}).update({"timeout": 60, "transaction_mode": "IMMEDIATE"})
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = os.environ.get("REDIS_URL", "")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": os.environ.get("CARREL_CACHE_PREFIX", "carrel"),
        }
    }
else:
    # A file cache is shared by the sandbox's web, worker and beat processes.
    CACHES = {
        "default": {
            "BACKEND": "platform_site.local_backends.LockedFileBasedCache",
            "LOCATION": str(VAR_DIR / "cache"),
        }
    }

AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    # Refuses every password check for an account over CARREL_FAILED_AUTH_LIMIT (kept in the database).
    "accounts.authentication.FailedLoginLockoutBackend",
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# The ledger's covering index has non-key columns, which PostgreSQL uses and SQLite (tests, sandbox) ignores.
SILENCED_SYSTEM_CHECKS = ["models.W040"]

STATIC_URL = "static/"
STATIC_ROOT = Path(os.environ.get("DJANGO_STATIC_ROOT", VAR_DIR / "static"))
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
SITE_ID = 1

# --- Accounts (django-allauth) -------------------------------------------------------------
LOGIN_REDIRECT_URL = "/"
ACCOUNT_LOGOUT_REDIRECT_URL = "/"
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_UNIQUE_EMAIL = True
ACCOUNT_USER_MODEL_USERNAME_FIELD = "username"
ACCOUNT_EMAIL_VERIFICATION = os.environ.get("ACCOUNT_EMAIL_VERIFICATION", "mandatory")
ACCOUNT_LOGIN_ON_EMAIL_CONFIRMATION = True
ACCOUNT_DEFAULT_HTTP_PROTOCOL = os.environ.get("CARREL_HTTP_PROTOCOL", "http")
ACCOUNT_FORMS = {"login": "invitations.forms.PrefilledLoginForm"}
ACCOUNT_ADAPTER = "invitations.adapter.AccountAdapter"
SOCIALACCOUNT_ADAPTER = "accounts.adapter.SocialAccountAdapter"
SOCIALACCOUNT_EMAIL_AUTHENTICATION = False
# Failed password logins (the login page and POST /api/v1/tokens/purge share these counters): per client
# address and per account; a locked account is refused even with the right password.
ACCOUNT_RATE_LIMITS = {"login_failed": "10/m/ip,5/5m/key"}
# allauth takes the client address from this header, which platform_site.middleware always sets to
# Carrel's own answer (see CARREL_TRUSTED_PROXY_COUNT); without it allauth would count every request
# behind the TLS proxy as coming from the proxy.
ALLAUTH_TRUSTED_CLIENT_IP_HEADER = "X-Carrel-Client-IP"
SOCIALACCOUNT_STORE_TOKENS = False


def _oauth_providers() -> dict:
    """OAuth/OIDC providers are switched on by configuration: a provider with a client id is on."""
    providers: dict = {}
    # Each variable is named in full, so that the README's settings table can be checked against this file.
    for provider, client_id, secret, scope in (
        (
            "github",
            os.environ.get("CARREL_OAUTH_GITHUB_CLIENT_ID"),
            os.environ.get("CARREL_OAUTH_GITHUB_SECRET", ""),
            ["read:user", "user:email"],
        ),
        (
            "google",
            os.environ.get("CARREL_OAUTH_GOOGLE_CLIENT_ID"),
            os.environ.get("CARREL_OAUTH_GOOGLE_SECRET", ""),
            ["profile", "email"],
        ),
        (
            "orcid",
            os.environ.get("CARREL_OAUTH_ORCID_CLIENT_ID"),
            os.environ.get("CARREL_OAUTH_ORCID_SECRET", ""),
            None,
        ),
    ):
        if client_id:
            providers[provider] = {"APPS": [{"client_id": client_id, "secret": secret}]}
            if scope:
                providers[provider]["SCOPE"] = scope
    oidc_client_id = os.environ.get("CARREL_OIDC_CLIENT_ID")
    if oidc_client_id:
        providers["openid_connect"] = {
            "APPS": [
                {
                    "provider_id": os.environ.get("CARREL_OIDC_PROVIDER_ID", "cilogon"),
                    "name": os.environ.get("CARREL_OIDC_NAME", "CILogon"),
                    "client_id": oidc_client_id,
                    "secret": os.environ.get("CARREL_OIDC_SECRET", ""),
                    "settings": {"server_url": os.environ.get("CARREL_OIDC_SERVER_URL", "https://cilogon.org")},
                }
            ]
        }
    return providers


SOCIALACCOUNT_PROVIDERS = _oauth_providers()

# --- E-mail ---------------------------------------------------------------------------------
EMAIL_BACKEND = os.environ.get("DJANGO_EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = os.environ.get("EMAIL_HOST", "localhost")
EMAIL_PORT = int(os.environ.get("EMAIL_PORT", "25"))
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_FILE_PATH = os.environ.get("EMAIL_FILE_PATH", str(VAR_DIR / "mail"))
# Where people reach the web console; links in e-mails start with it.
CARREL_PUBLIC_URL = os.environ.get("CARREL_PUBLIC_URL", "http://127.0.0.1:8000").rstrip("/")
CARREL_INVITATION_TTL_DAYS = int(os.environ.get("CARREL_INVITATION_TTL_DAYS", "7"))
# Off: the accepting account must own the invited address as a verified e-mail.
CARREL_INVITATIONS_ALLOW_ANY_ACCOUNT = env_bool("CARREL_INVITATIONS_ALLOW_ANY_ACCOUNT", False)
CARREL_INVITATION_SEND_RETRIES = 5
# Daily invitation limits (rolling 24 hours; resends count), and the largest bulk request.
CARREL_INVITATIONS_PER_INVITER_PER_DAY = int(os.environ.get("CARREL_INVITATIONS_PER_INVITER_PER_DAY", "50"))
CARREL_INVITATIONS_PER_ORGANIZATION_PER_DAY = int(os.environ.get("CARREL_INVITATIONS_PER_ORGANIZATION_PER_DAY", "200"))
CARREL_INVITATIONS_BULK_MAX = int(os.environ.get("CARREL_INVITATIONS_BULK_MAX", "100"))
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "Carrel <carrel@localhost>")

# --- REST API ---------------------------------------------------------------------------------
# The largest request body (the non-file part of a form): API bodies are small JSON objects. Larger ones
# answer 413 REQUEST_TOO_LARGE under /api/.
DATA_UPLOAD_MAX_MEMORY_SIZE = 1024 * 1024
# CSRF failures of plain Django views under /api/ answer with the error envelope too.
CSRF_FAILURE_VIEW = "platform_site.api.errors.csrf_failure"
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.BearerTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": [
        "rest_framework.permissions.IsAuthenticated",
        "accounts.authentication.TokenScopePermission",
    ],
    # Bodies are JSON objects (bounded size and nesting).
    # JSON objects only: form encodings turn an empty value into "not sent", which is how a form-encoded
    # purge with an empty password fell back to purging the caller's own tokens.
    "DEFAULT_PARSER_CLASSES": ["platform_site.api.parsers.JSONObjectParser"],
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
    "DEFAULT_RENDERER_CLASSES": [
        "platform_site.api.renderers.ExactJSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
    "DEFAULT_PAGINATION_CLASS": "platform_site.api.pagination.HeaderPagination",
    "PAGE_SIZE": 100,
    "EXCEPTION_HANDLER": "platform_site.api.errors.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Carrel API",
    "DESCRIPTION": (
        "Research cloud workstations on EC2: organizations, projects, templates, workspaces and invitations.\n\n"
        "Authenticate with `Authorization: Bearer <token>` (create one at `POST /api/v1/tokens`) or a "
        "browser session with CSRF. Every error has the envelope `ErrorEnvelope`; every response "
        "carries `X-RateLimit-Limit`, `X-RateLimit-Remaining` and `X-RateLimit-Reset`."
    ),
    "VERSION": CARREL_VERSION,
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI (/api/v1/docs/) from drf-spectacular-sidecar's static files, not a CDN; no online validator badge.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SWAGGER_UI_SETTINGS": {"deepLinking": True, "validatorUrl": None},
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "COMPONENT_SPLIT_REQUEST": True,
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "platform_site.api.schema.add_envelope_and_rate_limit_headers",
    ],
    "ENUM_NAME_OVERRIDES": {
        "OrgRoleEnum": "accounts.models.OrgRole",
        "ProjectRoleEnum": "projects.models.ProjectRole",
    },
}

# Requests per window, per bearer token, per logged-in user, and per client IP for anonymous calls.
CARREL_RATE_LIMITS = {
    "token": os.environ.get("CARREL_RATE_LIMIT_TOKEN", "3600/hour"),
    "user": os.environ.get("CARREL_RATE_LIMIT_USER", "3600/hour"),
    "ip": os.environ.get("CARREL_RATE_LIMIT_IP", "600/hour"),
}
# Failed authentications (bad, expired or revoked tokens; wrong passwords) tolerated per client address
# and per credential (a token, an account's e-mail) in one window. Counted in the database.
CARREL_FAILED_AUTH_LIMIT = os.environ.get("CARREL_FAILED_AUTH_LIMIT", "20/15min")
# How many proxies in front of the app append to X-Forwarded-For (0: trust REMOTE_ADDR only). The client
# address is the Nth entry from the right, the one the outermost trusted proxy appended; REMOTE_ADDR when
# that entry is missing or not an IP address. Set it only when every request reaches the app through them.
CARREL_TRUSTED_PROXY_COUNT = int(os.environ.get("CARREL_TRUSTED_PROXY_COUNT", "0"))
# One line per request on the `carrel.access` logger, with secrets in URLs redacted (production: gunicorn
# runs without its own access log, which would print invitation and confirmation links whole).
CARREL_ACCESS_LOG = env_bool("CARREL_ACCESS_LOG", False)
CARREL_TOKEN_PREFIX = "carrel_"

# --- Cloud ------------------------------------------------------------------------------------
# botocore standard-mode attempts per call (throttling and 5xx are retried with backoff).
CARREL_CLOUD_MAX_ATTEMPTS = int(os.environ.get("CARREL_CLOUD_MAX_ATTEMPTS", "5"))
# Dotted paths of functions called with every new EC2 client, which may register botocore event handlers
# on it (`client.meta.events`). None in production; the test and bench settings add a call counter and a
# fault injector (tests/cloud_hooks.py).
CARREL_CLOUD_CLIENT_HOOKS: list[str] = []
# Seconds between two ticks of the cloud poller (workspaces/services/poller.py) of one cloud account and
# region: each tick describes every instance changing state there (launch, stop, start, terminate) in one
# DescribeInstances call; no worker sleeps waiting.
CARREL_LAUNCH_POLL_SECONDS = float(os.environ.get("CARREL_LAUNCH_POLL_SECONDS", "3"))
# How often beat schedules a tick for every account and region with a workspace waiting, should a
# scheduled tick have been lost with its worker.
CARREL_POLL_SWEEP_SECONDS = int(os.environ.get("CARREL_POLL_SWEEP_SECONDS", "15"))
# A launch that is not running this long after it was requested ends in `error` (LAUNCH_TIMEOUT).
CARREL_LAUNCH_TIMEOUT_SECONDS = int(os.environ.get("CARREL_LAUNCH_TIMEOUT_SECONDS", "900"))
# A launch whose lease ran out (its worker died: no heartbeat, no retry scheduled) is resumed by the
# launch sweep, which runs every CARREL_LAUNCH_SWEEP_SECONDS: together well under two minutes.
CARREL_LAUNCH_LEASE_SECONDS = int(os.environ.get("CARREL_LAUNCH_LEASE_SECONDS", "45"))
CARREL_LAUNCH_SWEEP_SECONDS = int(os.environ.get("CARREL_LAUNCH_SWEEP_SECONDS", "30"))
# A launch still queued after this long lost its message (a broker restart): the sweep enqueues it again.
CARREL_LAUNCH_QUEUED_STALE_SECONDS = int(os.environ.get("CARREL_LAUNCH_QUEUED_STALE_SECONDS", "600"))
# A workspace stuck in stopping/starting/hibernating/resuming/resizing this long takes the provider's state.
CARREL_TRANSITION_STUCK_SECONDS = int(os.environ.get("CARREL_TRANSITION_STUCK_SECONDS", "900"))
CARREL_DEFAULT_TTL_EXTENSION_HOURS = 4
# The longest TTL one extension may set (from now), unless the template's `max_ttl_hours` is lower.
CARREL_MAX_TTL_HOURS = int(os.environ.get("CARREL_MAX_TTL_HOURS", "168"))
# A launch or start without a TTL reserves this many hours of its cost against the project's allocation.
CARREL_BUDGET_RESERVATION_HOURS = float(os.environ.get("CARREL_BUDGET_RESERVATION_HOURS", "8"))

# --- Celery ---------------------------------------------------------------------------------
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL") or REDIS_URL or "filesystem://localhost//"
if CELERY_BROKER_URL.startswith("filesystem://"):
    CELERY_BROKER_TRANSPORT = "platform_site.local_backends:AtomicFilesystemTransport"
    _broker_dir = VAR_DIR / "broker"
    for _folder in ("queue", "processed", "control"):
        (_broker_dir / _folder).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
    }
CELERY_RESULT_BACKEND = os.environ.get("CELERY_RESULT_BACKEND") or (REDIS_URL or None)
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULE = {
    "worker-heartbeat": {
        "task": "platform_site.tasks.record_worker_heartbeat",
        "schedule": timedelta(seconds=30),
    },
    "stop-expired-workspaces": {
        "task": "workspaces.tasks.stop_expired_workspaces",
        "schedule": timedelta(minutes=1),
    },
    "expire-invitations-and-memberships": {
        "task": "invitations.tasks.expire_invitations_and_memberships",
        "schedule": timedelta(minutes=5),
    },
    "reconcile-workspaces": {
        "task": "workspaces.tasks.reconcile_workspaces",
        "schedule": timedelta(minutes=2),
    },
    "resume-stalled-launches": {
        "task": "workspaces.tasks.resume_stalled_launches",
        "schedule": timedelta(seconds=CARREL_LAUNCH_SWEEP_SECONDS),
    },
    # The cloud poller's safety net: a tick for every account and region with a workspace waiting for the
    # cloud whose scheduled tick was lost (ticks are otherwise scheduled by the waits themselves).
    "poll-cloud-accounts": {
        "task": "workspaces.tasks.poll_cloud_accounts",
        "schedule": timedelta(seconds=CARREL_POLL_SWEEP_SECONDS),
    },
    # Money (budgets/tasks.py): close the ledger at each organization's midnight (a run that finds nothing to
    # close writes nothing), apply the allocations' thresholds, send the daily digests.
    "close-ledger-days": {
        "task": "budgets.tasks.close_ledger_days",
        "schedule": timedelta(minutes=15),
    },
    "apply-budget-thresholds": {
        "task": "budgets.tasks.apply_budget_thresholds",
        "schedule": timedelta(minutes=5),
    },
    "send-cost-digests": {
        "task": "budgets.tasks.send_cost_digests",
        "schedule": timedelta(hours=1),
    },
    # Fold the changes appended to the kept sums of open intervals (budgets.open_sums).
    "compact-open-spend-sums": {
        "task": "budgets.tasks.compact_open_spend_sums",
        "schedule": timedelta(minutes=2),
    },
    # Fold the changes appended to the kept counts of projects' workspaces and members (projects.tallies).
    "compact-project-tallies": {
        "task": "projects.tasks.compact_project_tallies",
        "schedule": timedelta(minutes=2),
    },
    # Idle detection (idle/tasks.py): judge every running workspace each minute (warn, then hibernate or stop);
    # fetch CloudWatch for those whose agent is silent every 5 minutes (EC2 basic monitoring's period).
    "sweep-idle-workspaces": {
        "task": "idle.tasks.sweep_idle_workspaces",
        "schedule": timedelta(minutes=1),
    },
    "fetch-cloudwatch": {
        "task": "idle.tasks.fetch_cloudwatch",
        "schedule": timedelta(minutes=5),
    },
}
CARREL_WORKER_HEARTBEAT_MAX_AGE = 120

# --- Logging ---------------------------------------------------------------------------------
# One line per request on `carrel.access` (CARREL_ACCESS_LOG): request id, method, path, status, duration.
# `django.request` keeps only the tracebacks of uncaught exceptions (a 4xx is the access line's alone), and
# every handler and formatter redacts secrets (tokens, OAuth codes, invitation and confirmation links).
# CARREL_LOG_FORMAT=json writes one JSON object per line (platform_site/logging.py), for a log collector.
CARREL_LOG_FORMAT = os.environ.get("CARREL_LOG_FORMAT", "plain").strip().lower() or "plain"
if CARREL_LOG_FORMAT not in ("plain", "json"):
    raise ValueError(f"CARREL_LOG_FORMAT must be 'plain' or 'json', not {CARREL_LOG_FORMAT!r}")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "request_context": {"()": "platform_site.middleware.RequestContextLogFilter"},
        "redact_secrets": {"()": "platform_site.middleware.RedactSecretsLogFilter"},
        "uncaught_server_errors_only": {"()": "platform_site.logging.UncaughtServerErrorsOnly"},
    },
    "formatters": {
        "plain": {"()": "platform_site.logging.PlainFormatter"},
        "json": {"()": "platform_site.logging.JsonFormatter"},
        "django.server": {
            "()": "django.utils.log.ServerFormatter",
            "format": "[{server_time}] {message}",
            "style": "{",
        },
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": CARREL_LOG_FORMAT,
            "filters": ["redact_secrets", "request_context"],
        },
        "django.server": {
            "class": "logging.StreamHandler",
            "formatter": "json" if CARREL_LOG_FORMAT == "json" else "django.server",
            "filters": ["redact_secrets"],
        },
    },
    "root": {"handlers": ["console"], "level": os.environ.get("CARREL_LOG_LEVEL", "INFO")},
    "loggers": {
        # Django's default configuration gives `django` a console handler of its own in debug mode (and
        # mail_admins), and the level INFO: every Django record would be written twice, once unredacted, and
        # CARREL_LOG_LEVEL would not apply to it. Root's handler and level only.
        "django": {"handlers": [], "level": "NOTSET"},
        "django.db.backends": {"level": "WARNING"},
        # runserver's request lines (the sandbox), with query strings.
        "django.server": {
            "handlers": ["django.server"],
            "filters": ["redact_secrets"],
            "level": "INFO",
            "propagate": False,
        },
        # Logger filters too, so that handlers added elsewhere (Django's own, a test's) see redacted records.
        "django.request": {"filters": ["redact_secrets", "uncaught_server_errors_only"]},
        "carrel.access": {"filters": ["redact_secrets"]},
    },
}
# Celery's worker and beat keep this configuration (and its format) instead of installing their own handler.
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
