import socket
import time

from celery import shared_task
from django.core.cache import cache

WORKER_HEARTBEAT_KEY = "carrel:worker-heartbeat"


@shared_task(ignore_result=True)
def record_worker_heartbeat() -> None:
    """Beat sends this every 30 s; a recent heartbeat proves beat, broker and a worker all work."""
    cache.set(WORKER_HEARTBEAT_KEY, {"at": time.time(), "hostname": socket.gethostname()}, timeout=3600)
