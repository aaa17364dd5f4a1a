"""Health and status of the service itself."""

import time

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from platform_site.tasks import WORKER_HEARTBEAT_KEY

STARTED_AT = time.time()


def format_duration(seconds: float) -> str:
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h {minutes}m {secs}s"


def database_status() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return "connected"
    except Exception:
        return "unreachable"


def redis_status() -> str:
    if not settings.REDIS_URL:
        return "not_configured"
    import redis

    try:
        redis.Redis.from_url(settings.REDIS_URL, socket_timeout=0.5, socket_connect_timeout=0.5).ping()
        return "connected"
    except Exception:
        return "unreachable"


def worker_status() -> tuple[str, float | None]:
    beat = cache.get(WORKER_HEARTBEAT_KEY)
    if not beat:
        return "unknown", None
    age = time.time() - beat["at"]
    return ("running" if age <= settings.CARREL_WORKER_HEARTBEAT_MAX_AGE else "unreachable"), beat["at"]


class HealthcheckView(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]

    @extend_schema(
        operation_id="healthcheck_retrieve",
        summary="Liveness: 200 while the web process answers and reaches its database.",
        responses=inline_serializer("Healthcheck", {"status": serializers.CharField()}),
        tags=["system"],
    )
    def get(self, request):
        database = database_status()
        healthy = database == "connected"
        return Response(
            {"status": "ok" if healthy else "degraded", "database": database}, status=200 if healthy else 503
        )


class DaemonStatusView(APIView):
    @extend_schema(
        summary="Service status: version, uptime, and whether database, Redis and workers are reachable.",
        responses=inline_serializer(
            "DaemonStatus",
            {
                "status": serializers.ChoiceField(choices=["healthy", "degraded"]),
                "version": serializers.CharField(),
                "uptime": serializers.CharField(),
                "uptime_seconds": serializers.IntegerField(),
                "api_version": serializers.CharField(),
                "database": serializers.CharField(),
                "redis": serializers.CharField(),
                "worker": serializers.CharField(),
                "worker_last_seen": serializers.DateTimeField(allow_null=True),
                "organizations": serializers.IntegerField(),
                "projects": serializers.IntegerField(),
                "total_instances": serializers.IntegerField(),
                "active_instances": serializers.IntegerField(),
                "active_profiles": serializers.IntegerField(),
                "cloud_accounts": serializers.ListField(
                    child=inline_serializer(
                        "CloudAccountReconcileStatus",
                        {
                            "id": serializers.CharField(),
                            "name": serializers.CharField(),
                            "last_reconciled_at": serializers.DateTimeField(allow_null=True),
                            "last_reconcile_error": serializers.CharField(allow_blank=True),
                        },
                    ),
                    help_text="The caller's organizations' cloud accounts and how their last reconciliation went.",
                ),
            },
        ),
        tags=["system"],
    )
    def get(self, request):
        from datetime import UTC, datetime

        from accounts.models import Organization
        from projects.models import Project
        from workspaces.models import CloudAccount, Workspace, WorkspaceState

        uptime = time.time() - STARTED_AT
        database, redis_state = database_status(), redis_status()
        worker, last_seen = worker_status()
        user = request.user
        workspaces = Workspace.objects.visible_to(user)
        accounts = list(
            CloudAccount.objects.visible_to(user)
            .order_by("organization_id", "name")
            .values("id", "name", "last_reconciled_at", "last_reconcile_error")
        )
        healthy = (
            database == "connected"
            and redis_state != "unreachable"
            and worker == "running"
            and not any(account["last_reconcile_error"] for account in accounts)
        )
        return Response(
            {
                "status": "healthy" if healthy else "degraded",
                "version": settings.CARREL_VERSION,
                "uptime": format_duration(uptime),
                "uptime_seconds": int(uptime),
                "api_version": settings.CARREL_API_VERSION,
                "database": database,
                "redis": redis_state,
                "worker": worker,
                "worker_last_seen": datetime.fromtimestamp(last_seen, UTC) if last_seen else None,
                "organizations": Organization.objects.visible_to(user).count(),
                "projects": Project.objects.visible_to(user).count(),
                "total_instances": workspaces.count(),
                "active_instances": workspaces.filter(state=WorkspaceState.RUNNING).count(),
                "active_profiles": len(accounts),
                "cloud_accounts": accounts,
            }
        )
