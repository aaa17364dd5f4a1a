"""What one request costs inside Django, without a web server or load: the CPU and wall time of `--requests`
requests to each path, in this process, against a database bench/lists loaded and kept (`bench/lists --keep`).

    .venv/bin/python bench/request_cpu.py "/api/v1/instances?page_size=100" "/api/v1/projects/{project}/budget"

`{project}` stands for the loaded project's id. Prints one JSON line per path: cpu_ms_per_request (this process:
Django, DRF, the ORM and the driver; PostgreSQL's own work is not in it), wall_ms_p25/median (with the database),
queries. To compare two commits, run it on each, alternating, a few times: a shared VM's speed moves by a fifth
within minutes. The token it needs is created for the run and deleted after it.
"""

import argparse
import json
import os
import secrets
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("paths", nargs="+")
    parser.add_argument("--requests", type=int, default=300, help="measured requests per path (default 300)")
    parser.add_argument("--warmup", type=int, default=20, help="unmeasured requests per path first (default 20)")
    parser.add_argument("--database-name", default="carrel_bench_lists", help="the kept database (bench/lists')")
    parser.add_argument("--server", default="postgres://postgres@127.0.0.1:5432", help="PostgreSQL, no database")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/12", help="Redis db for the cache")
    args = parser.parse_args()

    sys.path.insert(0, str(ROOT))
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "bench.lists_settings",
            "DATABASE_URL": f"{args.server.rstrip('/')}/{args.database_name}",
            "REDIS_URL": args.redis,
            "CARREL_CACHE_PREFIX": "carrel-bench-request-cpu",
            "DJANGO_SECRET_KEY": secrets.token_urlsafe(48),
            "DJANGO_ALLOWED_HOSTS": "carrel.example,testserver",
            "CARREL_PUBLIC_URL": "https://carrel.example",
            "CARREL_TRUSTED_PROXY_COUNT": "1",
            "CARREL_ACCESS_LOG": "false",
            "CARREL_LOG_LEVEL": "WARNING",
            **{f"CARREL_RATE_LIMIT_{scope}": "1000000000/hour" for scope in ("TOKEN", "USER", "IP")},
        }
    )
    import django

    django.setup()
    from django.db import connection
    from django.test import Client

    from accounts.models import ApiToken, TokenScope, User
    from accounts.services import token_create
    from projects.models import Project

    owner = User.objects.get(email="owner@bench-lists.example")  # bench/lists_load.py's
    project = Project.objects.get(organization__memberships__user=owner, name="Lists")
    issued = token_create(actor=owner, name="bench request_cpu", scopes=[TokenScope.READ])
    # As the TLS proxy in front forwards a request (production settings refuse plain HTTP).
    client = Client(
        HTTP_AUTHORIZATION=f"Bearer {issued.secret}",
        HTTP_HOST="carrel.example",
        HTTP_X_FORWARDED_PROTO="https",
        secure=True,
    )
    queries: list[str] = []

    def count(execute, sql, params, many, context):
        queries.append(sql)
        return execute(sql, params, many, context)

    try:
        for raw in args.paths:
            path = raw.replace("{project}", project.pk)
            for _ in range(args.warmup):
                response = client.get(path)
                if response.status_code != 200:
                    raise SystemExit(f"{path}: {response.status_code} {response.content[:300]!r}")
            queries.clear()
            with connection.execute_wrapper(count):
                client.get(path)
            walls = []
            started = time.process_time()
            for _ in range(args.requests):
                begin = time.perf_counter()
                client.get(path)
                walls.append((time.perf_counter() - begin) * 1000)
            cpu = (time.process_time() - started) * 1000 / args.requests
            quartiles = statistics.quantiles(walls, n=4)
            print(
                json.dumps(
                    {
                        "path": raw,
                        "cpu_ms_per_request": round(cpu, 2),
                        "wall_ms_p25": round(quartiles[0], 2),
                        "wall_ms_median": round(quartiles[1], 2),
                        "queries": len(queries),
                        "requests": args.requests,
                    }
                )
            )
    finally:
        ApiToken.objects.filter(pk=issued.token.pk).delete()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
