"""Time the money endpoints over a large ledger on PostgreSQL (issue #9: each under 100 ms server time).

Creates a fresh database, migrates it, builds one organization (America/New_York: a time zone with daylight
saving time) with one budget pool, `--projects` projects each with an allocation, `--workspaces` workspaces
(running, stopped, hibernated) with a few state transitions, and loads `--rows` CostEntry rows spread over a
year of days with one INSERT … SELECT over generate_series (compute and storage rows, ~14 per workspace-day).
Then it sends each request `--requests` times through Django's test Client in this process (the whole server
side: middleware, bearer-token authentication, rate limiting, view, serializer, rendering; no network or HTTP
server), and prints one JSON line per endpoint with the median and p95 in milliseconds and the queries per
request (counted on one more request). The database is dropped at the end unless --keep.
"""

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

START_OF_DAY_SECONDS = 5000  # 14 pieces of 5,000 s fit in the shortest (23-hour) day


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--workspaces", type=int, default=200)
    parser.add_argument("--projects", type=int, default=20)
    parser.add_argument("--requests", type=int, default=20, help="timed requests per endpoint")
    parser.add_argument("--database-name", default="carrel_bench_money")
    parser.add_argument(
        "--server",
        default=os.environ.get("CARREL_BENCH_PG", "postgres://postgres@127.0.0.1:5432"),
        help="PostgreSQL server URL, without a database name",
    )
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument("--reuse", action="store_true", help="time a database kept by an earlier --keep run")
    parser.add_argument(
        "--list-workspaces",
        type=int,
        default=10_000,
        help="then add this many running workspaces and count the queries of GET /api/v1/instances (0: skip)",
    )
    return parser.parse_args()


def recreate_database(server: str, name: str, *, drop_only: bool = False) -> None:
    import psycopg

    with psycopg.connect(f"{server}/postgres", autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if not drop_only:
            connection.execute(f'CREATE DATABASE "{name}"')


def setup_django(server: str, name: str) -> None:
    os.environ["DATABASE_URL"] = f"{server}/{name}"
    os.environ.pop("REDIS_URL", None)  # a file cache in a throwaway folder: the bench measures the database work
    os.environ["CARREL_VAR_DIR"] = tempfile.mkdtemp(prefix="carrel-bench-money-")
    os.environ["DJANGO_SETTINGS_MODULE"] = "bench.bench_settings"
    for scope in ("TOKEN", "USER", "IP"):
        os.environ[f"CARREL_RATE_LIMIT_{scope}"] = "100000000/hour"
    import django

    django.setup()


def build_world(args):
    """The organization, pool, projects with allocations, workspaces and transitions (ORM, small)."""
    from datetime import timedelta
    from decimal import Decimal

    from django.utils import timezone

    from accounts.models import Membership, Organization, OrgRole, TokenScope, User
    from accounts.services import token_create
    from budgets.models import Allocation, BudgetPool
    from projects.models import Project, ProjectMember, ProjectRole
    from workspaces.models import StateTransition, Workspace

    now = timezone.now()
    owner = User.objects.create_user(email="pi@bench.example", password="bench password 123")
    org = Organization.objects.create(name="Bench Lab", slug="bench-lab", time_zone="America/New_York")
    Membership.objects.create(organization=org, user=owner, role=OrgRole.OWNER)
    pool = BudgetPool.objects.create(
        organization=org,
        name="Bench grant",
        total_amount=Decimal("2000000"),
        start_date=now - timedelta(days=400),
        end_date=now + timedelta(days=400),
    )
    projects = []
    for index in range(args.projects):
        project = Project.objects.create(organization=org, name=f"project-{index:02d}", created_by=owner)
        ProjectMember.objects.create(project=project, user=owner, role=ProjectRole.OWNER)
        Allocation.objects.create(
            pool=pool,
            project=project,
            amount=Decimal("50000"),
            alert_thresholds=["0.5", "0.8", "0.9"],
            prevent_launch_threshold=Decimal("0.95"),
        )
        projects.append(project)
    states = ["running", "stopped", "hibernated", "running"]
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    workspaces = Workspace.objects.bulk_create(
        [
            Workspace(
                organization=org,
                project=projects[index % args.projects],
                owner=owner,
                name=f"ws-{index:04d}",
                state=states[index % len(states)],
                instance_type="t3.large",
                region="us-east-1",
                hourly_rate=Decimal("0.0832"),
                hibernation_capable=True,
                ledger_through=midnight,
                volume_billed=True,
                storage_lines=[{"item": "gp3 storage", "units": "100", "unit": "GB-month", "rate": "0.08"}],
                storage_monthly_rate=Decimal("8"),
                template_snapshot={"idle_defaults": {"action": "hibernate"}} if index % 3 else {},
                created_at=now - timedelta(days=370),
                state_changed_at=now - timedelta(days=index % 20),
            )
            for index in range(args.workspaces)
        ]
    )
    transitions = []
    for workspace in workspaces:
        for day in range(0, 360, 12):  # a run and a rest every 12 days: 30 pairs a workspace
            start = now - timedelta(days=day, hours=10)
            transitions.append(
                StateTransition(
                    workspace=workspace,
                    from_state="hibernated",
                    to_state="running",
                    hourly_rate=Decimal("0.0832"),
                    created_at=start,
                )
            )
            transitions.append(
                StateTransition(
                    workspace=workspace,
                    from_state="running",
                    to_state="hibernated",
                    hourly_rate=Decimal("0"),
                    created_at=start + timedelta(hours=8),
                )
            )
    StateTransition.objects.bulk_create(transitions, batch_size=5000)
    token = token_create(actor=owner, name="bench", scopes=[TokenScope.READ, TokenScope.WRITE])
    return {"org": org, "pool": pool, "projects": projects, "token": token.secret, "transitions": len(transitions)}


LOAD_SQL = """
CREATE TEMP TABLE bench_ws AS
SELECT row_number() OVER (ORDER BY w.id) - 1 AS idx, w.id AS workspace_id, w.project_id, a.id AS allocation_id,
       w.owner_id, w.organization_id
FROM workspaces_workspace w JOIN budgets_allocation a ON a.project_id = w.project_id;

INSERT INTO budgets_costentry (organization_id, workspace_id, project_id, allocation_id, member_id, kind, item,
                               start, "end", day, quantity, unit, rate, discount_percent, amount, created_at)
SELECT w.organization_id, w.workspace_id, w.project_id, w.allocation_id, w.owner_id,
       CASE WHEN s.piece % 7 = 0 THEN 'storage' ELSE 'compute' END,
       CASE WHEN s.piece % 7 = 0 THEN 'gp3 storage' ELSE 't3.large' END,
       s.start, s.start + interval '5000 seconds', s.day,
       CASE WHEN s.piece % 7 = 0 THEN 100 * 5000 / 2592000.0 ELSE 5000 END,
       CASE WHEN s.piece % 7 = 0 THEN 'GB-month' ELSE 'seconds' END,
       CASE WHEN s.piece % 7 = 0 THEN 0.08 ELSE 0.0832 END,
       0,
       round(CASE WHEN s.piece % 7 = 0 THEN 100 * 5000 / 2592000.0 * 0.08 ELSE 5000 * 0.0832 / 3600 END, 8),
       now()
FROM (
    SELECT g % %(workspaces)s AS idx,
           (g / %(workspaces)s) %% 14 AS piece,
           %(first_day)s::date + (g / %(workspaces)s / 14)::int AS day,
           ((%(first_day)s::date + (g / %(workspaces)s / 14)::int)::timestamp AT TIME ZONE 'America/New_York')
             + make_interval(secs => ((g / %(workspaces)s) %% 14) * 5000) AS start
    FROM generate_series(0, %(rows)s - 1) AS g
) AS s
JOIN bench_ws w ON w.idx = s.idx;

INSERT INTO budgets_costday (project_id, day, kind, amount)
SELECT project_id, day, kind, sum(amount) FROM budgets_costentry GROUP BY project_id, day, kind;

UPDATE workspaces_workspace w SET cost_closed = s.total
FROM (SELECT workspace_id, sum(amount) AS total FROM budgets_costentry GROUP BY workspace_id) AS s
WHERE w.id = s.workspace_id;
"""


def load_ledger(args) -> float:
    from datetime import timedelta

    from django.db import connection
    from django.utils import timezone

    from budgets.ledger import zone_of

    days = -(-args.rows // (args.workspaces * 14))
    today = timezone.now().astimezone(zone_of("America/New_York")).date()
    first_day = today - timedelta(days=days)  # the last day loaded is yesterday
    sql = LOAD_SQL.replace("%(workspaces)s", str(args.workspaces)).replace("%%", "%")
    sql = sql.replace("%(first_day)s", f"'{first_day.isoformat()}'").replace("%(rows)s", str(args.rows))
    started = time.perf_counter()
    with connection.cursor() as cursor:
        for statement in filter(str.strip, sql.split(";")):
            cursor.execute(statement)
        # The steady state: autovacuum visits an append-only table after inserts too (PostgreSQL 13+), which keeps
        # its visibility map current for index-only scans.
        cursor.execute("VACUUM ANALYZE budgets_costentry")
        cursor.execute("ANALYZE workspaces_workspace")
        cursor.execute("ANALYZE workspaces_statetransition")
    return time.perf_counter() - started


def add_running_workspaces(project, count: int) -> None:
    """`count` running workspaces shaped as launches leave them: a finished job and ledger rows (with their share
    of the daily rollup), an open interval priced on read."""
    from datetime import timedelta

    from django.utils import timezone

    from budgets import ledger
    from budgets.models import CostEntry
    from workspaces.models import ProvisionJob, Workspace

    now = timezone.now()
    owner = project.created_by
    workspaces = Workspace.objects.bulk_create(
        (
            Workspace(
                organization_id=project.organization_id,
                project=project,
                owner=owner,
                name=f"list-{index:05d}",
                state="running",
                instance_type="t3.large",
                region="us-east-1",
                hourly_rate=Decimal("0.0832"),
                provider_instance_id=f"i-{index:017x}",
                volume_billed=True,
                storage_monthly_rate=Decimal("8"),
                storage_lines=[{"item": "gp3 storage", "units": "100", "unit": "GB-month", "rate": "0.08"}],
                ledger_through=now - timedelta(hours=1),
                run_started_at=now - timedelta(hours=2),
                run_billed_seconds=Decimal(3600),
            )
            for index in range(count)
        ),
        batch_size=2000,
    )
    ProvisionJob.objects.bulk_create(
        (ProvisionJob(workspace=w, status="succeeded", progress=100, finished_at=now) for w in workspaces),
        batch_size=2000,
    )
    start = now - timedelta(hours=2)
    rows = CostEntry.objects.bulk_create(
        (
            CostEntry(
                organization_id=project.organization_id,
                workspace=w,
                project=project,
                member=owner,
                kind="compute",
                item="t3.large",
                start=start,
                end=start + timedelta(hours=1),
                day=start.date(),
                quantity=Decimal(3600),
                unit="seconds",
                rate=Decimal("0.0832"),
                amount=Decimal("0.0832"),
            )
            for w in workspaces
        ),
        batch_size=2000,
    )
    ledger.roll_up(rows)


def existing_world():
    from accounts.models import TokenScope, User
    from accounts.services import token_create
    from budgets.models import BudgetPool
    from projects.models import Project

    owner = User.objects.get(email="pi@bench.example")
    return {
        "pool": BudgetPool.objects.get(name="Bench grant"),
        "projects": list(Project.objects.order_by("name")),
        "token": token_create(actor=owner, name="bench", scopes=[TokenScope.READ, TokenScope.WRITE]).secret,
    }


def time_endpoint(client, path: str, requests: int) -> dict:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    response = client.get(path)  # warm-up
    assert response.status_code == 200, (path, response.status_code, response.content[:500])
    timings = []
    for _ in range(requests):
        started = time.perf_counter()
        response = client.get(path)
        timings.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, (path, response.status_code)
    with CaptureQueriesContext(connection) as captured:
        client.get(path)
    timings.sort()
    p95 = timings[min(len(timings) - 1, max(0, round(0.95 * len(timings)) - 1))]
    return {
        "endpoint": path,
        "median_ms": round(statistics.median(timings), 1),
        "p95_ms": round(p95, 1),
        "max_ms": round(timings[-1], 1),
        "queries": len(captured.captured_queries),
        "requests": requests,
    }


def main() -> int:
    args = parse_args()
    if not args.reuse:
        recreate_database(args.server, args.database_name)
    try:
        setup_django(args.server, args.database_name)
        from datetime import timedelta

        from django.core.management import call_command
        from django.test import Client
        from django.utils import timezone

        from budgets.ledger import zone_of
        from budgets.models import CostEntry
        from workspaces.models import Workspace

        if args.reuse:
            world = existing_world()
        else:
            started = time.perf_counter()
            call_command("migrate", verbosity=0)
            migrated = time.perf_counter() - started
            world = build_world(args)
            loaded = load_ledger(args)
            print(
                json.dumps(
                    {
                        "setup": "ledger loaded",
                        "rows": CostEntry.objects.count(),
                        "workspaces": args.workspaces,
                        "projects": args.projects,
                        "transitions": world["transitions"],
                        "migrate_s": round(migrated, 1),
                        "load_s": round(loaded, 1),
                    }
                ),
                flush=True,
            )
        client = Client(HTTP_AUTHORIZATION=f"Bearer {world['token']}")
        project = world["projects"][0]
        end = timezone.now().astimezone(zone_of("America/New_York")).date()
        month = f"start_date={end - timedelta(days=29)}&end_date={end}"
        paths = [
            f"/api/v1/budgets/{world['pool'].pk}/summary",
            f"/api/v1/projects/{project.pk}/budget",
            f"/api/v1/costs/history?granularity=daily&{month}",
            f"/api/v1/costs/history?granularity=daily&{month}&project={project.pk}&group_by=workspace",
            f"/api/v1/projects/{project.pk}/cost-analysis",
            "/api/v1/costs/current",
        ]
        for path in paths:
            print(json.dumps(time_endpoint(client, path, args.requests)), flush=True)
        if args.list_workspaces:
            list_pages = ["/api/v1/instances?page_size=100", "/api/v1/instances?page_size=500"]
            for path in list_pages:
                print(json.dumps({**time_endpoint(client, path, 5), "workspaces": Workspace.objects.count()}))
            add_running_workspaces(project, args.list_workspaces)
            total = Workspace.objects.count()
            last_page = -(-total // 100)
            for path in [*list_pages, f"/api/v1/instances?page_size=100&page={last_page}"]:
                print(json.dumps({**time_endpoint(client, path, 5), "workspaces": total}), flush=True)
    finally:
        if not args.keep and not args.reuse:
            from django.db import connections

            connections.close_all()
            recreate_database(args.server, args.database_name, drop_only=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
