"""bench/lists: how fast the lists answer at 10,000 workspaces and 10,000 members (issue #12).

Creates a fresh PostgreSQL database, migrates it and loads one organization with `--members` members and
`--workspaces` running workspaces in one project, shaped as real launches leave them (bench/lists_load.py). Starts
gunicorn as docker-compose.yml does (`platform_site.wsgi:application`, 2 sync workers by default) with production
settings (DEBUG off, PostgreSQL, Redis db `--redis-db` as cache, rate limits raised, the access log on), then drives
each endpoint with wrk, closed loop, `--connections` connections, for `--duration` seconds after `--warmup` seconds,
with the organization owner's bearer token, and prints one JSON line per endpoint:

  endpoint, requests_per_s, p50_ms, p99_ms (wrk's), queries_per_request and server_ms_median (medians over the
  measured requests' access lines: SQL statements and time in Django's middleware), errors (non-2xx answers and
  socket errors), and the load average before and after.

`--gunicorn "sync:3,sync:5,gthread:3x4,gthread:2x8"` measures several worker classes and counts on one load. The
database is dropped and Redis db `--redis-db` flushed at the end (also on Ctrl-C) unless --keep; `--reuse` measures a
database kept by an earlier run without loading it again. Exits non-zero when a request fails, a check fails or the
server dies.
"""

import argparse
import contextlib
import json
import math
import os
import re
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.lists_server import (  # noqa: E402 (after the path is set)
    HOST,
    BenchError,
    GunicornConfig,
    Server,
    access_entries,
    cpu_by_process,
    cpu_calibration_ms,
    cpu_since,
    fetch,
    free_port,
    loadavg,
    parse_configs,
    settled_size,
    start_gunicorn,
)

SETTINGS_MODULE = "bench.lists_settings"
WRK_SCRIPT = ROOT / "bench" / "lists_wrk.lua"
ENDPOINTS = ("instances", "instances_last", "users", "projects", "audit", "budget")
RATE_LIMIT = "1000000000/hour"  # the limiter still runs (as in production); it never refuses
LAST_PAGE_FOLLOW_LIMIT = 1000


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bench/lists", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--members", type=int, default=10_000, help="organization members, the owner included")
    parser.add_argument("--workspaces", type=int, default=10_000, help="running workspaces in the project")
    parser.add_argument("--duration", type=float, default=15, help="measured seconds per endpoint (default 15)")
    parser.add_argument("--warmup", type=float, default=3, help="unmeasured seconds per endpoint before (default 3)")
    parser.add_argument("--connections", type=int, default=8, help="wrk connections (default 8)")
    parser.add_argument("--wrk-threads", type=int, default=2, help="wrk threads (default 2)")
    parser.add_argument(
        "--endpoints",
        default=",".join(ENDPOINTS),
        help=f"comma-separated, from {', '.join(ENDPOINTS)} (default all)",
    )
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (default 2, as compose runs it)")
    parser.add_argument("--worker-class", default="sync", help="gunicorn worker class: sync (default) or gthread")
    parser.add_argument("--threads", type=int, default=1, help="gunicorn threads per worker (gthread)")
    parser.add_argument(
        "--gunicorn",
        default="",
        help="several configurations to compare, e.g. sync:3,sync:5,gthread:3x4,gthread:2x8 (class:workers[xthreads]);"
        " overrides --workers/--worker-class/--threads",
    )
    parser.add_argument("--database-name", default="carrel_bench_lists")
    parser.add_argument(
        "--server",
        default=os.environ.get("CARREL_BENCH_PG") or server_of(os.environ.get("DATABASE_URL", "")),
        help="PostgreSQL server URL without a database (CARREL_BENCH_PG, else DATABASE_URL's server, "
        "else postgres://postgres@127.0.0.1:5432)",
    )
    parser.add_argument(
        "--redis",
        default=os.environ.get("CARREL_BENCH_REDIS") or server_of(os.environ.get("REDIS_URL", ""), "redis"),
        help="Redis server URL without a db (CARREL_BENCH_REDIS, else REDIS_URL's server, else redis://127.0.0.1:6379)",
    )
    parser.add_argument("--redis-db", type=int, default=12, help="Redis database for the cache (default 12)")
    parser.add_argument("--keep", action="store_true", help="keep the database (and the logs) afterwards")
    parser.add_argument(
        "--reuse", action="store_true", help="measure the database a --keep run left, without loading (keeps it)"
    )
    parser.add_argument("--port", type=int, default=0, help="gunicorn's port (default: a free one)")
    parser.add_argument(
        "--close",
        action="store_true",
        help="a new connection per request (Connection: close), as from a proxy without upstream keep-alive",
    )
    args = parser.parse_args(argv)
    args.endpoints = [name.strip() for name in args.endpoints.split(",") if name.strip()]
    unknown = sorted(set(args.endpoints) - set(ENDPOINTS))
    if unknown:
        parser.error(f"unknown endpoints: {', '.join(unknown)}")
    try:
        args.configs = (
            parse_configs(args.gunicorn)
            if args.gunicorn
            else [GunicornConfig(args.worker_class, args.workers, args.threads)]
        )
    except ValueError as error:
        parser.error(str(error))
    return args


def server_of(url: str, scheme: str = "postgres") -> str:
    """`url` without its path (the database), or the local default server."""
    defaults = {"postgres": "postgres://postgres@127.0.0.1:5432", "redis": "redis://127.0.0.1:6379"}
    if not url.startswith((scheme, "postgresql")):
        return defaults[scheme]
    return urllib.parse.urlsplit(url)._replace(path="", query="", fragment="").geturl()


# --- Environment, database, Redis ------------------------------------------------------------------------


@dataclass
class Place:
    database_url: str
    redis_url: str
    work_dir: Path
    access_log: Path


def environment(args: argparse.Namespace) -> Place:
    """Point the settings at the bench's own database, Redis db and folder. Before Django's settings load."""
    work_dir = Path(tempfile.mkdtemp(prefix="carrel-bench-lists-"))
    place = Place(
        database_url=f"{args.server.rstrip('/')}/{args.database_name}",
        redis_url=f"{args.redis.rstrip('/')}/{args.redis_db}",
        work_dir=work_dir,
        access_log=work_dir / "access.jsonl",
    )
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": SETTINGS_MODULE,
            "DATABASE_URL": place.database_url,
            "REDIS_URL": place.redis_url,
            "CARREL_CACHE_PREFIX": "carrel-bench-lists",
            "CARREL_VAR_DIR": str(work_dir),
            # What production refuses to start without, and what compose sets.
            "DJANGO_SECRET_KEY": os.environ.get("CARREL_BENCH_SECRET_KEY") or secrets.token_urlsafe(48),
            "DJANGO_ALLOWED_HOSTS": f"{HOST},127.0.0.1,localhost",
            "CARREL_PUBLIC_URL": f"https://{HOST}",
            "CARREL_TRUSTED_PROXY_COUNT": "1",
            "CARREL_ACCESS_LOG": "true",
            "CARREL_BENCH_ACCESS_LOG": str(place.access_log),
            "CARREL_RATE_LIMIT_TOKEN": RATE_LIMIT,
            "CARREL_RATE_LIMIT_USER": RATE_LIMIT,
            "CARREL_RATE_LIMIT_IP": RATE_LIMIT,
            "CARREL_LOG_LEVEL": "INFO",
            "PYTHONUNBUFFERED": "1",
        }
    )
    for name in ("CELERY_BROKER_URL", "CELERY_RESULT_BACKEND", "DJANGO_DEBUG"):
        os.environ.pop(name, None)
    return place


def admin_database(args: argparse.Namespace, statement: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(f"{args.server.rstrip('/')}/postgres", autocommit=True) as connection:
        connection.execute(sql.SQL(statement).format(sql.Identifier(args.database_name)))


def database_exists(args: argparse.Namespace) -> bool:
    import psycopg

    with psycopg.connect(f"{args.server.rstrip('/')}/postgres", autocommit=True) as connection:
        row = connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", [args.database_name]).fetchone()
    return row is not None


def flush_redis(url: str) -> None:
    import redis

    client = redis.Redis.from_url(url)
    try:
        client.flushdb()
    finally:
        client.close()


def setup_django() -> None:
    import django

    django.setup()


def prepare(args: argparse.Namespace) -> dict[str, Any]:
    """A loaded database; the owner's token and what was loaded."""
    if args.reuse:
        if not database_exists(args):
            raise BenchError(f"--reuse: there is no database {args.database_name} (make one with --keep)")
        setup_django()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)  # the code measured may have added indexes since the load
        return reuse_world()
    admin_database(args, "DROP DATABASE IF EXISTS {} WITH (FORCE)")
    admin_database(args, "CREATE DATABASE {}")
    setup_django()
    from django.core.management import call_command

    from bench import lists_load

    started = time.perf_counter()
    call_command("migrate", verbosity=0)
    log(f"migrated in {time.perf_counter() - started:.1f} s")
    world = lists_load.load(members=args.members, workspaces=args.workspaces, progress=log)
    log(f"loaded in {world.seconds:.1f} s: {json.dumps(world.rows)}")
    return {"token": world.token, "project_id": world.project_id, "rows": world.rows, "load_seconds": world.seconds}


def reuse_world() -> dict[str, Any]:
    from accounts.models import OrgRole, TokenScope
    from accounts.services import token_create
    from bench import lists_load
    from projects.models import Project

    project = Project.objects.filter(name="Lists").select_related("organization").first()
    if project is None:
        raise BenchError("--reuse: the database holds no project named Lists (not a bench/lists database)")
    owner = project.organization.memberships.filter(role=OrgRole.OWNER).select_related("user").first().user
    token = token_create(actor=owner, name="bench lists", scopes=[TokenScope.READ]).secret
    return {"token": token, "project_id": project.pk, "rows": lists_load.table_counts(), "load_seconds": None}


# --- Endpoints ---------------------------------------------------------------------------------------------


def link_targets(header: str) -> dict[str, str]:
    """RFC 8288 Link header → {rel: URL}."""
    targets = {}
    for part in header.split(","):
        match = re.search(r"<([^>]*)>\s*;\s*rel=\"?([^\";]+)\"?", part)
        if match:
            targets[match.group(2)] = match.group(1)
    return targets


def as_path(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def last_page_path(base_url: str, token: str) -> str:
    """The last page of the instance list, the way a client reaches it: the Link header's `last` when the API
    offers one, else the page number from X-Total-Count when it pages by number, else following `next`."""
    first = "/api/v1/instances?page_size=100"
    status, headers, _ = fetch(base_url, first, token=token)
    if status != 200:
        raise BenchError(f"GET {first} answered {status}")
    links = link_targets(headers.get("Link", ""))
    if "last" in links:
        return as_path(links["last"])
    total = int(headers.get("X-Total-Count", "0"))
    next_link = links.get("next", "")
    if "page=" in urllib.parse.urlsplit(next_link).query and "cursor=" not in next_link:
        return f"/api/v1/instances?page={max(1, math.ceil(total / 100))}&page_size=100"
    path = first
    for _ in range(LAST_PAGE_FOLLOW_LIMIT):
        if not next_link:
            return path
        path = as_path(next_link)
        status, headers, _ = fetch(base_url, path, token=token)
        if status != 200:
            raise BenchError(f"GET {path} answered {status}")
        next_link = link_targets(headers.get("Link", "")).get("next", "")
    raise BenchError(f"the instance list has more than {LAST_PAGE_FOLLOW_LIMIT} pages")


def endpoint_paths(names: list[str], base_url: str, token: str, project_id: str) -> dict[str, str]:
    paths = {
        "instances": "/api/v1/instances?page_size=100",
        "users": "/api/v1/users",
        "projects": "/api/v1/projects",
        "audit": "/api/v1/audit",
        "budget": f"/api/v1/projects/{project_id}/budget",
    }
    if "instances_last" in names:
        paths["instances_last"] = last_page_path(base_url, token)
    return {name: paths[name] for name in names}


def check(base_url: str, token: str, paths: dict[str, str]) -> dict[str, dict[str, Any]]:
    """One request per endpoint before measuring: it must answer 200; its size and item count are reported."""
    seen = {}
    for name, path in paths.items():
        status, headers, body = fetch(base_url, path, token=token)
        if status != 200:
            raise BenchError(f"GET {path} answered {status}: {body[:500]!r}")
        data = json.loads(body)
        seen[name] = {
            "items": len(data) if isinstance(data, list) else None,
            "bytes": len(body),
            "total": headers.get("X-Total-Count"),
        }
    return seen


# --- Measuring --------------------------------------------------------------------------------------------


def run_wrk(args: argparse.Namespace, url: str, token: str, seconds: float) -> dict[str, Any]:
    command = [
        shutil.which("wrk") or "wrk",
        "-t",
        str(min(args.wrk_threads, args.connections)),
        "-c",
        str(args.connections),
    ]
    command += ["-d", f"{max(1, round(seconds))}s", "--timeout", "30s", "-s", str(WRK_SCRIPT), url]
    env = {**os.environ, "CARREL_BENCH_TOKEN": token, "CARREL_BENCH_HOST": HOST}
    if args.close:
        env["CARREL_BENCH_CLOSE"] = "1"
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)  # noqa: S603
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    if result.returncode != 0 or not lines:
        raise BenchError(f"wrk failed ({result.returncode}): {result.stdout[-2000:]} {result.stderr[-2000:]}")
    summary: dict[str, Any] = json.loads(lines[-1])
    return summary


def database_backends(args: argparse.Namespace) -> set[int]:
    """The PostgreSQL server processes serving the bench's database (on this machine, when the server is local)."""
    import psycopg

    with psycopg.connect(f"{args.server.rstrip('/')}/postgres", autocommit=True) as connection:
        rows = connection.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s", [args.database_name])
        return {row[0] for row in rows.fetchall()}


def warm_up(base_url: str, path: str, token: str, *, seconds: float, connections: int) -> None:
    """`connections` clients asking in a loop for `seconds`, each waiting for its last answer: unlike a wrk run cut
    short, it leaves the server no abandoned requests to work through during the measured window."""
    deadline = time.monotonic() + seconds

    def client() -> None:
        while time.monotonic() < deadline:
            fetch(base_url, path, token=token)

    with ThreadPoolExecutor(max_workers=connections) as pool:
        for future in [pool.submit(client) for _ in range(connections)]:
            future.result()


def measure(args: argparse.Namespace, server: Server, place: Place, name: str, path: str, token: str) -> dict:
    url = server.base_url + path
    if args.warmup > 0:
        warm_up(server.base_url, path, token, seconds=args.warmup, connections=args.connections)
    server.alive()
    offset = settled_size(place.access_log)  # the warm-up's last requests are not counted
    load_before = loadavg()
    backends = database_backends(args)
    cpu_before = cpu_by_process(pgid=server.process.pid)
    db_cpu_before = cpu_by_process(pids=backends)
    wrk = run_wrk(args, url, token, args.duration)
    load_after = loadavg()
    server.alive()
    settled_size(place.access_log)  # the last lines reach the file
    cpu = cpu_since(cpu_before, cpu_by_process(pgid=server.process.pid))
    db_cpu = cpu_since(db_cpu_before, cpu_by_process(pids=backends | database_backends(args)))
    entries, _ = access_entries(place.access_log, offset)
    path_only = urllib.parse.urlsplit(path).path
    mine = [entry for entry in entries if urllib.parse.urlsplit(entry["path"]).path == path_only]
    durations = [entry["duration_ms"] for entry in mine if entry.get("duration_ms") is not None]
    queries = [entry["queries"] for entry in mine if entry.get("queries") is not None]
    return {
        "endpoint": name,
        "path": path,
        "gunicorn": server.config.label,
        "requests_per_s": round(wrk["requests"] / wrk["seconds"], 1) if wrk["seconds"] else 0.0,
        # No request answered within the window: no latency to give (a longer --duration would).
        "p50_ms": round(wrk["p50_ms"], 1) if wrk["requests"] else None,
        "p99_ms": round(wrk["p99_ms"], 1) if wrk["requests"] else None,
        "queries_per_request": round(float(statistics.median(queries)), 1) if queries else None,
        "server_ms_median": round(statistics.median(durations), 1) if durations else None,
        "errors": wrk["non2xx"] + wrk["socket_errors"],
        "requests": wrk["requests"],
        "logged": len(mine),
        "queries_max": max(queries) if queries else None,
        "server_ms_p99": round(percentile(durations, 0.99), 1) if durations else None,
        # gunicorn's CPU time (all workers) per request answered: less sensitive to a busy machine than requests/s.
        "web_cpu_ms_per_request": round(cpu * 1000 / len(mine), 1) if mine else None,
        # PostgreSQL's CPU time for the same requests (its backends for the bench's database; 0 if not local;
        # a little low when a backend closed during the window).
        "db_cpu_ms_per_request": round(db_cpu * 1000 / len(mine), 1) if mine else None,
        "statuses": wrk["statuses"],
        "socket_errors": wrk["socket"],
        "connections": args.connections,
        "keep_alive": not args.close,
        "seconds": round(wrk["seconds"], 1),
        "loadavg_before": load_before,
        "loadavg_after": load_after,
    }


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(fraction * len(ordered)) - 1))]


def commit() -> str:
    git = shutil.which("git")
    if git is None:
        return "unknown"
    try:
        head = subprocess.run(  # noqa: S603 (git, fixed arguments)
            [git, "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(  # noqa: S603
            [git, "status", "--porcelain", "--untracked-files=no"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+changes" if dirty else "")


def log(message: str) -> None:
    print(f"# {message}", file=sys.stderr, flush=True)


@dataclass
class Run:
    servers: list[Server] = field(default_factory=list)
    failed: bool = False


def run(args: argparse.Namespace, place: Place, state: Run) -> None:
    if shutil.which("wrk") is None:
        raise BenchError("wrk is not installed (bench/lists installs it with apt-get when it can)")
    flush_redis(place.redis_url)
    world = prepare(args)
    from django.db import connections

    connections.close_all()  # gunicorn's workers have their own; none of ours stays open
    log(
        f"commit {commit()}; load average {loadavg()}; {os.cpu_count()} CPUs; CPU calibration "
        f"{cpu_calibration_ms():.0f} ms (a fixed Python loop: runs on a shared VM compare at a similar figure)"
    )
    for config in args.configs:
        server = start_gunicorn(config, place.work_dir, args.port or free_port())
        state.servers.append(server)
        try:
            paths = endpoint_paths(args.endpoints, server.base_url, world["token"], world["project_id"])
            seen = check(server.base_url, world["token"], paths)
            log(f"gunicorn {config.label}: " + json.dumps(seen))
            for name, path in paths.items():
                result = measure(args, server, place, name, path, world["token"])
                result["items"] = seen[name]["items"]
                print(json.dumps(result), flush=True)
                if result["errors"] or not result["requests"]:
                    state.failed = True
                    log(f"{name}: {result['errors']} errors, {result['requests']} requests answered in the window")
        finally:
            server.stop()


def cleanup(args: argparse.Namespace, place: Place, state: Run) -> None:
    for server in state.servers:
        with contextlib.suppress(Exception):
            server.stop()
    with contextlib.suppress(Exception):
        from django.db import connections

        connections.close_all()
    if not (args.keep or args.reuse):
        with contextlib.suppress(Exception):
            admin_database(args, "DROP DATABASE IF EXISTS {} WITH (FORCE)")
    with contextlib.suppress(Exception):
        flush_redis(place.redis_url)
    if args.keep or state.failed:
        log(f"logs kept in {place.work_dir}")
    else:
        shutil.rmtree(place.work_dir, ignore_errors=True)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # SIGTERM unwinds like Ctrl-C, so the finally below stops everything; SIGINT too when the shell that started
    # the bench in the background had it ignored.
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)
    place = environment(args)
    state = Run()
    try:
        run(args, place, state)
    except KeyboardInterrupt:
        log("interrupted")
        return 130
    except BenchError as error:
        log(f"failed: {error}")
        state.failed = True
    finally:
        cleanup(args, place, state)
    return 1 if state.failed else 0


if __name__ == "__main__":
    sys.exit(main())
