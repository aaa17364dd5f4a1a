"""The test suite: base settings with a fast password hasher and an isolated cache."""

import os

from .base import *  # noqa: F401,F403
from .base import CELERY_BROKER_URL, DATABASES, REDIS_URL, VAR_DIR

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = os.environ.get("DJANGO_EMAIL_BACKEND", "django.core.mail.backends.locmem.EmailBackend")
ACCOUNT_EMAIL_VERIFICATION = "mandatory"

if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "carrel-test",
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# Tests that start a real Celery worker share the database and broker with it, so SQLite must be a
# file and the filesystem broker a folder of this run's own (the worker inherits the run id).
_run_id = os.environ.setdefault("CARREL_TEST_RUN_ID", str(os.getpid()))
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / f"test-{_run_id}.sqlite3")}
if CELERY_BROKER_URL.startswith("filesystem://"):
    _test_broker = VAR_DIR / "test-broker" / _run_id
    for _folder in ("queue", "processed", "control"):
        (_test_broker / _folder).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_test_broker / "queue"),
        "data_folder_out": str(_test_broker / "queue"),
        "processed_folder": str(_test_broker / "processed"),
        "control_folder": str(_test_broker / "control"),
        "store_processed": False,
    }
