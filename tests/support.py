"""Helpers for tests that start real processes: a Celery worker sharing the test database and broker."""

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

from django.conf import settings
from django.db import connection, connections, transaction

from workspaces.moto_server import SANDBOX_AWS_ENV


def database_url() -> str:
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    auth = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


@contextmanager
def celery_worker(log_dir: Path, *, beat: bool = False, **extra_env):
    """A real worker process (solo pool) on the test database; its log is log_dir/worker.log.
    With `beat`, it also runs Celery beat (the periodic tasks) in the same process."""
    log_dir.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        **SANDBOX_AWS_ENV,
        "DJANGO_SETTINGS_MODULE": "platform_site.settings.test",
        "DATABASE_URL": database_url(),
        "CARREL_LAUNCH_POLL_SECONDS": "10",
        **extra_env,
    }
    log = open(log_dir / "worker.log", "w")  # noqa: SIM115
    process = subprocess.Popen(  # noqa: S603
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "platform_site",
            "worker",
            "--pool",
            "solo",
            "-l",
            "info",
            "--without-heartbeat",
            "--without-mingle",
            "--without-gossip",
            *(["--beat", "--schedule", str(log_dir / "beat-schedule")] if beat else []),
        ],
        cwd=settings.BASE_DIR,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
        log.close()


def wait_until(predicate, timeout: float = 60, what: str = "condition", log_path: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.25)
    log = log_path.read_text()[-4000:] if log_path and log_path.exists() else ""
    raise AssertionError(f"timed out waiting for {what}\n{log}")


def record_cost(**fields):
    """A ledger row written as budgets.ledger writes one: with its share of the daily rollup (CostDay)."""
    from budgets import ledger
    from budgets.models import CostEntry

    entry = CostEntry.objects.create(**fields)
    ledger.roll_up([entry])
    return entry


def assert_writers_never_wait(*, hold: Callable[[], None], write: Callable[[], None], compact: Callable[[], None]):
    """Kept sums appended by triggers: while one transaction has run `hold` and not committed, another runs
    `write` (failing after 2 s of waiting for a lock) and `compact`, and neither waits for the first."""
    changed, release = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def hold_a_change() -> None:
        try:
            with transaction.atomic():
                hold()
                changed.set()
                release.wait(10)
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)
        finally:
            connections.close_all()

    holder = threading.Thread(target=hold_a_change)
    holder.start()
    try:
        assert changed.wait(10)
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SET LOCAL lock_timeout = '2s'")
            write()
        compact()
    finally:
        release.set()
        holder.join(10)
    assert not errors
