"""The sandbox keeps its processes running: a worker or beat that dies is started again."""

import os
import signal
import sys
import time

from platform_site.management.commands.sandbox import Supervisor


def test_it_restarts_a_killed_process(tmp_path):
    supervisor = Supervisor(
        {"worker": [sys.executable, "-c", "import time; time.sleep(60)"]}, env=dict(os.environ), log=lambda _: None
    )
    supervisor.start_all()
    try:
        first = supervisor.processes["worker"]
        os.kill(first.pid, signal.SIGKILL)
        first.wait(timeout=10)
        assert supervisor.restart_dead() is True
        second = supervisor.processes["worker"]
        assert second.pid != first.pid and second.poll() is None
    finally:
        supervisor.stop_all()
    assert supervisor.processes["worker"].poll() is not None


def test_it_gives_up_on_a_process_that_keeps_dying():
    said = []
    supervisor = Supervisor(
        {"beat": [sys.executable, "-c", "raise SystemExit(3)"]}, env=dict(os.environ), log=said.append
    )
    supervisor.start_all()
    results = []
    for _ in range(Supervisor.MAX_RESTARTS + 1):
        supervisor.processes["beat"].wait(timeout=10)
        results.append(supervisor.restart_dead())
        time.sleep(0.05)
    supervisor.stop_all()
    assert results == [True] * Supervisor.MAX_RESTARTS + [False]
    assert said[0] == "beat exited with 3; starting it again."
