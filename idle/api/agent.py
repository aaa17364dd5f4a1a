"""The workspace agent's two routes: POST /api/v1/agent/heartbeat (agent token only) and GET /api/v1/agent/script
(the agent itself, public: it is code and holds no secret)."""

from functools import cache
from pathlib import Path

from django.conf import settings
from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, throttling
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from idle.authentication import AgentTokenAuthentication, IsWorkspaceAgent
from idle.services.heartbeat import heartbeat_record
from platform_site.api import fields as strict
from platform_site.api import ratelimit

AGENT_SCRIPT = Path(__file__).resolve().parent.parent / "agent" / "carrel_agent.py"
# Heartbeats come once a minute; this leaves room for restarts and retries, not for a loop.
DEFAULT_HEARTBEAT_RATE = "10/minute"
HEARTBEAT_INTERVAL_SECONDS = 60

MAX_CORES = 1024
MAX_GPUS = 64
MAX_SESSIONS = 10_000
MAX_BUSY_REASONS = 16
MAX_REASON_LENGTH = 200
# 1 TB/s: far beyond any instance's network or disks, so only nonsense is refused.
MAX_BYTES_PER_SECOND = 1e12


def _percent(**kwargs) -> strict.FloatField:
    return strict.FloatField(min_value=0.0, max_value=100.0, **kwargs)


class HeartbeatSerializer(serializers.Serializer):
    """What the agent measured since its previous heartbeat (idle/agent/carrel_agent.py, `sample`).

    Every field is optional: a signal the agent could not read is left out (or null) and is not judged.
    Unknown fields are ignored, so a newer agent can talk to an older server."""

    cpu_percent = serializers.ListField(
        child=_percent(), max_length=MAX_CORES, required=False, help_text="Busy % of each core (at most 1024)."
    )
    memory_percent = _percent(required=False, allow_null=True, help_text="Memory in use, %.")
    network_bytes_per_s = strict.FloatField(
        min_value=0.0,
        max_value=MAX_BYTES_PER_SECOND,
        required=False,
        allow_null=True,
        help_text="Bytes per second received plus sent (all interfaces but loopback).",
    )
    disk_bytes_per_s = strict.FloatField(
        min_value=0.0,
        max_value=MAX_BYTES_PER_SECOND,
        required=False,
        allow_null=True,
        help_text="Bytes per second read plus written (whole disks).",
    )
    gpu_percent = serializers.ListField(
        child=_percent(), max_length=MAX_GPUS, required=False, help_text="Utilisation % of each GPU (at most 64)."
    )
    sessions = strict.IntegerField(
        min_value=0, max_value=MAX_SESSIONS, required=False, allow_null=True, help_text="Users logged in now."
    )
    last_input_at = strict.DateTimeField(
        required=False, allow_null=True, help_text="When someone last typed in a session's terminal."
    )
    busy = strict.BooleanField(required=False, help_text="A registered keep-alive process is running.")
    busy_reasons = serializers.ListField(
        child=strict.CharField(max_length=MAX_REASON_LENGTH, allow_blank=True),
        max_length=MAX_BUSY_REASONS,
        required=False,
        help_text="What keeps it busy, e.g. 'keep-alive: python train.py'.",
    )
    agent_version = strict.CharField(max_length=32, required=False, allow_blank=True)


class HeartbeatThrottle(throttling.BaseThrottle):
    """Per agent token (its workspace), over the API's own per-token limit: CARREL_AGENT_HEARTBEAT_RATE."""

    def allow_request(self, request, view) -> bool:
        rate = getattr(settings, "CARREL_AGENT_HEARTBEAT_RATE", DEFAULT_HEARTBEAT_RATE)
        self.window = ratelimit.hit("agent", str(request.auth.pk), rate)
        return not self.window.exceeded

    def wait(self) -> float:
        return self.window.retry_after()


class HeartbeatView(APIView):
    authentication_classes = [AgentTokenAuthentication]
    permission_classes = [IsWorkspaceAgent]
    throttle_classes = [HeartbeatThrottle]

    @extend_schema(
        operation_id="agent_heartbeat_create",
        summary="The workspace agent reports what it measured (agent token only; once a minute).",
        description=(
            "Sent by `carrel-agent` (GET /api/v1/agent/script) with the workspace's agent token, which its user "
            "data carries. The measurement becomes the workspace's latest usage (GET /api/v1/instances/{name}/"
            "sysinfo) and is judged against its idle thresholds. 401 TOKEN_REVOKED once the workspace is "
            "terminating: the agent stops."
        ),
        request=HeartbeatSerializer,
        responses=inline_serializer(
            "HeartbeatReceived",
            {
                "received_at": serializers.DateTimeField(),
                "interval_seconds": serializers.IntegerField(help_text="When to send the next one."),
                "active_reasons": serializers.ListField(
                    child=serializers.CharField(), help_text="Why this report counts as not idle ([]: idle)."
                ),
            },
        ),
        tags=["agent"],
    )
    def post(self, request):
        payload = HeartbeatSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        state = heartbeat_record(token=request.auth, payload=payload.validated_data)
        return Response(
            {
                "received_at": state.last_sample["measured_at"],
                "interval_seconds": HEARTBEAT_INTERVAL_SECONDS,
                "active_reasons": state.active_reasons,
            }
        )


@cache
def agent_script() -> bytes:
    return AGENT_SCRIPT.read_bytes()


class AgentScriptView(APIView):
    # Public code: no credentials are read, so none (not even a bad one) can change the answer.
    authentication_classes: list = []
    permission_classes = [AllowAny]

    @extend_schema(
        operation_id="agent_script_retrieve",
        summary="The workspace agent (a Python 3 script, standard library only), as user data installs it.",
        responses={(200, "text/x-python"): OpenApiResponse(OpenApiTypes.STR, description="carrel_agent.py")},
        auth=[],
        tags=["agent"],
    )
    def get(self, request):
        response = HttpResponse(agent_script(), content_type="text/x-python; charset=utf-8")
        response["Content-Disposition"] = 'inline; filename="carrel-agent"'
        response["Cache-Control"] = "public, max-age=300"
        return response
