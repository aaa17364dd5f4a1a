"""The real agent script, as a subprocess, against a live Carrel (pytest-django's live_server): its heartbeats
land in the workspace's idle row; it stops for good once the workspace is terminated. And how it behaves when
Carrel is away or busy: capped exponential backoff with jitter, Retry-After honoured, one sample per request."""

import json
import random
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from idle.agent import carrel_agent as agent
from idle.models import AgentToken, WorkspaceIdle
from tests.conftest import make_org, make_project, make_user
from tests.idle.agent_support import AGENT_SCRIPT, PYTHON, agent_workspace, secret_of
from workspaces import services as workspace_services

pytestmark = pytest.mark.slow


@pytest.fixture
def box(transactional_db):
    owner = make_user("owner@lab-a.example")
    project = make_project(make_org("Lab A", owner), "Genomics", owner)
    return agent_workspace(project, owner, name="box"), owner


def write_config(tmp_path, url: str, token: str):
    config = tmp_path / "agent.conf"
    config.write_text(f"# written by the user data\nurl={url}\ntoken={token}\n")
    config.chmod(0o600)
    return config


def run_agent(tmp_path, config, *arguments, **popen):
    return subprocess.Popen(  # noqa: S603
        [PYTHON, str(AGENT_SCRIPT), "--state-dir", str(tmp_path / "keep-alive"), *arguments, "--config", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **popen,
    )


def wait_for(predicate, timeout: float = 30.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_the_agent_posts_real_heartbeats_that_appear_in_the_workspaces_row(box, live_server, tmp_path):
    workspace, _ = box
    config = write_config(tmp_path, live_server.url, secret_of(workspace))
    once = run_agent(tmp_path, config, "--once")
    out, err = once.communicate(timeout=60)
    assert once.returncode == 0, err
    state = WorkspaceIdle.objects.get(pk=workspace.pk)
    assert state.signal_source == "agent" and state.last_observed_at is not None
    sample = state.last_sample
    assert len(sample["cpu_percent"]) >= 1 and all(0 <= core <= 100 for core in sample["cpu_percent"])
    assert 0 < sample["memory_percent"] < 100
    assert sample["agent_version"] == agent.VERSION and sample["busy"] is False
    assert AgentToken.objects.get(pk=workspace.pk).last_used_at is not None


def test_the_agent_reports_a_registered_job_and_stops_when_the_workspace_terminates(box, live_server, tmp_path):
    workspace, owner = box
    config = write_config(tmp_path, live_server.url, secret_of(workspace))
    job = subprocess.Popen(  # noqa: S603
        [PYTHON, str(AGENT_SCRIPT), "--state-dir", str(tmp_path / "keep-alive"), "keep-alive", "--", "sleep", "60"]
    )
    running = run_agent(tmp_path, config, "run", "--interval", "1")
    try:
        first = wait_for(
            lambda: WorkspaceIdle.objects.filter(pk=workspace.pk, last_sample__busy=True).first(),
            what="a busy heartbeat",
        )
        assert "busy" in first.active_reasons  # (this machine may be busy too: cpu, disk)
        assert first.last_sample["busy_reasons"] == ["keep-alive: sleep 60"]
        wait_for(
            lambda: WorkspaceIdle.objects.get(pk=workspace.pk).last_observed_at > first.last_observed_at,
            what="a second heartbeat",
        )
        workspace_services.workspace_act(actor=owner, workspace=workspace, action="terminate")
        assert running.wait(timeout=30) == agent.EXIT_REVOKED
        assert "revoked" in running.stderr.read()
    finally:
        for process in (running, job):
            if process.poll() is None:
                process.kill()
            process.wait()


def test_the_agent_without_a_configuration_says_so(tmp_path):
    missing = tmp_path / "none.conf"
    done = subprocess.run(  # noqa: S603
        [PYTHON, str(AGENT_SCRIPT), "--once", "--config", str(missing)],
        capture_output=True,
        text=True,
        timeout=30,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 2 and "no url/token" in done.stderr


def test_an_unreachable_server_is_a_failure_for_once(tmp_path):
    config = write_config(tmp_path, "http://127.0.0.1:9", "carrel_agent_" + "0" * 64)  # discard port: refused
    once = run_agent(tmp_path, config, "--once")
    _, err = once.communicate(timeout=60)
    assert once.returncode == 1 and "cannot reach" in err


# --- Backoff against a real HTTP server that answers what the test says ---------------------------------------


class Script:
    """Statuses to answer in turn (then 200s), the bodies received, and the waits the agent chose."""

    def __init__(self, answers):
        self.answers = list(answers)
        self.bodies: list = []
        self.waits: list[float] = []


def serve(script: Script) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            length = int(self.headers["Content-Length"])
            script.bodies.append((self.path, self.headers["Authorization"], json.loads(self.rfile.read(length))))
            status, headers, body = script.answers.pop(0) if script.answers else (200, {}, {"ok": True})
            payload = json.dumps(body).encode()
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def run_in_process(tmp_path, url: str, script: Script, *, stop_after: int) -> int:
    """agent.run with its sleeps recorded instead of slept; stops (as SIGTERM would) after `stop_after`."""

    def sleep(seconds: float) -> None:
        script.waits.append(seconds)
        if len(script.waits) > stop_after:
            raise agent.Stop

    config = write_config(tmp_path, url, "carrel_agent_secret")
    arguments = agent.parse_arguments(["--state-dir", str(tmp_path / "ka"), "run", "--config", str(config)])
    return agent.run(arguments, sleep=sleep)


def error(code: str) -> dict:
    return {"error": {"code": code, "message": "", "details": "", "remediation": ""}}


def test_it_backs_off_exponentially_with_jitter_up_to_a_cap_then_resumes(tmp_path):
    script = Script([(503, {}, error("PROVIDER_UNAVAILABLE"))] * 9 + [(500, {}, error("INTERNAL_ERROR"))])
    server = serve(script)
    try:
        assert run_in_process(tmp_path, f"http://127.0.0.1:{server.server_port}", script, stop_after=12) == 0
    finally:
        server.shutdown()
    first_sleep, failures, after = script.waits[0], script.waits[1:11], script.waits[11:]
    assert first_sleep == 1.0  # the first sample spans a second
    for attempt, wait in enumerate(failures, start=1):
        ceiling = min(agent.BACKOFF_CAP, agent.BACKOFF_BASE * 2 ** (attempt - 1))
        assert ceiling / 2 <= wait <= ceiling, (attempt, wait)
    assert max(failures) <= agent.BACKOFF_CAP == 900
    assert failures[-1] >= agent.BACKOFF_CAP / 2  # capped, not growing past it
    assert after == [agent.DEFAULT_INTERVAL, agent.DEFAULT_INTERVAL]  # success resets the backoff
    # Never queued: every request carried one fresh sample, never a backlog.
    assert len(script.bodies) == 12
    for path, authorization, body in script.bodies:
        assert path == agent.HEARTBEAT_PATH and authorization == "Bearer carrel_agent_secret"
        assert isinstance(body, dict) and isinstance(body["cpu_percent"], list) and "measured_at" not in body


def test_it_honours_retry_after_on_429_and_503(tmp_path):
    script = Script([(429, {"Retry-After": "120"}, error("RATE_LIMITED")), (503, {"Retry-After": "99999"}, error("X"))])
    server = serve(script)
    try:
        run_in_process(tmp_path, f"http://127.0.0.1:{server.server_port}", script, stop_after=3)
    finally:
        server.shutdown()
    assert script.waits[1] == 120.0  # more than the first backoff (7.5-15 s): the server's word holds
    assert script.waits[2] == agent.RETRY_AFTER_CAP  # but never more than an hour
    assert script.waits[3] == agent.DEFAULT_INTERVAL


def test_it_stops_on_a_revoked_token_and_keeps_trying_an_unknown_one(tmp_path):
    script = Script([(401, {}, error("TOKEN_INVALID")), (401, {}, error("TOKEN_REVOKED"))])
    server = serve(script)
    try:
        result = run_in_process(tmp_path, f"http://127.0.0.1:{server.server_port}", script, stop_after=5)
    finally:
        server.shutdown()
    assert result == agent.EXIT_REVOKED
    assert len(script.bodies) == 2
    assert agent.BACKOFF_BASE / 2 <= script.waits[1] <= agent.BACKOFF_BASE


def test_a_refused_heartbeat_is_dropped_not_retried(tmp_path):
    script = Script([(400, {}, error("VALIDATION_ERROR"))])
    server = serve(script)
    try:
        run_in_process(tmp_path, f"http://127.0.0.1:{server.server_port}", script, stop_after=2)
    finally:
        server.shutdown()
    assert script.waits[1:] == [agent.DEFAULT_INTERVAL, agent.DEFAULT_INTERVAL]


def test_an_unreachable_server_backs_off_in_the_loop(tmp_path):
    script = Script([])
    run_in_process(tmp_path, "http://127.0.0.1:9", script, stop_after=4)
    assert all(wait < agent.DEFAULT_INTERVAL for wait in script.waits[1:3])
    assert script.waits[2] >= agent.BACKOFF_BASE  # the second failure waits longer than the first's floor


def test_the_backoff_schedule_itself():
    rng = random.Random(7)
    ceilings = [min(agent.BACKOFF_CAP, agent.BACKOFF_BASE * 2 ** (n - 1)) for n in range(1, 40)]
    for failures, ceiling in enumerate(ceilings, start=1):
        assert ceiling / 2 <= agent.backoff(failures, rng) <= ceiling
    assert agent.backoff(10_000, rng) <= agent.BACKOFF_CAP
