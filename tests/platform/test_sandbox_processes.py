"""Stopping the sandbox is quick and complete: Ctrl-C or SIGTERM ends every process it started in under 3 s."""

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from django.conf import settings

from platform_site.management.commands.sandbox import STOP_GRACE_SECONDS, Supervisor
from workspaces.moto_server import free_port

ROOT = Path(settings.BASE_DIR)
STOP_LIMIT_SECONDS = 3.0


def process_table() -> dict[int, tuple[int, str, str]]:
    """pid -> (parent pid, state, start time) of every process, from /proc."""
    table = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # gone meanwhile
        # The command name (field 2) is in parentheses and may hold spaces: split after its closing one.
        fields = stat[stat.rindex(")") + 2 :].split()
        table[int(entry.name)] = (int(fields[1]), fields[0], fields[19])
    return table


def descendants(pid: int) -> dict[int, str]:
    """Every live process below `pid` -> its start time (to tell it from a later process with the same pid)."""
    table = process_table()
    found: dict[int, str] = {}
    parents = [pid]
    while parents:
        parent = parents.pop()
        for child, (ppid, state, started) in table.items():
            if ppid == parent and child not in found and state != "Z":
                found[child] = started
                parents.append(child)
    return found


def still_running(processes: dict[int, str]) -> dict[int, str]:
    table = process_table()
    return {
        pid: " ".join(Path(f"/proc/{pid}/cmdline").read_text().split("\0"))[:120] if pid in table else "?"
        for pid, started in processes.items()
        if pid in table and table[pid][2] == started and table[pid][1] != "Z"  # a zombie has stopped running
    }


def wait_until_gone(processes: dict[int, str], deadline: float) -> dict[int, str]:
    while True:
        left = still_running(processes)
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.05)


def test_stopping_kills_what_ignores_sigterm_and_what_it_left_behind_within_the_grace():
    # A leader that ignores SIGTERM with a child of its own (like a Celery worker and its pool), and one that
    # stops at once: all of them end within the grace period plus a moment.
    stubborn = (
        "import signal, subprocess, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        "subprocess.Popen([sys.executable, '-c', 'import signal, time; "
        "signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)']); time.sleep(60)"
    )
    supervisor = Supervisor(
        {"worker": [sys.executable, "-c", stubborn], "web": [sys.executable, "-c", "import time; time.sleep(60)"]},
        env=dict(os.environ),
        log=lambda _: None,
    )
    supervisor.start_all()
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True)
    try:
        deadline = time.monotonic() + 10
        while len(descendants(supervisor.processes["worker"].pid)) < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        # The supervised processes, the one handed over, and everything they started (not the rest of this
        # test run's processes, such as a session-wide moto server).
        table = process_table()
        roots = [process.pid for process in [*supervisor.processes.values(), other]]
        everything = {pid: table[pid][2] for pid in roots if pid in table}
        for pid in roots:
            everything.update(descendants(pid))
        assert len(everything) >= 4
        started = time.monotonic()
        supervisor.stop_all(also=[other])
        took = time.monotonic() - started
        assert STOP_GRACE_SECONDS <= took < STOP_LIMIT_SECONDS  # it waited for the stubborn one, then killed it
        assert wait_until_gone(everything, started + STOP_LIMIT_SECONDS) == {}
        assert other.poll() is not None
    finally:
        for process in [*supervisor.processes.values(), other]:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)


def test_stopping_processes_that_end_on_sigterm_does_not_wait_for_the_grace():
    supervisor = Supervisor(
        {name: [sys.executable, "-c", "import time; time.sleep(60)"] for name in ("web", "worker", "beat")},
        env=dict(os.environ),
        log=lambda _: None,
    )
    supervisor.start_all()
    started = time.monotonic()
    supervisor.stop_all()
    assert time.monotonic() - started < 1
    assert all(process.poll() is not None for process in supervisor.processes.values())


# --- The real sandbox ---------------------------------------------------------------------------------


def api_get(url: str, token: str) -> tuple[int, object]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:  # our loopback server
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, None
    except OSError:
        return 0, None


def sandbox_env(var_dir: Path) -> dict:
    # The sandbox as ./scripts/sandbox.sh starts it: default settings, SQLite, file cache and filesystem broker
    # in its own folder, whatever servers this test run uses.
    env = {
        name: value
        for name, value in os.environ.items()
        if name not in {"DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "CELERY_RESULT_BACKEND"}
        and not name.startswith(("CARREL_", "DJANGO_", "AWS_"))
    }
    return {
        **env,
        "DJANGO_SETTINGS_MODULE": "platform_site.settings",
        "CARREL_SANDBOX": "1",
        "CARREL_VAR_DIR": str(var_dir),
        "ACCOUNT_EMAIL_VERIFICATION": "optional",
        "PYTHONUNBUFFERED": "1",
    }


@pytest.mark.slow
def test_the_sandbox_serves_the_api_runs_a_worker_and_stops_every_process_on_sigterm(tmp_path):
    port, cloud_port = free_port(), free_port()
    base = f"http://127.0.0.1:{port}"
    log_path = tmp_path / "sandbox.log"
    with open(log_path, "w") as log:
        sandbox = subprocess.Popen(
            [sys.executable, "manage.py", "sandbox", "--port", str(port), "--cloud-port", str(cloud_port)],
            cwd=ROOT,
            env=sandbox_env(tmp_path / "var"),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    tree: dict[int, str] = {}

    def output() -> str:
        return log_path.read_text(errors="replace")

    def wait_for(what: str, check, timeout: float):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert sandbox.poll() is None, f"the sandbox exited with {sandbox.returncode}:\n{output()[-3000:]}"
            result = check()
            if result:
                return result
            time.sleep(0.25)
        pytest.fail(f"{what} within {timeout} s; the sandbox said:\n{output()[-3000:]}")

    try:
        token = wait_for("the sandbox printed no token", lambda: re.search(r"API token:\s+(carrel_\S+)", output()), 45)
        token = token.group(1)
        projects = wait_for(
            "the API did not answer",
            lambda: (lambda status, body: body if status == 200 else None)(*api_get(f"{base}/api/v1/projects", token)),
            30,
        )
        assert [project["name"] for project in projects] == ["Demo Project"]
        # Beat sends a heartbeat task, the worker runs it: both are up and share the broker and the cache.
        wait_for(
            "the worker did not report",
            lambda: api_get(f"{base}/api/v1/daemon/status", token)[1].get("worker") == "running",
            45,
        )
        tree = descendants(sandbox.pid)
        commands = " ".join(still_running(tree).values())
        for part in ("runserver", "worker", "beat", "moto.server"):
            assert part in commands, (part, commands)

        started = time.monotonic()
        sandbox.send_signal(signal.SIGTERM)
        sandbox.wait(timeout=STOP_LIMIT_SECONDS)
        left = wait_until_gone(tree, started + STOP_LIMIT_SECONDS)
        assert left == {}, f"still running {time.monotonic() - started:.1f} s after SIGTERM: {left}"
        assert sandbox.returncode == 0, output()[-3000:]
        assert "Stopping the sandbox" in output()
    finally:
        for pid in [sandbox.pid, *tree]:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
        sandbox.wait(timeout=10)
