#!/usr/bin/env python
"""Launch N workspaces through the API against the sandbox cloud (a moto server) with real Celery workers.

Prints the wall time from the first launch request until every workspace reads `running`, the latency of
the launch requests, and the EC2 API calls per workspace by operation (Carrel's own counters, checked
against the requests the moto server received).

    .venv/bin/python bench/launch_workspaces.py --count 100 --workers 2

It leaves the sandbox's data alone: the SQLite file, file cache and filesystem broker live in a fresh
temporary folder; with DATABASE_URL / REDIS_URL set it uses a database `carrel_bench` on that PostgreSQL
server (created, then dropped) and Redis database 14 (flushed before and after).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import math
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

SETTINGS_MODULE = "bench.bench_settings"
TEMPLATE = "Ubuntu 24.04 Base"
SIZE = "XS"
# Every EC2 operation Carrel's provider can call; the summary lists those that were called.
EC2_OPERATIONS = (
    "DescribeSecurityGroups",
    "DescribeVpcs",
    "CreateSecurityGroup",
    "AuthorizeSecurityGroupIngress",
    "RevokeSecurityGroupIngress",
    "DeleteSecurityGroup",
    "DescribeImages",
    "RunInstances",
    "DescribeInstances",
    "StartInstances",
    "StopInstances",
    "TerminateInstances",
    "ModifyInstanceAttribute",
    "GetConsoleOutput",
)
# Ticks of the cloud poller that ran as their own task (a lone wait ticks in the task that asked instead).
POLL_TICK = re.compile(r"Task workspaces\.tasks\.poll_cloud\[[^\]]+\] succeeded")
LOG_PROBLEMS = {
    "database is locked": re.compile(r"database is locked"),
    "tracebacks": re.compile(r"^Traceback \(most recent call last\)", re.MULTILINE),
    "task retries": re.compile(r"will retry"),
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Launch workspaces through the API with real Celery workers; print wall time and EC2 calls."
    )
    parser.add_argument("--count", type=int, default=100, help="workspaces to launch (default 100)")
    parser.add_argument("--workers", type=int, default=2, help="Celery worker processes (default 2)")
    parser.add_argument(
        "--pool", choices=["threads", "prefork", "solo"], default="threads", help="Celery pool (default threads)"
    )
    parser.add_argument("--concurrency", type=int, default=8, help="tasks at once per worker (default 8)")
    parser.add_argument("--clients", type=int, default=8, help="concurrent API clients sending launches (default 8)")
    parser.add_argument("--web-workers", type=int, default=2, help="gunicorn worker processes (default 2)")
    parser.add_argument("--web-threads", type=int, default=4, help="threads per gunicorn worker (default 4)")
    parser.add_argument("--timeout", type=float, default=600, help="seconds to wait for all running (default 600)")
    parser.add_argument("--poll-interval", type=float, default=0.25, help="seconds between state polls")
    parser.add_argument("--database-name", default="carrel_bench", help="PostgreSQL database to create and drop")
    parser.add_argument("--redis-db", type=int, default=14, help="Redis database number to use and flush")
    parser.add_argument(
        "--poll-seconds",
        type=float,
        default=None,
        help="seconds between two ticks of the cloud poller (default: the production setting, 3)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (logs, SQLite) afterwards")
    args = parser.parse_args(argv)
    if args.count < 1 or args.workers < 1 or args.concurrency < 1 or args.clients < 1:
        parser.error("--count, --workers, --concurrency and --clients must be at least 1")
    return args


# --- Isolation: everything the run writes goes to places of its own --------------------------------


@dataclass
class Isolation:
    var_dir: Path
    database_url: str
    redis_url: str
    postgres_admin_url: str = ""  # set when this run created a PostgreSQL database (it drops it)
    postgres_database: str = ""

    @property
    def description(self) -> str:
        database = f"PostgreSQL ({self.postgres_database})" if self.postgres_admin_url else "SQLite"
        cache = f"Redis db {urllib.parse.urlsplit(self.redis_url).path.strip('/')}" if self.redis_url else "file cache"
        broker = "Redis broker" if self.redis_url else "filesystem broker"
        return f"{database}, {cache}, {broker}"


def isolate(args: argparse.Namespace) -> Isolation:
    """Point the settings at throwaway places. Must run before Django's settings load."""
    var_dir = Path(tempfile.mkdtemp(prefix="carrel-bench-"))
    isolation = Isolation(var_dir=var_dir, database_url=f"sqlite:///{var_dir / 'carrel.sqlite3'}", redis_url="")
    given_database = os.environ.get("DATABASE_URL", "")
    if given_database.startswith(("postgres://", "postgresql://", "pgsql://")):
        parts = urllib.parse.urlsplit(given_database)
        isolation.database_url = parts._replace(path=f"/{args.database_name}").geturl()
        isolation.postgres_admin_url = parts._replace(scheme="postgresql", path="/postgres").geturl()
        isolation.postgres_database = args.database_name
        _recreate_postgres_database(isolation.postgres_admin_url, args.database_name)
    if given_redis := os.environ.get("REDIS_URL", ""):
        isolation.redis_url = urllib.parse.urlsplit(given_redis)._replace(path=f"/{args.redis_db}").geturl()
        _flush_redis(isolation.redis_url)
    os.environ.update(
        {
            "CARREL_VAR_DIR": str(var_dir),
            "DATABASE_URL": isolation.database_url,
            "DJANGO_SETTINGS_MODULE": SETTINGS_MODULE,
            "CARREL_CACHE_PREFIX": "carrel-bench",
            # The benchmark measures launches, not the rate limiter (its polls would add up).
            "CARREL_RATE_LIMIT_TOKEN": "1000000/hour",
            "CARREL_LOG_LEVEL": os.environ.get("CARREL_LOG_LEVEL", "INFO"),
            "PYTHONUNBUFFERED": "1",
        }
    )
    if args.poll_seconds is not None:
        # Seconds between two ticks of the cloud poller (one DescribeInstances per account and region);
        # unset, the production default (CARREL_LAUNCH_POLL_SECONDS, 3 s) is what is measured.
        os.environ["CARREL_LAUNCH_POLL_SECONDS"] = str(args.poll_seconds)
    else:
        os.environ.pop("CARREL_LAUNCH_POLL_SECONDS", None)
    if isolation.redis_url:
        os.environ["REDIS_URL"] = isolation.redis_url
    else:
        os.environ.pop("REDIS_URL", None)
    # Never talk to a broker or result store of someone else's.
    for name in ("CELERY_BROKER_URL", "CELERY_RESULT_BACKEND"):
        os.environ.pop(name, None)
    return isolation


def _recreate_postgres_database(admin_url: str, name: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def _drop_postgres_database(admin_url: str, name: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def _flush_redis(url: str) -> None:
    import redis

    client = redis.Redis.from_url(url)
    try:
        client.flushdb()
    finally:
        client.close()


def release(isolation: Isolation, *, keep: bool) -> None:
    from django.db import connections

    connections.close_all()
    if isolation.postgres_admin_url:
        _drop_postgres_database(isolation.postgres_admin_url, isolation.postgres_database)
    if isolation.redis_url:
        _flush_redis(isolation.redis_url)
    if keep:
        print(f"Kept {isolation.var_dir} (logs in {isolation.var_dir / 'logs'})")
    else:
        shutil.rmtree(isolation.var_dir, ignore_errors=True)


# --- Child processes --------------------------------------------------------------------------------


@dataclass
class Child:
    name: str
    process: subprocess.Popen
    log_path: Path
    log: IO[str]


@dataclass
class Children:
    log_dir: Path
    children: list[Child] = field(default_factory=list)

    def start(self, name: str, command: list[str], env: dict[str, str]) -> Child:
        log_path = self.log_dir / f"{name}.log"
        log = log_path.open("w")
        process = subprocess.Popen(  # noqa: S603 (our own interpreter and arguments)
            command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        child = Child(name=name, process=process, log_path=log_path, log=log)
        self.children.append(child)
        return child

    def check_alive(self) -> None:
        for child in self.children:
            if child.process.poll() is not None:
                raise BenchError(f"{child.name} exited with {child.process.returncode}:\n{tail(child.log_path)}")

    def stop(self) -> None:
        """SIGTERM every process group, then SIGKILL what is still there after 15 s."""
        for child in self.children:
            if child.process.poll() is None:
                _signal_group(child.process, signal.SIGTERM)
        deadline = time.monotonic() + 15
        for child in self.children:
            try:
                child.process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _signal_group(child.process, signal.SIGKILL)
                child.process.wait(timeout=5)
            child.log.close()


def _signal_group(process: subprocess.Popen, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signum)


def group_cpu_seconds(pgid: int) -> float:
    """User + system CPU seconds of a process group so far, reaped children included (Linux /proc; else 0)."""
    ticks = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        fields = text[text.rindex(")") + 2 :].split()  # from field 3 (state) on; the name may hold spaces
        if int(fields[2]) == pgid:  # pgrp
            total += sum(int(value) for value in fields[11:15])  # utime, stime, cutime, cstime
    return total / ticks


def cpu_snapshot(groups: dict[str, int]) -> dict[str, float]:
    snapshot = {name: group_cpu_seconds(pgid) for name, pgid in groups.items()}
    usage = resource.getrusage(resource.RUSAGE_SELF)
    snapshot["benchmark (clients)"] = usage.ru_utime + usage.ru_stime
    return snapshot


def tail(path: Path, characters: int = 3000) -> str:
    try:
        return path.read_text(errors="replace")[-characters:]
    except OSError:
        return ""


class BenchError(Exception):
    pass


def wait_for(predicate, *, timeout: float, what: str, children: Children | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if children is not None:
            children.check_alive()
        if predicate():
            return
        time.sleep(0.2)
    raise BenchError(f"timed out after {timeout:.0f} s waiting for {what}")


# --- The API client ---------------------------------------------------------------------------------


@dataclass
class ApiResponse:
    status: int
    headers: dict[str, str]
    body: Any
    seconds: float


@dataclass
class Api:
    base_url: str
    token: str

    def request(self, method: str, path: str, payload: dict | None = None, timeout: float = 60) -> ApiResponse:
        data = json.dumps(payload).encode() if payload is not None else None
        request = urllib.request.Request(  # noqa: S310 (our loopback URL)
            self.base_url + path,
            data=data,
            method=method,
            headers={
                "Authorization": f"Bearer {self.token}",
                "Accept": "application/json",
                **({"Content-Type": "application/json"} if data is not None else {}),
            },
        )
        started = time.monotonic()
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
                status, headers, raw = response.status, dict(response.headers), response.read()
        except urllib.error.HTTPError as error:
            status, headers, raw = error.code, dict(error.headers), error.read()
        seconds = time.monotonic() - started
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode(errors="replace")
        return ApiResponse(status=status, headers=headers, body=body, seconds=seconds)

    def count(self, state: str) -> int:
        response = self.request("GET", f"/api/v1/instances?state={state}&page_size=1")
        if response.status != 200:
            raise BenchError(f"GET /api/v1/instances answered {response.status}: {response.body}")
        return int(response.headers["X-Total-Count"])


# --- The run ----------------------------------------------------------------------------------------


@dataclass
class Setup:
    project_id: str
    organization_id: str
    token: str
    moto_url: str


@dataclass
class LaunchOutcome:
    name: str
    status: int
    seconds: float
    error: str = ""


@dataclass
class Results:
    count: int
    launches: list[LaunchOutcome]
    submit_seconds: float
    all_running_seconds: float | None  # seen by polling the API; None on timeout
    last_transition_seconds: float | None  # the last `running` transition, from the database
    states: Counter
    errors: list[str]
    to_running: list[float]  # per workspace: launch request recorded → running transition
    attempts: Counter  # provision job attempts → jobs
    carrel_calls: dict[str, int]
    moto_calls: Counter
    moto_unparsed: int
    log_problems: dict[str, int]
    poll_ticks: int  # poll_cloud tasks that ran (the DescribeInstances count includes the ticks run in place)
    cpu_seconds: dict[str, float]  # per process (group), from the first launch request to all running
    load_before: float  # the 1-minute load average just before the first launch request

    @property
    def ok(self) -> bool:
        return (
            self.all_running_seconds is not None
            and not self.errors
            and all(launch.status == 202 for launch in self.launches)
            and self.states.get("running", 0) == self.count
        )


def prepare(moto_url: str, image_id: str) -> Setup:
    from django.core.cache import cache
    from django.core.management import call_command

    from accounts.models import Membership, Organization, OrgRole, User
    from accounts.services import token_create
    from projects.models import Project, ProjectMember, ProjectRole
    from templates.services import template_catalog_load
    from workspaces.models import CloudAccount

    call_command("migrate", interactive=False, verbosity=0)
    template_catalog_load()
    user = User.objects.create_user(email="bench@carrel.localhost", password=None, username="bench")
    organization = Organization.objects.create(name="Bench Lab", slug="bench-lab")
    Membership.objects.create(organization=organization, user=user, role=OrgRole.OWNER)
    project = Project.objects.create(organization=organization, name="Bench Project", created_by=user)
    ProjectMember.objects.create(project=project, user=user, role=ProjectRole.OWNER)
    CloudAccount.objects.create(
        organization=organization,
        name="bench-cloud",
        region="us-east-1",
        endpoint_url=moto_url,
        image_overrides={"*": image_id},
        is_default=True,
    )
    issued = token_create(actor=user, name="bench", scopes=["read", "write"])
    cache.clear()  # the EC2 call counters start at zero
    return Setup(project_id=project.pk, organization_id=organization.pk, token=issued.secret, moto_url=moto_url)


def start_workers(children: Children, args: argparse.Namespace, env: dict[str, str]) -> list[Child]:
    workers = []
    for index in range(1, args.workers + 1):
        command = [sys.executable, "-m", "celery", "-A", "platform_site", "worker", "-l", "info"]
        command += ["-n", f"bench{index}@%h", "--pool", args.pool, "--without-gossip", "--without-mingle"]
        if args.pool != "solo":
            command += ["--concurrency", str(args.concurrency)]
        workers.append(children.start(f"worker{index}", command, env))
    return workers


def start_web(children: Children, args: argparse.Namespace, env: dict[str, str], port: int) -> Child:
    command = [sys.executable, "-m", "gunicorn", "platform_site.wsgi:application", "--bind", f"127.0.0.1:{port}"]
    command += ["--workers", str(args.web_workers), "--threads", str(args.web_threads), "--timeout", "120"]
    command += ["--no-control-socket"]  # gunicorn's default socket in ~/.gunicorn is shared by every instance
    return children.start("web", command, env)


def _web_is_up(base_url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{base_url}/api/v1/healthcheck", timeout=2) as response:  # noqa: S310
            return response.status == 200
    except OSError:
        return False


def launch_all(api: Api, setup: Setup, count: int, clients: int) -> list[LaunchOutcome]:
    def launch(index: int) -> LaunchOutcome:
        name = f"bench-{index:04d}"
        payload = {"name": name, "template": TEMPLATE, "size": SIZE, "project": setup.project_id}
        try:
            response = api.request("POST", "/api/v1/instances/launch", payload)
        except OSError as error:
            return LaunchOutcome(name=name, status=0, seconds=0.0, error=str(error))
        error = "" if response.status == 202 else json.dumps(response.body)[:300]
        return LaunchOutcome(name=name, status=response.status, seconds=response.seconds, error=error)

    with ThreadPoolExecutor(max_workers=clients, thread_name_prefix="launch") as pool:
        return list(pool.map(launch, range(1, count + 1)))


def wait_all_running(
    api: Api, expected: int, *, started: float, timeout: float, interval: float, children: Children
) -> float | None:
    """Seconds from `started` until the API lists `expected` running workspaces.

    None when some ended in error instead (once every workspace is running or in error) or on timeout.
    """
    while True:
        children.check_alive()
        running = api.count("running")
        if running >= expected:
            return time.monotonic() - started
        if running + api.count("error") >= expected or time.monotonic() - started > timeout:
            return None
        time.sleep(interval)


def collect(
    *,
    setup: Setup,
    count: int,
    launches: list[LaunchOutcome],
    submit_seconds: float,
    all_running_seconds: float | None,
    started_at: datetime,
    moto_log: Path,
    log_dir: Path,
    cpu_seconds: dict[str, float],
    load_before: float,
) -> Results:
    from tests.cloud_hooks import api_call_counts
    from workspaces.models import ProvisionJob, StateTransition, Workspace

    workspaces = list(Workspace.objects.filter(organization_id=setup.organization_id))
    running_at = dict(
        StateTransition.objects.filter(workspace__organization_id=setup.organization_id, to_state="running")
        .order_by("created_at")
        .values_list("workspace_id", "created_at")
    )
    to_running = [
        (running_at[workspace.pk] - workspace.created_at).total_seconds()
        for workspace in workspaces
        if workspace.pk in running_at
    ]
    last = max(running_at.values(), default=None)
    moto_calls, unparsed = count_moto_requests(moto_log)
    carrel_calls = api_call_counts(sorted(set(EC2_OPERATIONS) | set(moto_calls)))
    logs = "\n".join(tail(path, 50_000_000) for path in sorted(log_dir.glob("*.log")))
    return Results(
        count=count,
        launches=launches,
        submit_seconds=submit_seconds,
        all_running_seconds=all_running_seconds,
        last_transition_seconds=(last - started_at).total_seconds() if last else None,
        states=Counter(workspace.state for workspace in workspaces),
        errors=[f"{ws.name}: {ws.error_message}" for ws in workspaces if ws.state == "error"],
        to_running=to_running,
        attempts=Counter(
            ProvisionJob.objects.filter(workspace__organization_id=setup.organization_id).values_list(
                "attempts", flat=True
            )
        ),
        carrel_calls={operation: calls for operation, calls in carrel_calls.items() if calls},
        moto_calls=moto_calls,
        moto_unparsed=unparsed,
        log_problems={name: len(pattern.findall(logs)) for name, pattern in LOG_PROBLEMS.items()},
        poll_ticks=len(POLL_TICK.findall(logs)),
        cpu_seconds=cpu_seconds,
        load_before=load_before,
    )


def count_moto_requests(path: Path) -> tuple[Counter, int]:
    """EC2 actions the moto server received, from its request recording (the independent count)."""
    actions: Counter = Counter()
    unparsed = 0
    if not path.exists():
        return actions, unparsed
    for line in path.read_text(errors="replace").splitlines():
        try:
            entry = json.loads(line)
            body = entry.get("body") or ""
            if entry.get("body_encoded"):
                body = base64.b64decode(body).decode(errors="replace")
            query = urllib.parse.urlsplit(entry.get("url", "")).query
            fields = urllib.parse.parse_qs(body) or urllib.parse.parse_qs(query)
            actions[fields["Action"][0]] += 1
        except (ValueError, KeyError, IndexError, TypeError):
            unparsed += 1
    return actions, unparsed


def percentile(values: Iterable[float], fraction: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return math.nan
    return ordered[min(len(ordered) - 1, max(0, math.ceil(fraction * len(ordered)) - 1))]


def report(results: Results, *, args: argparse.Namespace, isolation: Isolation) -> str:
    accepted = [launch for launch in results.launches if launch.status == 202]
    latencies = [launch.seconds for launch in results.launches if launch.status]
    lines = [
        "",
        f"Carrel launch benchmark: {results.count} × '{TEMPLATE}' size {SIZE}",
        f"  setup               {args.workers} Celery worker(s), pool {args.pool}"
        + (f" × {args.concurrency}" if args.pool != "solo" else "")
        + f"; gunicorn {args.web_workers} × {args.web_threads} threads; {args.clients} API clients",
        f"  storage             {isolation.description}",
        f"  machine             {os.cpu_count()} core(s), load average {results.load_before:.2f} before the run",
        f"  launch requests     {len(accepted)}/{results.count} answered 202 in {results.submit_seconds:.2f} s "
        f"({results.count / results.submit_seconds:.1f}/s); latency p50 {percentile(latencies, 0.5):.3f} s, "
        f"p95 {percentile(latencies, 0.95):.3f} s, max {max(latencies, default=math.nan):.3f} s",
    ]
    if results.all_running_seconds is not None:
        lines.append(f"  all running         {results.all_running_seconds:.2f} s after the first launch request")
    else:
        why = f"{len(results.errors)} in error" if results.errors else f"timed out after {args.timeout:.0f} s"
        lines.append(f"  all running         NOT REACHED ({why})")
    if results.last_transition_seconds is not None:
        lines.append(f"  last → running      {results.last_transition_seconds:.2f} s (the database's transition row)")
    if results.to_running:
        lines.append(
            f"  launch → running    p50 {percentile(results.to_running, 0.5):.2f} s, "
            f"p95 {percentile(results.to_running, 0.95):.2f} s, max {max(results.to_running):.2f} s per workspace"
        )
    lines.append("  states              " + ", ".join(f"{state} {n}" for state, n in sorted(results.states.items())))
    lines.append("  job attempts        " + ", ".join(f"{n} job(s) × {a}" for a, n in sorted(results.attempts.items())))
    total = sum(results.carrel_calls.values())
    launched = max(1, len(accepted))  # calls per workspace: over the launches that were accepted
    moto_total = sum(results.moto_calls.values())
    lines.append(
        f"  EC2 API calls       {total} total, {total / launched:.2f} per workspace "
        f"(the moto server received {moto_total}"
        + (f", {results.moto_unparsed} unreadable" if results.moto_unparsed else "")
        + ")"
    )
    operations = sorted(set(results.carrel_calls) | set(results.moto_calls), key=lambda op: -results.moto_calls[op])
    lines.append(f"    {'operation':<32}{'calls':>7}{'per ws':>9}{'moto':>7}")
    for operation in operations:
        calls = results.carrel_calls.get(operation, 0)
        lines.append(f"    {operation:<32}{calls:>7}{calls / launched:>9.2f}{results.moto_calls.get(operation, 0):>7}")
    lines.append(f"  poller ticks        {results.poll_ticks} as poll_cloud tasks")
    if results.all_running_seconds:
        busy = sum(results.cpu_seconds.values())
        lines.append(
            f"  CPU seconds         {busy:.1f} in {results.all_running_seconds:.1f} s: "
            + ", ".join(f"{name} {seconds:.1f}" for name, seconds in results.cpu_seconds.items())
        )
    problems = ", ".join(f"{name} {n}" for name, n in results.log_problems.items())
    lines.append(f"  in the logs         {problems}")
    failed = [launch for launch in results.launches if launch.status != 202]
    lines.append(f"  errors              {len(results.errors) + len(failed)}")
    for launch in failed[:10]:
        lines.append(f"    {launch.name}: HTTP {launch.status} {launch.error}")
    for error in results.errors[:10]:
        lines.append(f"    {error}")
    lines.append("  result              " + ("OK" if results.ok else "FAILED"))
    return "\n".join(lines)


def run(args: argparse.Namespace, isolation: Isolation) -> Results:
    import django

    django.setup()
    from django.utils import timezone

    from workspaces.moto_server import SANDBOX_AWS_ENV, free_port, sandbox_image_id, start_moto_server

    log_dir = isolation.var_dir / "logs"
    log_dir.mkdir()
    moto_log = isolation.var_dir / "moto-requests.jsonl"
    children = Children(log_dir=log_dir)
    moto = None
    moto_output = (log_dir / "moto.log").open("w")
    try:
        os.environ.update(SANDBOX_AWS_ENV)
        os.environ["MOTO_RECORDER_FILEPATH"] = str(moto_log)
        moto = start_moto_server(log=moto_output)
        setup = prepare(moto.url, sandbox_image_id(moto.url))
        recording = urllib.request.Request(f"{moto.url}/moto-api/recorder/start-recording", method="POST")  # noqa: S310
        urllib.request.urlopen(recording, timeout=10).close()  # noqa: S310 (our loopback URL)

        env = dict(os.environ)
        port = free_port()
        web = start_web(children, args, env, port)
        workers = start_workers(children, args, env)
        base_url = f"http://127.0.0.1:{port}"
        wait_for(lambda: _web_is_up(base_url), timeout=60, what=f"the web server ({web.log_path})", children=children)
        for worker in workers:
            wait_for(
                lambda worker=worker: " ready." in tail(worker.log_path, 100_000),
                timeout=60,
                what=f"{worker.name} ({worker.log_path})",
                children=children,
            )
        api = Api(base_url=base_url, token=setup.token)
        print(f"Launching {args.count} workspaces ({isolation.description}; logs in {log_dir}) …", flush=True)

        groups = {child.name: child.process.pid for child in children.children} | {"moto": moto.process.pid}
        cpu_before, load_before = cpu_snapshot(groups), os.getloadavg()[0]
        started_at, started = timezone.now(), time.monotonic()
        launches = launch_all(api, setup, args.count, args.clients)
        submit_seconds = time.monotonic() - started
        accepted = sum(1 for launch in launches if launch.status == 202)
        print(f"  {accepted} launches accepted in {submit_seconds:.2f} s; waiting for running …", flush=True)
        all_running = None
        if accepted:
            all_running = wait_all_running(
                api,
                accepted,
                started=started,
                timeout=args.timeout,
                interval=args.poll_interval,
                children=children,
            )
        cpu_after = cpu_snapshot(groups)
        return collect(
            cpu_seconds={name: cpu_after[name] - cpu_before[name] for name in cpu_after},
            load_before=load_before,
            setup=setup,
            count=args.count,
            launches=launches,
            submit_seconds=submit_seconds,
            all_running_seconds=all_running,
            started_at=started_at,
            moto_log=moto_log,
            log_dir=log_dir,
        )
    finally:
        children.stop()
        if moto is not None:
            moto.stop()
        moto_output.close()


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # SIGTERM unwinds like Ctrl-C, so the finally blocks stop every child process.
    signal.signal(signal.SIGTERM, _interrupt)
    isolation = isolate(args)
    ok, interrupted = False, False
    try:
        results = run(args, isolation)
        print(report(results, args=args, isolation=isolation), flush=True)
        ok = results.ok
    except KeyboardInterrupt:
        print("\nInterrupted; stopped the processes.", file=sys.stderr)
        interrupted = True
    except BenchError as error:
        print(f"Benchmark failed: {error}", file=sys.stderr)
    finally:
        # A failed run keeps its logs for a look; an interrupted one leaves nothing behind.
        release(isolation, keep=args.keep or not (ok or interrupted))
    if interrupted:
        return 130
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
