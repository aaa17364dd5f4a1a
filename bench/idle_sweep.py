"""Time the idle sweep (issue #11: 10,000 running workspaces with heartbeats in under 1 s, constant queries).

Creates a fresh PostgreSQL database, migrates it, and loads running workspaces with their WorkspaceIdle rows as
minute-by-minute heartbeats leave them (bulk inserts, no cloud): most busy, some quiet for less than the window,
1% due for a warning, 1% warned long enough ago to be acted on. Then it runs the sweep `--runs` times at
`--small` workspaces and again at `--count`, putting the warnings back between runs so that each does the same
work, and prints one JSON line per size: the median and worst seconds, the queries per sweep, and what it
decided. The enqueued tasks (one e-mail per warning, one action per workspace to act on) go to a filesystem
broker in a throwaway folder (REDIS_URL is ignored), and no worker runs them. The database is dropped at the end
unless --keep.
"""

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# The share of workspaces in each group (the rest are busy).
GROUPS = (("warn", 0.01), ("act", 0.01), ("quiet", 0.18))


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=10_000, help="running workspaces")
    parser.add_argument("--small", type=int, default=1_000, help="time this many first, to compare query counts")
    parser.add_argument("--runs", type=int, default=7, help="timed sweeps per size")
    parser.add_argument("--database-name", default="carrel_bench_idle")
    parser.add_argument(
        "--server",
        default=os.environ.get("CARREL_BENCH_PG", "postgres://postgres@127.0.0.1:5432"),
        help="PostgreSQL server URL, without a database name",
    )
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    return parser.parse_args()


def recreate_database(server: str, name: str, *, drop_only: bool = False) -> None:
    import psycopg

    with psycopg.connect(f"{server}/postgres", autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if not drop_only:
            connection.execute(f'CREATE DATABASE "{name}"')


def setup_django(server: str, name: str) -> None:
    os.environ["DATABASE_URL"] = f"{server}/{name}"
    # A file cache and a filesystem broker in a throwaway folder: the enqueued tasks land there, never in a real
    # queue a worker could take them from.
    os.environ.pop("REDIS_URL", None)
    os.environ["CARREL_VAR_DIR"] = tempfile.mkdtemp(prefix="carrel-bench-idle-")
    os.environ["DJANGO_SETTINGS_MODULE"] = "bench.bench_settings"
    import django

    django.setup()


def build_world():
    from accounts.models import Membership, Organization, OrgRole, User
    from projects.models import Project, ProjectMember, ProjectRole

    owner = User.objects.create_user(email="bench@idle.example", password="bench-password-123")
    org = Organization.objects.create(name="Idle Bench", slug="idle-bench")
    Membership.objects.create(organization=org, user=owner, role=OrgRole.OWNER)
    project = Project.objects.create(organization=org, name="Sweep", created_by=owner)
    ProjectMember.objects.create(project=project, user=owner, role=ProjectRole.OWNER)
    return org, project, owner


def group_of(index: int, count: int) -> str:
    position = index / count
    edge = 0.0
    for name, share in GROUPS:
        edge += share
        if position < edge:
            return name
    return "busy"


def load(world, *, start: int, count: int, total: int, now) -> None:
    """Workspaces start..start+count (of `total`, which fixes the groups), running, with heartbeat state."""
    from datetime import timedelta
    from decimal import Decimal

    from idle.models import WorkspaceIdle
    from idle.profiles import BUILTIN_PROFILES
    from workspaces.models import Workspace

    org, project, owner = world
    standard = BUILTIN_PROFILES["standard"].thresholds()
    sample = {
        "cpu_percent": [0.5] * 16,
        "memory_percent": 6.0,
        "network_bytes_per_s": 80.0,
        "disk_bytes_per_s": 512.0,
        "gpu_percent": [],
        "sessions": 0,
        "busy": False,
        "busy_reasons": [],
        "last_input_at": None,
        "agent_version": "1.0",
        "measured_at": now.isoformat(),
    }
    workspaces, states = [], []
    for index in range(start, start + count):
        group = group_of(index, total)
        workspace = Workspace(
            organization=org,
            project=project,
            owner=owner,
            name=f"{group}-{index:05d}",
            state="running",
            instance_type="t3.medium",
            region="us-east-1",
            hourly_rate=Decimal("0.0416"),
            hibernation_capable=True,
            created_at=now - timedelta(hours=6),
        )
        workspaces.append(workspace)
        quiet_minutes = {"warn": 52, "act": 75, "quiet": 20, "busy": 300}[group]
        states.append(
            WorkspaceIdle(
                workspace=workspace,
                profile="standard",
                configured_at=now - timedelta(hours=6),
                signal_source="agent",
                observed_since=now - timedelta(minutes=quiet_minutes),
                last_observed_at=now - timedelta(seconds=30),
                last_active_at=now - timedelta(minutes=2) if group == "busy" else None,
                active_reasons=["cpu"] if group == "busy" else [],
                last_sample={**sample, "cpu_percent": [60.0] + [0.5] * 15} if group == "busy" else sample,
                warned_at=now - timedelta(minutes=15) if group == "act" else None,
                **standard,
            )
        )
    Workspace.objects.bulk_create(workspaces, batch_size=2000)
    WorkspaceIdle.objects.bulk_create(states, batch_size=2000)


def reset() -> None:
    """Put the warnings back as loaded (untimed), so that every sweep warns and acts on the same workspaces."""
    from idle.models import IdleEvent, WorkspaceIdle

    WorkspaceIdle.objects.filter(workspace__name__startswith="warn-").update(warned_at=None)
    IdleEvent.objects.all().delete()


def time_sweeps(*, runs: int, now) -> dict:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from idle.services.sweep import idle_sweep

    seconds, queries, result = [], [], None
    for _ in range(runs):
        reset()
        with CaptureQueriesContext(connection) as context:
            started = time.perf_counter()
            result = idle_sweep(now=now)
            seconds.append(time.perf_counter() - started)
        queries.append(len(context.captured_queries))
    assert result is not None
    return {
        "seconds_median": round(statistics.median(seconds), 4),
        "seconds_max": round(max(seconds), 4),
        "queries": sorted(set(queries)),
        "judged": result.checked,
        "warned": len(result.warned),
        "acting": len(result.acting),
        "cleared": len(result.cleared),
    }


def main() -> int:
    args = parse_args()
    recreate_database(args.server, args.database_name)
    try:
        setup_django(args.server, args.database_name)
        from django.core.management import call_command
        from django.db import connection
        from django.utils import timezone

        call_command("migrate", verbosity=0)
        world = build_world()
        now = timezone.now()
        done = 0
        for size in sorted({min(args.small, args.count), args.count}):
            started = time.perf_counter()
            load(world, start=done, count=size - done, total=args.count, now=now)
            with connection.cursor() as cursor:
                cursor.execute("ANALYZE")
            loaded = time.perf_counter() - started
            done = size
            # Every size is judged at the same moment the state was written for.
            report = {"workspaces": size, "load_s": round(loaded, 1), **time_sweeps(runs=args.runs, now=now)}
            report["under_1s"] = report["seconds_max"] < 1.0
            print(json.dumps(report), flush=True)
        connection.close()
    finally:
        if not args.keep:
            from django.db import connections

            connections.close_all()
            recreate_database(args.server, args.database_name, drop_only=True)
        shutil.rmtree(os.environ["CARREL_VAR_DIR"], ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
