"""Seed a fresh database for the API contract test (scripts/contract.sh), and write schemathesis's settings.

It makes one organization with a project, a colleague, a cloud account on the given EC2 endpoint (a moto
server), a private template, a running and a stopped workspace (launched through the services, so they have
instances, jobs and transitions), a firewall rule and a pending invitation. Then it writes, into --output:

- schemathesis.toml: dictionaries of these objects' ids bound to the path parameters, so that generated
  requests hit real objects most of the time and made-up ids the rest (a 404 is a poor test of a 200's schema);
- tokens.env: `NAME=value` lines with the bearer tokens, one per schemathesis run (see scripts/contract.sh):
  CONTRACT_TOKEN (the owner's; read + write), CONTRACT_TOKENS_TOKEN (a second user whose other tokens the
  token-deleting operations may delete) and CONTRACT_PURGE_TOKEN (a third user, for POST /tokens/purge).

The catalog must be loaded first (`manage.py load_templates`). Never run this against a database you care about.
"""

import json
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

from allauth.account.models import EmailAddress
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from accounts.models import Membership, Organization, OrgRole, User
from accounts.services import token_create
from audit.models import AuditEvent
from budgets.models import Allocation, BudgetPool
from invitations.services import invitation_send
from projects.models import Project, ProjectMember, ProjectRole
from templates.models import WorkspaceTemplate
from templates.services import template_create
from workspaces import services as workspace_services
from workspaces.models import CloudAccount, Workspace
from workspaces.moto_server import sandbox_image_id

PASSWORD = "contract-test-password-not-secret"


def _user(email: str) -> User:
    user = User.objects.create_user(email=email, password=PASSWORD)
    EmailAddress.objects.create(user=user, email=user.email, verified=True, primary=True)
    return user


def _launch(*, actor: User, project: Project, name: str) -> Workspace:
    """Launch and provision at once (no worker runs in the contract test)."""
    result = workspace_services.workspace_launch(
        actor=actor, project=project, name=name, template="Ubuntu 24.04 Base", size="S"
    )
    workspace_services.workspace_provision(job_id=result.job.pk)
    return Workspace.objects.get(pk=result.workspace.pk)


def _toml_list(values) -> str:
    return "[" + ", ".join(json.dumps(str(value)) for value in values) + "]"


class Command(BaseCommand):
    help = "Seed a fresh database for scripts/contract.sh and write its schemathesis settings and tokens."

    def add_arguments(self, parser):
        parser.add_argument("--cloud-url", required=True, help="The EC2 endpoint (a moto server).")
        parser.add_argument("--output", required=True, help="Folder for schemathesis.toml and tokens.env.")
        parser.add_argument(
            "--probability",
            type=float,
            default=0.8,
            help="How often a path parameter takes a seeded id instead of a generated value.",
        )

    def handle(self, *args, cloud_url: str, output: str, probability: float, **options):
        if Organization.objects.exists():
            raise CommandError("The database is not empty: the contract test seeds a fresh one.")
        if not WorkspaceTemplate.objects.filter(organization__isnull=True).exists():
            raise CommandError("Load the template catalog first: manage.py load_templates.")
        seeded = self._seed(cloud_url)
        folder = Path(output)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "schemathesis.toml").write_text(self._schemathesis_toml(seeded, probability))
        tokens = folder / "tokens.env"
        tokens.write_text("".join(f"{name}={value}\n" for name, value in seeded["tokens"].items()))
        tokens.chmod(0o600)
        self.stdout.write(
            f"Seeded organization {seeded['organization'][0]}, project {seeded['project'][0]}, "
            f"workspaces {', '.join(seeded['workspace'])}; settings in {folder}"
        )

    @transaction.atomic
    def _seed(self, cloud_url: str) -> dict:
        owner = _user("contract-owner@carrel.localhost")
        colleague = _user("contract-colleague@carrel.localhost")
        organization = Organization.objects.create(name="Contract Lab", slug="contract-lab")
        Membership.objects.create(organization=organization, user=owner, role=OrgRole.OWNER)
        Membership.objects.create(organization=organization, user=colleague, role=OrgRole.MEMBER)
        project = Project.objects.create(organization=organization, name="Contract Project", created_by=owner)
        ProjectMember.objects.create(project=project, user=owner, role=ProjectRole.OWNER)
        ProjectMember.objects.create(project=project, user=colleague, role=ProjectRole.MEMBER)
        account = CloudAccount.objects.create(
            organization=organization,
            name="contract-cloud",
            region="us-east-1",
            endpoint_url=cloud_url,
            image_overrides={"*": sandbox_image_id(cloud_url)},
            is_default=True,
        )
        template = template_create(
            actor=owner,
            organization=organization,
            definition={
                "name": "Contract Image",
                "description": "Ubuntu with a few tools",
                "inherits": ["Ubuntu 24.04 Base"],
                "packages": ["htop"],
            },
        )
        running = _launch(actor=owner, project=project, name="box-1")
        stopped = _launch(actor=colleague, project=project, name="box-2")
        workspace_services.workspace_act(actor=owner, workspace=stopped, action="stop")
        workspace_services.workspace_drive(workspace_id=stopped.pk, action="stop")
        workspace_services.firewall_add(
            actor=owner, workspace=running, rules=[{"cidr": "198.51.100.0/24", "port": 8787, "description": "seed"}]
        )
        invitation = invitation_send(
            actor=owner, project=project, email="invitee@partner.example", role=ProjectRole.VIEWER
        )

        pool = BudgetPool.objects.create(
            organization=organization,
            name="Contract Grant",
            total_amount=Decimal("10000"),
            start_date=timezone.now() - timedelta(days=30),
            end_date=timezone.now() + timedelta(days=335),
            created_by=owner,
        )
        allocation = Allocation.objects.create(
            pool=pool, project=project, amount=Decimal("5000"), alert_thresholds=["0.5", "0.8"], allocated_by=owner
        )

        # Token-deleting operations run with other users' tokens, so the owner's stays valid for the main run.
        token_user = _user("contract-tokens@carrel.localhost")
        spares = [token_create(actor=token_user, name=f"spare-{n}", scopes=["read"]) for n in range(3)]
        purge_user = _user("contract-purge@carrel.localhost")
        events = list(AuditEvent.objects.filter(organization=organization).values_list("pk", flat=True)[:3])
        return {
            "organization": [organization.pk],
            "project": [project.pk],
            "username": [colleague.username, owner.username],
            "workspace": [running.pk, stopped.pk, running.provider_instance_id],
            "template": [template.slug, "ubuntu-24-04-base"],
            "job": [job.pk for job in running.jobs.all()] + [job.pk for job in stopped.jobs.all()],
            "invitation": [invitation.pk],
            "event": events,
            "token_id": [spare.token.pk for spare in spares],
            "digest": [spare.token.token_hash for spare in spares],
            "tokens": {
                "CONTRACT_TOKEN": token_create(actor=owner, name="contract", scopes=["read", "write"]).secret,
                "CONTRACT_TOKENS_TOKEN": token_create(
                    actor=token_user, name="contract", scopes=["read", "write"]
                ).secret,
                "CONTRACT_PURGE_TOKEN": token_create(
                    actor=purge_user, name="contract", scopes=["read", "write"]
                ).secret,
            },
            "account": [account.pk],
            "budget": [pool.pk],
            "allocation": [allocation.pk],
        }

    def _schemathesis_toml(self, seeded: dict, probability: float) -> str:
        dictionaries = {
            "organizations": seeded["organization"],
            "projects": seeded["project"],
            "usernames": seeded["username"],
            "workspaces": seeded["workspace"],
            "templates": seeded["template"],
            "jobs": seeded["job"],
            "invitations": seeded["invitation"],
            "events": seeded["event"],
            "token_ids": seeded["token_id"],
            "digests": seeded["digest"],
            "budgets": seeded["budget"],
            "allocations": seeded["allocation"],
        }
        lines = ["# Written by manage.py contract_seed for scripts/contract.sh: ids of the seeded objects.", ""]
        for name, values in dictionaries.items():
            lines += [f"[dictionaries.{name}]", f"values = {_toml_list(values)}", ""]

        def bind(dictionary: str) -> str:
            return f'{{ dictionary = "{dictionary}", probability = {probability} }}'

        lines += [
            "[parameters]",
            f'"path.organization_id" = {bind("organizations")}',
            f'"path.project_id" = {bind("projects")}',
            f'"path.username" = {bind("usernames")}',
            f'"path.job_id" = {bind("jobs")}',
            f'"path.invitation_id" = {bind("invitations")}',
            f'"path.event_id" = {bind("events")}',
            f'"path.token_id" = {bind("token_ids")}',
            f'"path.digest" = {bind("digests")}',
            f'"path.budget_id" = {bind("budgets")}',
            f'"path.allocation_id" = {bind("allocations")}',
            "",
            "# `{name}` is a workspace under /instances and /logs, and a template under /templates.",
            "[[operations]]",
            'include-path-regex = "^/api/v1/(instances|logs)/"',
            f'parameters = {{ "path.name" = {bind("workspaces")} }}',
            "",
            "[[operations]]",
            'include-path-regex = "^/api/v1/templates/"',
            f'parameters = {{ "path.name" = {bind("templates")} }}',
            "",
        ]
        return "\n".join(lines)
