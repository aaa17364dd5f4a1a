"""The test suite: base settings with a fast password hasher, an isolated cache and the cloud test hooks."""

import os

from .base import *  # noqa: F401,F403
from .base import CELERY_BROKER_URL, DATABASES, REDIS_URL, VAR_DIR

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = os.environ.get("DJANGO_EMAIL_BACKEND", "django.core.mail.backends.locmem.EmailBackend")
ACCOUNT_EMAIL_VERIFICATION = "mandatory"

# botocore handlers on every EC2 client: calls counted per operation (`tests.cloud_hooks.api_call_counts`)
# and the faults named here, e.g. "throttle:RunInstances:3" or "exit-after:RunInstances". Tests set
# CARREL_CLOUD_FAULTS through the `settings` fixture, or in the environment of the workers they start.
CARREL_CLOUD_CLIENT_HOOKS = ["tests.cloud_hooks.count_calls", "tests.cloud_hooks.inject_faults"]
CARREL_CLOUD_FAULTS = os.environ.get("CARREL_CLOUD_FAULTS", "")

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

# The tests run in a time zone with daylight saving time, not UTC: nothing may assume a day is 24 hours or that
# midnight is UTC's (the ledger's daily close and cost history use each organization's own time zone).
TIME_ZONE = "America/New_York"
