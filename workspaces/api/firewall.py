"""A workspace's firewall rules (/instances/{name}/firewall)."""

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from platform_site.errors import ValidationFailed
from workspaces import services
from workspaces.api.references import PROJECT_PARAMETER, WHOLE_NUMBER_RE, workspace_or_404
from workspaces.serializers import (
    FIREWALL_RULES,
    FirewallAddSerializer,
    FirewallRuleSerializer,
)


class FirewallView(APIView):
    @extend_schema(
        summary="The workspace's ordered ingress rules.",
        responses=FIREWALL_RULES,
        tags=["firewall"],
        parameters=[PROJECT_PARAMETER],
    )
    def get(self, request, name: str):
        workspace = workspace_or_404(request, name)
        return Response(
            {"rules": FirewallRuleSerializer(workspace.firewall_rules.order_by("position"), many=True).data}
        )

    @extend_schema(
        summary=(
            "Append rules (201); rules already there are not added again (200 when nothing was new). With no rules, "
            "allow SSH from the caller's address. SSH open to more than a /4's worth of addresses, all rules "
            "together, needs allow_world_ssh."
        ),
        request=FirewallAddSerializer,
        responses={201: FIREWALL_RULES, 200: FIREWALL_RULES},
        tags=["firewall"],
        parameters=[PROJECT_PARAMETER],
    )
    def post(self, request, name: str):
        workspace = workspace_or_404(request, name)
        form = FirewallAddSerializer(data=request.data or {})
        form.is_valid(raise_exception=True)
        rules = [dict(rule) for rule in form.validated_data.get("rules") or []]
        if not rules:
            cidr = services.single_host_cidr(getattr(request._request, "client_ip", None))
            rules = [{"cidr": cidr, "port": services.SSH_PORT, "description": "ssh from the caller"}]
        added = services.firewall_add(
            actor=request.user, workspace=workspace, rules=rules, allow_world_ssh=form.validated_data["allow_world_ssh"]
        )
        return Response(
            {"rules": FirewallRuleSerializer(workspace.firewall_rules.order_by("position"), many=True).data},
            status=status.HTTP_201_CREATED if added else status.HTTP_200_OK,
        )

    @extend_schema(
        summary="Remove every rule (or the one at ?position=N): the default is to drop all incoming traffic.",
        parameters=[PROJECT_PARAMETER, OpenApiParameter("position", int)],
        responses={204: None},
        tags=["firewall"],
    )
    def delete(self, request, name: str):
        workspace = workspace_or_404(request, name)
        position = request.query_params.get("position")
        if position is not None and not WHOLE_NUMBER_RE.match(position):
            raise ValidationFailed(fields={"position": ["A whole number."]})
        services.firewall_clear(
            actor=request.user, workspace=workspace, position=int(position) if position is not None else None
        )
        return Response(status=status.HTTP_204_NO_CONTENT)
