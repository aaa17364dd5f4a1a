"""Serializers of the workspace API: request bodies (strict fields) and response shapes."""

from decimal import Decimal

from django.conf import settings
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field, inline_serializer
from rest_framework import serializers

from budgets import selectors as budget_selectors
from idle.serializers import IdleLaunchSerializer
from platform_site.api import fields as strict
from workspaces.models import CloudAccount, FirewallRule, ProvisionJob, Workspace


class WorkspaceSerializer(serializers.ModelSerializer):
    id = strict.CharField(source="provider_instance_id", allow_null=True, help_text="The EC2 instance id.")
    workspace_id = strict.CharField(source="pk")
    template = strict.CharField(source="template_name")
    project = strict.CharField(source="project_id")
    project_name = strict.CharField(source="project.name")
    owner = strict.EmailField(source="owner.email")
    hourly_rate = strict.DecimalField(max_digits=10, decimal_places=4, coerce_to_string=False)
    current_spend = serializers.SerializerMethodField(help_text="USD so far (ledger plus the open interval), exact.")
    launch_progress = serializers.SerializerMethodField()
    attached_volumes = serializers.SerializerMethodField()
    attached_ebs_volumes = serializers.SerializerMethodField()
    tags = serializers.SerializerMethodField()

    class Meta:
        model = Workspace
        fields = [
            "name",
            "id",
            "workspace_id",
            "state",
            "public_ip",
            "private_ip",
            "instance_type",
            "size",
            "region",
            "spot",
            "template",
            "project",
            "project_name",
            "owner",
            "launch_time",
            "hourly_rate",
            "current_spend",
            "hibernation_capable",
            "root_volume_gb",
            "attached_volumes",
            "attached_ebs_volumes",
            "tags",
            "expires_at",
            "launch_progress",
            "error_message",
            "created_at",
        ]
        read_only_fields = fields

    @extend_schema_field(OpenApiTypes.NUMBER)
    def get_current_spend(self, workspace) -> Decimal:
        costs = self.context.get("_workspace_costs")
        if costs is None or workspace.pk not in costs:
            # Every workspace of the list (or page) at once: one query, however long the list.
            listed = self.parent.instance if isinstance(self.parent, serializers.ListSerializer) else [workspace]
            costs = self.context["_workspace_costs"] = budget_selectors.workspace_costs(listed)
        return budget_selectors.money(costs[workspace.pk])

    def get_launch_progress(self, workspace) -> int:
        jobs = list(workspace.jobs.all())
        return jobs[0].progress if jobs else 0

    def get_attached_volumes(self, workspace) -> list[str]:
        return []

    def get_attached_ebs_volumes(self, workspace) -> list[str]:
        return []

    def get_tags(self, workspace) -> dict[str, str]:
        return {"Project": workspace.project.name, "Owner": workspace.owner.email, "Template": workspace.template_name}


# The list's fast path: WorkspaceSerializer's output built from rows of values (selectors.workspace_list_rows)
# by plain code, with DRF's own fields formatting dates and decimals as the serializer does. WorkspaceSerializer
# stays the schema, the detail view's shape and the reference a test compares this with, key by key.
_RATE = WorkspaceSerializer._declared_fields["hourly_rate"]


def workspace_list_json(rows: list[dict]) -> list[dict]:
    """Rows of `selectors.workspace_list_rows` as WorkspaceSerializer renders the same workspaces."""
    costs = budget_selectors.workspace_row_costs(rows)
    # What the serializer's DateTimeField writes (ISO 8601 in the current time zone, "Z" for UTC), without its
    # per-value settings and time zone lookups: the page has three dates a row.
    zone = timezone.get_current_timezone() if settings.USE_TZ else None

    def _datetime(value):
        if value is None:
            return None
        text = (value.astimezone(zone) if zone is not None and timezone.is_aware(value) else value).isoformat()
        return text[:-6] + "Z" if text.endswith("+00:00") else text

    return [
        {
            "name": row["name"],
            "id": row["provider_instance_id"],
            "workspace_id": row["id"],
            "state": row["state"],
            "public_ip": row["public_ip"],
            "private_ip": row["private_ip"],
            "instance_type": row["instance_type"],
            "size": row["size"],
            "region": row["region"],
            "spot": row["spot"],
            "template": row["template_name"],
            "project": row["project_id"],
            "project_name": row["project__name"],
            "owner": row["owner__email"],
            "launch_time": _datetime(row["launch_time"]),
            "hourly_rate": _RATE.to_representation(row["hourly_rate"]),
            "current_spend": budget_selectors.money(costs[row["id"]]),
            "hibernation_capable": row["hibernation_capable"],
            "root_volume_gb": row["root_volume_gb"],
            "attached_volumes": [],
            "attached_ebs_volumes": [],
            "tags": {"Project": row["project__name"], "Owner": row["owner__email"], "Template": row["template_name"]},
            "expires_at": _datetime(row["expires_at"]),
            "launch_progress": row["launch_progress"],
            "error_message": row["error_message"],
            "created_at": _datetime(row["created_at"]),
        }
        for row in rows
    ]


class StorageSerializer(serializers.Serializer):
    ebs_volume_size = strict.IntegerField(min_value=8, max_value=16384, required=False)
    ebs_volume_type = strict.ChoiceField(choices=["gp3", "gp2", "io2"], required=False)
    iops = strict.IntegerField(
        min_value=100,
        max_value=64000,
        required=False,
        help_text="Provisioned IOPS: gp3 3000–16000 (3000 included in the price), io2 100–64000 (required).",
    )
    throughput = strict.IntegerField(
        min_value=125, max_value=1000, required=False, help_text="gp3 only: MB/s, 125–1000 (125 included)."
    )

    def validate(self, attrs: dict) -> dict:
        # EC2's rules for the root volume (RunInstances refuses anything else).
        volume_type = attrs.get("ebs_volume_type") or "gp3"
        iops, throughput = attrs.get("iops"), attrs.get("throughput")
        errors: dict[str, list[str]] = {}
        if iops is not None and volume_type == "gp2":
            errors["iops"] = ["gp2 volumes take no provisioned IOPS."]
        elif iops is not None and volume_type == "gp3" and not 3000 <= iops <= 16000:
            errors["iops"] = ["gp3 takes 3000 to 16000 IOPS."]
        if volume_type == "io2" and iops is None:
            errors["iops"] = ["io2 volumes need provisioned IOPS."]
        if throughput is not None and volume_type != "gp3":
            errors["throughput"] = ["Only gp3 volumes take a throughput."]
        if errors:
            raise serializers.ValidationError(errors)
        return attrs


class ConfigurationSerializer(serializers.Serializer):
    cpuCores = strict.IntegerField(min_value=1, max_value=448)  # noqa: N815 (the seed's field names)
    memoryGB = strict.IntegerField(min_value=1, max_value=24576)  # noqa: N815
    gpu = strict.CharField(required=False, allow_blank=True, allow_null=True)
    storageGB = strict.IntegerField(min_value=8, max_value=16384, required=False)  # noqa: N815
    region = strict.CharField(required=False)


class LaunchSerializer(serializers.Serializer):
    name = strict.CharField(max_length=63)
    template = strict.CharField()
    size = strict.ChoiceField(choices=["XS", "S", "M", "L", "XL"], required=False)
    instance_type = strict.CharField(required=False)
    configuration = ConfigurationSerializer(required=False)
    spot = strict.BooleanField(default=False)
    region = strict.CharField(required=False)
    storage = StorageSerializer(required=False)
    project = strict.CharField(required=False, help_text="Project id or name; defaults to your profile's.")
    budget = strict.CharField(
        required=False,
        help_text="The budget pool funding the project (id or name), checked if given; the launch draws on the "
        "project's allocation either way.",
    )
    profile = strict.CharField(required=False, help_text="Cloud account id or name; defaults to your profile's.")
    ttl_hours = strict.FloatField(
        required=False,
        min_value=0,
        max_value=8760,
        help_text="Stop the workspace this many hours after launch (0 or omitted: no TTL). At most "
        "CARREL_MAX_TTL_HOURS (168), or the project's or template's max_ttl_hours if lower; the budget holds the "
        "cost of these hours.",
    )
    dry_run = strict.BooleanField(
        default=False, help_text="Check and price the launch (200, the plan and its cost) without creating anything."
    )
    idle = IdleLaunchSerializer(
        required=False,
        help_text="Idle detection for this workspace: `enabled`, `profile`, `idle_threshold_minutes`, `action`. "
        "What is left out comes from the project's idle default, then the template's `idle_defaults`, then the "
        "`standard` profile.",
    )


class LaunchResponseSerializer(serializers.Serializer):
    name = strict.CharField()
    instance_id = strict.CharField(allow_null=True)
    workspace_id = strict.CharField()
    job_id = strict.CharField()
    state = strict.CharField()
    estimated_ready_time = strict.DateTimeField()
    hourly_rate = strict.DecimalField(max_digits=10, decimal_places=4, coerce_to_string=False)
    launch_progress = strict.IntegerField()


class ActionResponseSerializer(serializers.Serializer):
    name = strict.CharField()
    previous_state = strict.CharField()
    new_state = strict.CharField()
    state = strict.CharField()
    message = strict.CharField()
    estimated_ready_time = strict.DateTimeField(required=False)
    hibernation_supported = strict.BooleanField(required=False)
    estimated_savings = strict.CharField(required=False)


class UpdateSerializer(serializers.Serializer):
    name = strict.CharField(max_length=63, required=False)
    size = strict.ChoiceField(choices=["XS", "S", "M", "L", "XL"], required=False)
    instance_type = strict.CharField(required=False)
    configuration = ConfigurationSerializer(required=False)


class TerminateSerializer(serializers.Serializer):
    confirm = strict.CharField(help_text='Must be "DELETE".')
    backup_ebs = strict.BooleanField(default=False)


class ExtendSerializer(serializers.Serializer):
    hours = strict.FloatField(
        required=False,
        min_value=0,
        max_value=8760,
        help_text="Hours to add; 4 when omitted or 0. The TTL may reach at most CARREL_MAX_TTL_HOURS (168) from "
        "now, or the template's max_ttl_hours if lower.",
    )


class FirewallRuleSerializer(serializers.ModelSerializer):
    class Meta:
        model = FirewallRule
        fields = ["position", "cidr", "protocol", "from_port", "to_port", "description", "created_at"]
        read_only_fields = fields


FIREWALL_RULES = inline_serializer("FirewallRules", {"rules": FirewallRuleSerializer(many=True)})


class FirewallRuleInputSerializer(serializers.Serializer):
    cidr = strict.CharField()
    protocol = strict.ChoiceField(choices=FirewallRule.Protocol.choices, default="tcp")
    port = strict.IntegerField(required=False)
    from_port = strict.IntegerField(required=False)
    to_port = strict.IntegerField(required=False)
    description = strict.CharField(required=False, allow_blank=True, max_length=200)


class FirewallAddSerializer(serializers.Serializer):
    rules = FirewallRuleInputSerializer(many=True, required=False)
    allow_world_ssh = strict.BooleanField(default=False)


class JobSerializer(serializers.ModelSerializer):
    workspace = strict.CharField(source="workspace.name")
    workspace_id = strict.CharField(source="workspace.pk")
    state = strict.CharField(source="workspace.state")

    class Meta:
        model = ProvisionJob
        fields = [
            "id",
            "kind",
            "status",
            "progress",
            "steps",
            "attempts",
            "error_code",
            "error_message",
            "workspace",
            "workspace_id",
            "state",
            "created_at",
            "updated_at",
            "finished_at",
        ]
        read_only_fields = fields


class ProfileSwitchSerializer(serializers.Serializer):
    profile_name = strict.CharField(required=False, max_length=100, help_text="Cloud account id or name.")
    profile = strict.CharField(required=False, max_length=100, help_text="The same as profile_name (older clients).")
    project = strict.CharField(required=False, max_length=200, help_text="Project id or name.")


class ProfileSerializer(serializers.ModelSerializer):
    aws_profile = serializers.SerializerMethodField()
    default_project = serializers.SerializerMethodField()
    active = serializers.SerializerMethodField()
    organization = strict.CharField(source="organization_id")

    class Meta:
        model = CloudAccount
        fields = [
            "id",
            "name",
            "organization",
            "provider",
            "region",
            "aws_profile",
            "default_project",
            "active",
            "credential_source",
            "created_at",
        ]
        read_only_fields = fields

    def get_aws_profile(self, account) -> str:
        return account.role_arn or "default credential chain"

    def get_default_project(self, account) -> str | None:
        preference = self.context.get("preference")
        return preference.project_id if preference and preference.project_id else None

    def get_active(self, account) -> bool:
        return account.pk == self.context.get("active_id")
