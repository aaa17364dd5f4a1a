"""botocore event handlers for the tests and the benchmark, never for production.

`workspaces.cloud` calls every function named in `settings.CARREL_CLOUD_CLIENT_HOOKS` with each new EC2
client; the test settings (`platform_site.settings.test`) and the benchmark's (`bench.bench_settings`)
name these:

- `count_calls`: counts the calls per operation in the cache, shared by every process (the benchmark
  compares them with the moto server's request log; tests read them with `api_call_counts`);
- `inject_faults`: the faults in `settings.CARREL_CLOUD_FAULTS`, for tests that prove retries and crash
  recovery: `throttle:RunInstances:3` answers the next 3 RunInstances of this client with
  RequestLimitExceeded (HTTP 503, as EC2 does), `exit-after:RunInstances` ends the process once a
  RunInstances call has returned. The state is per client, so per provider instance.
"""

import logging
import os
from collections.abc import Iterable

from botocore.awsrequest import AWSResponse
from django.conf import settings
from django.core.cache import cache

logger = logging.getLogger("carrel.cloud")


# --- Call counting -----------------------------------------------------------------------------------


def count_calls(client) -> None:
    client.meta.events.register("after-call.ec2", _count_call)


def _count_call(model=None, **kwargs) -> None:
    count_api_call(model.name if model is not None else "unknown")


def count_api_call(operation: str) -> None:
    """Calls per operation, kept in the cache (a file cache or Redis when processes share it)."""
    key = f"cloud:calls:{operation}"
    cache.add(key, 0, timeout=None)
    try:
        cache.incr(key)
    except ValueError:
        cache.set(key, 1, timeout=None)


def api_call_counts(operations: Iterable[str]) -> dict[str, int]:
    return {operation: int(cache.get(f"cloud:calls:{operation}", 0)) for operation in operations}


# --- Fault injection ---------------------------------------------------------------------------------


def inject_faults(client, spec: str | None = None) -> None:
    throttles, exits = parse_faults(settings.CARREL_CLOUD_FAULTS if spec is None else spec)
    if throttles:
        client.meta.events.register("before-send.ec2", _throttle_responses(throttles))
    if exits:
        # Last, so that the call counter has counted the call before the process ends.
        client.meta.events.register_last("after-call.ec2", _exit_after(exits))


def parse_faults(spec: str) -> tuple[dict[str, int], set[str]]:
    """`throttle:RunInstances:3,exit-after:RunInstances` → ({"RunInstances": 3}, {"RunInstances"})."""
    throttles: dict[str, int] = {}
    exits: set[str] = set()
    for item in filter(None, (part.strip() for part in (spec or "").split(","))):
        kind, _, rest = item.partition(":")
        if kind == "throttle":
            operation, _, count = rest.partition(":")
            throttles[operation] = int(count or 1)
        elif kind == "exit-after":
            exits.add(rest)
        else:
            raise ValueError(f"Unknown cloud fault {item!r}")
    return throttles, exits


THROTTLED_BODY = (
    b'<?xml version="1.0" encoding="UTF-8"?><Response><Errors><Error><Code>RequestLimitExceeded</Code>'
    b"<Message>Request limit exceeded.</Message></Error></Errors><RequestID>fault</RequestID></Response>"
)


def _throttle_responses(remaining: dict[str, int]):
    """Answer the next N requests of an operation with RequestLimitExceeded instead of sending them."""

    def before_send(request, event_name: str = "", **kwargs):
        operation = event_name.rsplit(".", 1)[-1]
        if remaining.get(operation, 0) > 0:
            remaining[operation] -= 1
            return AWSResponse(request.url, 503, {}, _Raw(THROTTLED_BODY))
        return None

    return before_send


def _exit_after(operations: set[str]):
    def after_call(model=None, **kwargs) -> None:
        if model is not None and model.name in operations:
            logger.error("Fault injection: exiting the process after %s", model.name)
            os._exit(137)

    return after_call


class _Raw:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **kwargs):
        yield self._body
