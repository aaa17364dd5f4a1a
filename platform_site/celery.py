"""The Celery application. Tasks take ids, call services, and are enqueued on commit."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "platform_site.settings")

app = Celery("carrel")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
