"""Production: PostgreSQL, Redis, real AWS, HTTPS. Refuses to start without a real secret key, host names
and the public address (CARREL_PUBLIC_URL, which links in e-mails start with).

Passes `manage.py check --deploy` with no warnings given DJANGO_SECRET_KEY, DJANGO_ALLOWED_HOSTS and
CARREL_PUBLIC_URL.
"""

import os
from urllib.parse import urlsplit

from django.core.exceptions import ImproperlyConfigured

from .base import *  # noqa: F401,F403
from .base import SECRET_KEY, env_bool, env_list

DEBUG = False

if "insecure" in SECRET_KEY or len(SECRET_KEY) < 50:
    raise ImproperlyConfigured("Set DJANGO_SECRET_KEY to a random value of at least 50 characters.")
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS")
if not ALLOWED_HOSTS:
    raise ImproperlyConfigured("Set DJANGO_ALLOWED_HOSTS to the host names the site is served under.")
# Invitation and sign-up e-mails link here: the sandbox's default (a loopback address) would send people nowhere.
CARREL_PUBLIC_URL = os.environ.get("CARREL_PUBLIC_URL", "").strip().rstrip("/")
_public_url = urlsplit(CARREL_PUBLIC_URL)
if _public_url.scheme != "https" or not _public_url.hostname:
    raise ImproperlyConfigured(
        "Set CARREL_PUBLIC_URL to the https:// address people reach Carrel at, e.g. https://carrel.example.org."
    )

ACCOUNT_DEFAULT_HTTP_PROTOCOL = "https"
SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", True)
# Load balancers and container health checks probe over plain HTTP.
SECURE_REDIRECT_EXEMPT = [r"^api/v1/healthcheck$"]
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_HSTS_SECONDS = int(os.environ.get("DJANGO_SECURE_HSTS_SECONDS", str(60 * 60 * 24 * 365)))
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SESSION_COOKIE_SECURE = True
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_SECURE = True
X_FRAME_OPTIONS = "DENY"
# gunicorn runs without an access log (it would print URLs whole); Carrel's own one redacts secrets.
CARREL_ACCESS_LOG = env_bool("CARREL_ACCESS_LOG", True)
