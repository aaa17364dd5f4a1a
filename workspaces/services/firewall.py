"""Firewall rules: the database holds the desired rules; a task makes the security group match."""

import ipaddress
import logging
from collections.abc import Iterable, Mapping
from typing import Any

from django.db import transaction

from accounts.models import User
from audit.services import audit_record
from platform_site.actors import Actor
from platform_site.errors import NotFound, ValidationFailed
from workspaces import cloud, dispatch
from workspaces.models import (
    FirewallRule,
    Workspace,
)
from workspaces.services.access import SSH_PORT, WIDE_OPEN_ADDRESSES, S, require_can_manage
from workspaces.services.profiles import provider_for

logger = logging.getLogger("carrel.workspaces")

# --- Firewall -------------------------------------------------------------------------------------


def ingress_for(workspace: Workspace) -> list[cloud.IngressRule]:
    return [
        cloud.IngressRule(
            protocol=rule.protocol,
            from_port=rule.from_port,
            to_port=rule.to_port,
            cidr=rule.cidr,
            description=rule.description,
        )
        for rule in FirewallRule.objects.filter(workspace=workspace).order_by("position")
    ]


def _normalise_rule(raw: dict) -> dict:
    errors: dict[str, list[str]] = {}
    try:
        network = ipaddress.ip_network(str(raw.get("cidr", "")).strip(), strict=False)
    except ValueError:
        errors["cidr"] = ["Not an IPv4 or IPv6 network, e.g. 203.0.113.7/32."]
        network = None
    protocol = str(raw.get("protocol") or "tcp").lower()
    if protocol not in FirewallRule.Protocol.values:
        errors["protocol"] = ["One of tcp, udp, icmp."]
    from_port = raw.get("from_port", raw.get("port"))
    to_port = raw.get("to_port", from_port)
    for key, value in (("from_port", from_port), ("to_port", to_port)):
        if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 65535:
            errors[key] = ["A port in 1–65535."]
    # No errors: both ports are ints (the isinstance checks only tell the type checker so).
    if not errors and isinstance(from_port, int) and isinstance(to_port, int) and from_port > to_port:
        errors["to_port"] = ["Must not be below from_port."]
    if errors:
        raise ValidationFailed(fields=errors)
    return {
        "cidr": str(network),
        "protocol": protocol,
        "from_port": from_port,
        "to_port": to_port,
        "description": str(raw.get("description", ""))[:200],
    }


def _reaches_ssh(rule: Mapping[str, Any]) -> bool:
    return bool(rule["protocol"] == FirewallRule.Protocol.TCP and rule["from_port"] <= SSH_PORT <= rule["to_port"])


def ssh_exposure(rules: Iterable[Mapping[str, Any]]) -> dict[int, int]:
    """How many addresses can reach SSH, per IP version, judging the union of the rules (overlaps once).

    Two halves (0.0.0.0/1 + 128.0.0.0/1) open SSH to the world as surely as 0.0.0.0/0 does."""
    networks: dict[int, list] = {4: [], 6: []}
    for rule in rules:
        if _reaches_ssh(rule):
            network = ipaddress.ip_network(rule["cidr"], strict=False)
            networks[network.version].append(network)
    return {
        version: sum(network.num_addresses for network in ipaddress.collapse_addresses(found))
        for version, found in networks.items()
    }


def _require_no_wide_open_ssh(rules: Iterable[Mapping[str, Any]]) -> None:
    exposure = ssh_exposure(rules)
    for version, limit in WIDE_OPEN_ADDRESSES.items():
        if exposure[version] > limit:
            raise ValidationFailed(
                "Opening SSH to the whole internet needs an explicit flag.",
                code="WORLD_SSH_NEEDS_FLAG",
                details=(
                    f"Together, the workspace's rules would let {exposure[version]:,} IPv{version} addresses reach "
                    f"SSH (port {SSH_PORT}); more than a /4's worth needs allow_world_ssh."
                ),
                fields={"allow_world_ssh": ["Set to true to open SSH this widely (e.g. 0.0.0.0/0 or ::/0)."]},
                remediation="Allow SSH from your own network (e.g. 203.0.113.0/24), or set allow_world_ssh: true.",
            )


def firewall_add(
    *, actor: User, workspace: Workspace, rules: list[dict], allow_world_ssh: bool = False
) -> list[FirewallRule]:
    """Append rules that are not there yet. SSH open wider than a /8 (all rules together) needs the flag."""
    require_can_manage(user=actor, workspace=workspace)
    normalised = [_normalise_rule(rule) for rule in rules]
    with transaction.atomic():
        Workspace.objects.select_for_update().filter(pk=workspace.pk).exists()
        existing = list(
            FirewallRule.objects.filter(workspace=workspace).values("cidr", "protocol", "from_port", "to_port")
        )
        present = {(r["cidr"], r["protocol"], r["from_port"], r["to_port"]) for r in existing}
        fresh: dict[tuple, dict] = {}
        for rule in normalised:
            key = (rule["cidr"], rule["protocol"], rule["from_port"], rule["to_port"])
            if key not in present:
                fresh.setdefault(key, rule)
        normalised = list(fresh.values())
        if not normalised:
            return []
        if not allow_world_ssh:
            _require_no_wide_open_ssh([*existing, *normalised])
        last = FirewallRule.objects.filter(workspace=workspace).order_by("-position").values_list("position", flat=True)
        start = (last.first() or 0) + 1
        created = FirewallRule.objects.bulk_create(
            [
                FirewallRule(workspace=workspace, position=start + index, created_by=actor, **rule)
                for index, rule in enumerate(normalised)
            ]
        )
        audit_record(
            actor=actor,
            action="firewall.add",
            target=workspace,
            organization=workspace.organization,
            metadata={"rules": normalised},
        )
        sync_firewall_on_commit(workspace)
    return created


def firewall_clear(*, actor: Actor, workspace: Workspace, position: int | None = None) -> int:
    require_can_manage(user=actor, workspace=workspace)
    with transaction.atomic():
        rules = FirewallRule.objects.filter(workspace=workspace)
        if position is not None:
            rules = rules.filter(position=position)
        deleted, _ = rules.delete()
        if position is not None and not deleted:
            raise NotFound(
                f"Workspace '{workspace.name}' has no firewall rule at position {position}.",
                code="FIREWALL_RULE_NOT_FOUND",
                remediation=f"GET /api/v1/instances/{workspace.pk}/firewall lists the rules and their positions.",
            )
        audit_record(
            actor=actor,
            action="firewall.delete",
            target=workspace,
            organization=workspace.organization,
            metadata={"position": position, "deleted": deleted},
        )
        sync_firewall_on_commit(workspace)
    return deleted


def sync_firewall_on_commit(workspace: Workspace) -> None:
    dispatch.sync_workspace_firewall(workspace.pk)


def workspace_sync_firewall(*, workspace_id: str) -> None:
    workspace = Workspace.objects.select_related("cloud_account").get(pk=workspace_id)
    if workspace.security_group_id and workspace.state != S.TERMINATED:
        provider_for(workspace).set_ingress(workspace.security_group_id, ingress_for(workspace))
