"""Safe-for-several-processes versions of two stock backends the serverless sandbox runs on.

With Redis configured (production, CI), neither is used. Without it, the sandbox's web server, worker
and beat share a file cache and a filesystem broker, and the stock versions of both lose data when
several processes use them at once (found by bench/launch_workspaces.py).
"""

import fcntl
import os
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from time import monotonic
from typing import Any

from django.core.cache.backends.base import DEFAULT_TIMEOUT
from django.core.cache.backends.filebased import FileBasedCache
from kombu.transport import filesystem
from kombu.utils.encoding import str_to_bytes
from kombu.utils.json import dumps


class LockedFileBasedCache(FileBasedCache):
    """`add` and `incr` atomic across processes (an exclusive file lock).

    Django's FileBasedCache increments by get-then-set, so concurrent rate-limit hits and EC2 call
    counts would be lost.
    """

    @contextmanager
    def _locked(self) -> Iterator[None]:
        os.makedirs(self._dir, exist_ok=True)
        with open(os.path.join(self._dir, "counters.lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def add(self, key: str, value: Any, timeout: Any = DEFAULT_TIMEOUT, version: int | None = None) -> bool:
        with self._locked():
            return super().add(key, value, timeout, version)

    def incr(self, key: str, delta: int = 1, version: int | None = None) -> int:
        with self._locked():
            return super().incr(key, delta, version)


class _AtomicChannel(filesystem.Channel):
    """Messages appear in the queue folder whole.

    The stock channel creates the file in the queue folder and then writes it, while a consumer may
    already read it: a worker can read an empty message and die ("Unrecoverable error: JSONDecodeError").
    Writing to a staging folder and renaming (atomic on one filesystem) closes that window.
    """

    def _put(self, queue: str, payload: dict, **kwargs: object) -> None:
        name = f"{round(monotonic() * 1000)}_{uuid.uuid4()}.{queue}.msg"
        staging = self.data_folder_out.rstrip(os.sep) + ".staging"
        os.makedirs(staging, exist_ok=True)
        try:
            descriptor, temporary = tempfile.mkstemp(dir=staging)
            with os.fdopen(descriptor, "wb") as file:
                file.write(str_to_bytes(dumps(payload)))
            os.replace(temporary, os.path.join(self.data_folder_out, name))
        except OSError as error:
            raise filesystem.ChannelError(f"Cannot add {name!r} to {self.data_folder_out!r}") from error


class AtomicFilesystemTransport(filesystem.Transport):
    Channel = _AtomicChannel
