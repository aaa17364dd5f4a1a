"""Load the data `bench/lists` measures: one organization, its members, and running workspaces in one project.

A launch and a member are first made once each through the real services (organization, project, budget pool and
allocation, `membership_add`, `project_member_add`, `workspace_launch`, then the provisioning steps and
`_finish_launch` with what a cloud reports), so every row they leave has the shape real code gives it: the template
snapshot, the transitions (pending → launching → running) with their ledger rows and the workspace's open interval,
the succeeded launch job with its steps, the firewall rule, the reservation, the idle settings and agent token, the
audit events. Those prototype rows are then copied with bulk inserts, each copy `SPACING` earlier than the one
before (all datetimes shifted together), with its own ids, names, e-mail and addresses, and its foreign keys pointing
at its own copies. A model that references a workspace or a member and that this loader does not know makes it
fail, so a new one is not silently left out.

Run by bench/lists_run.py in the process that then starts gunicorn; `load()` needs Django set up.
"""

import copy
import io
import ipaddress
import json
import secrets
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from unittest import mock

TEMPLATE = "Ubuntu 24.04 Base"
SIZE = "XS"
# Between two copies' launches: 10,000 workspaces span about 17 hours.
SPACING = timedelta(seconds=6)
BATCH = 1000
CLIENT_IP = "198.51.100.23"  # the launching member's address: the firewall rule opens SSH to it
OTHER_PROJECTS = ("Genomics", "Climate models", "Vision", "Teaching")


@dataclass
class World:
    organization_id: str
    project_id: str
    owner_email: str
    token: str  # the owner's bearer token (read scope)
    members: int
    workspaces: int
    rows: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0


# --- Copying rows -------------------------------------------------------------------------------------------


@dataclass
class Copy:
    """What one copy replaces: datetimes shifted by `shift`, foreign keys through `keys` ((model, old pk) → new pk),
    and strings naming the prototype (its ids, name, e-mail) through `words`, in text and JSON fields alike."""

    shift: timedelta
    keys: dict[tuple[type, Any], Any] = field(default_factory=dict)
    words: dict[str, str] = field(default_factory=dict)

    def text(self, value: str) -> str:
        for old, new in self.words.items():
            if old in value:
                value = value.replace(old, new)
        return value

    def json(self, value: Any) -> Any:
        if not self.words:
            return value
        return json.loads(self.text(json.dumps(value)))

    def row(self, row: Any, **overrides: Any) -> Any:
        from django.db import models
        from django.db.models.base import ModelState

        new = copy.copy(row)
        new._state = ModelState()
        for model_field in row._meta.concrete_fields:
            value = getattr(row, model_field.attname)
            if model_field.primary_key and not model_field.is_relation:
                # A prefixed id is drawn afresh (its default); an auto-increment one comes from the insert.
                value = model_field.get_default() if model_field.has_default() else None
            elif model_field.is_relation:
                if value is not None:
                    value = self.keys.get((model_field.related_model, value), value)
            elif value is None:
                pass
            elif isinstance(model_field, models.DateTimeField):
                value = value - self.shift
            elif isinstance(model_field, models.DateField):
                value = (datetime.combine(value, datetime.min.time()) - self.shift).date()
            elif isinstance(model_field, models.JSONField):
                value = self.json(value)
            elif isinstance(value, str):
                value = self.text(value)
            setattr(new, model_field.attname, value)
        for name, value in overrides.items():
            setattr(new, name, value)
        return new


def rows_of(model: Any, **filters: Any) -> list:
    return list(model.objects.filter(**filters).order_by("pk"))


def bulk(model: Any, rows: Sequence, counts: dict[str, int]) -> None:
    model.objects.bulk_create(rows, batch_size=BATCH)
    counts[model._meta.label] = counts.get(model._meta.label, 0) + len(rows)


# --- The prototypes, through the real services -----------------------------------------------------------


def _member_name(index: int) -> str:
    return f"member{index:05d}"


def _workspace_name(index: int) -> str:
    return f"ws-{index:05d}"


def _instance_id(index: int) -> str:
    return f"i-0{index:016x}"


def _addresses(index: int) -> tuple[str, str]:
    public = ipaddress.ip_address("100.64.0.0") + index + 1
    private = ipaddress.ip_address("10.20.0.0") + index + 1
    return str(public), str(private)


def _setup() -> tuple[Any, Any, Any, Any, str]:
    from django.core.management import call_command
    from django.utils import timezone

    from accounts.models import OrgRole, TokenScope, User
    from accounts.services import membership_add, organization_create, token_create
    from budgets.services.allocations import allocation_create
    from budgets.services.pools import pool_create
    from projects.models import ProjectRole
    from projects.services import project_create, project_member_add
    from workspaces.models import CloudAccount

    call_command("load_templates", verbosity=0, stdout=io.StringIO())  # stdout is for the results
    owner = User.objects.create_user(email="owner@bench-lists.example", password=None)  # unusable: no hashing
    organization = organization_create(actor=owner, name="Bench Lists Lab")
    CloudAccount.objects.create(organization=organization, name="lab", region="us-east-1", is_default=True)
    project = project_create(actor=owner, organization=organization, name="Lists")
    others = [project_create(actor=owner, organization=organization, name=name) for name in OTHER_PROJECTS]
    now = timezone.now()
    pool = pool_create(
        actor=owner,
        organization=organization,
        name="Lab grant",
        total_amount=Decimal("5000000"),
        start_date=now - timedelta(days=30),
        end_date=now + timedelta(days=335),
    )
    allocation_create(
        actor=owner,
        pool=pool,
        project=project,
        amount=Decimal("2000000"),
        alert_thresholds=[Decimal("0.5"), Decimal("0.8"), Decimal("0.9")],
    )
    for other in others:
        allocation_create(actor=owner, pool=pool, project=other, amount=Decimal("10000"))
    token = token_create(actor=owner, name="bench lists", scopes=[TokenScope.READ]).secret
    member = User.objects.create_user(email=f"{_member_name(0)}@bench-lists.example", password=None)
    member.first_name, member.last_name = "Member", "00000"
    member.save(update_fields=["first_name", "last_name"])
    membership_add(actor=owner, organization=organization, email=member.email, role=OrgRole.MEMBER)
    project_member_add(actor=owner, project=project, email=member.email, role=ProjectRole.MEMBER)
    return owner, organization, project, member, token


def _launch_prototype(*, project: Any, member: Any) -> Any:
    """One launch through workspace_launch, then provisioned as the launch task does once the cloud answers."""
    from django.utils import timezone

    from workspaces import cloud
    from workspaces.models import ProvisionJob, Workspace
    from workspaces.services import provisioning
    from workspaces.services.launch import workspace_launch

    # No task is enqueued: the provisioning is played below, without a cloud.
    with mock.patch("workspaces.dispatch.provision_workspace"):
        launched = workspace_launch(
            actor=member, project=project, name=_workspace_name(0), template=TEMPLATE, size=SIZE, client_ip=CLIENT_IP
        )
    job, workspace = launched.job, launched.workspace
    ProvisionJob.objects.filter(pk=job.pk).update(status=ProvisionJob.Status.RUNNING, attempts=1)
    job.status, job.attempts = ProvisionJob.Status.RUNNING, 1
    provisioning.mark_step(job, "queued")
    group = "sg-0" + secrets.token_hex(8)
    Workspace.objects.filter(pk=workspace.pk).update(security_group_id=group)
    workspace.security_group_id = group
    provisioning.mark_step(job, "security_group")
    instance_id = _instance_id(0)
    Workspace.objects.filter(pk=workspace.pk).update(provider_instance_id=instance_id)
    workspace.provider_instance_id = instance_id
    provisioning.mark_step(job, "instance", message=instance_id)
    public_ip, private_ip = _addresses(0)
    info = cloud.InstanceInfo(
        instance_id=instance_id,
        state="running",
        instance_type=workspace.instance_type,
        public_ip=public_ip,
        private_ip=private_ip,
        launch_time=timezone.now(),
        hibernation_configured=workspace.hibernation_capable,
        state_reason="",
        tags=provisioning.resource_tags(workspace),
    )
    provisioning._finish_launch(job, workspace, info)
    return Workspace.objects.get(pk=workspace.pk)


# --- Copies ---------------------------------------------------------------------------------------------------


def _workspace_rows(workspace: Any) -> dict[Any, list]:
    """Every row that references the prototype workspace, by model, and the audit events about it."""
    from audit.models import AuditEvent

    found: dict[type, list] = {}
    for relation in workspace._meta.related_objects:
        rows = rows_of(relation.related_model, **{relation.field.name: workspace})
        if rows:
            found.setdefault(relation.related_model, []).extend(rows)
    found[AuditEvent] = rows_of(AuditEvent, target_id=workspace.pk)
    return found


def _check_known(found: Iterable[Any], known: Sequence[Any], what: str) -> None:
    unknown = [model._meta.label for model in found if model not in known]
    if unknown:
        raise RuntimeError(f"bench/lists_load.py does not know how to copy {', '.join(unknown)} rows of a {what}")


def _copy_members(*, prototype: Any, start: int, stop: int, counts: dict[str, int]) -> None:
    """Members start..stop-1: a user, their organization and project memberships, the audit events of both."""
    from accounts.models import Membership, User
    from audit.models import AuditEvent
    from projects.models import ProjectMember

    owned = [(Membership, rows_of(Membership, user=prototype)), (ProjectMember, rows_of(ProjectMember, user=prototype))]
    targets = {(model._meta.model_name, str(row.pk)) for model, rows in owned for row in rows}
    events = [
        event
        for event in rows_of(AuditEvent, target_id__in=[pk for _, pk in targets])
        if (event.target_type, event.target_id) in targets
    ]
    for first in range(start, stop, BATCH):
        indexes = range(first, min(stop, first + BATCH))
        plans = [Copy(shift=SPACING * index, words={_member_name(0): _member_name(index)}) for index in indexes]
        users = [
            plan.row(prototype, last_name=f"{index:05d}", password="!" + secrets.token_hex(8))
            for plan, index in zip(plans, indexes, strict=True)
        ]
        bulk(User, users, counts)
        for plan, user in zip(plans, users, strict=True):
            plan.keys[(User, prototype.pk)] = user.pk
        for model, rows in owned:
            made = [(plan, row, plan.row(row)) for plan in plans for row in rows]
            bulk(model, [new for _, _, new in made], counts)
            for plan, row, new in made:
                plan.keys[(model, row.pk)] = new.pk
        bulk(
            AuditEvent,
            [
                plan.row(event, target_id=str(plan.keys[(model, int(event.target_id))]))
                for plan in plans
                for event in events
                for model, _ in owned
                if model._meta.model_name == event.target_type
            ],
            counts,
        )


def _copy_workspaces(
    *, prototype: Any, member: Any, start: int, stop: int, member_users: int, counts: dict[str, int]
) -> None:
    """Workspaces start..stop-1, each with a copy of every row the prototype launch left; workspace i is owned by
    member i % member_users."""
    from accounts.models import User
    from audit.models import AuditEvent
    from budgets.models import CostEntry, Reservation
    from idle.models import AgentToken, WorkspaceIdle
    from workspaces.models import FirewallRule, ProvisionJob, StateTransition, Workspace

    found = _workspace_rows(prototype)
    # Inserted in this order: each after the rows it references.
    stages: list[list[Any]] = [
        [StateTransition, ProvisionJob, FirewallRule, Reservation, WorkspaceIdle, AgentToken],
        [CostEntry],
        [AuditEvent],
    ]
    _check_known(found, [model for stage in stages for model in stage], "workspace")
    owners = {
        username: (pk, email)
        for username, pk, email in User.objects.filter(username__startswith="member").values_list(
            "username", "pk", "email"
        )
    }
    for first in range(start, stop, BATCH):
        indexes = range(first, min(stop, first + BATCH))
        plans, workspaces = [], []
        for index in indexes:
            public_ip, private_ip = _addresses(index)
            owner_pk, owner_email = owners[_member_name(index % member_users)]
            plan = Copy(shift=SPACING * index, keys={(User, member.pk): owner_pk})
            new = plan.row(
                prototype,
                name=_workspace_name(index),
                provider_instance_id=_instance_id(index),
                security_group_id="sg-0" + secrets.token_hex(8),
                public_ip=public_ip,
                private_ip=private_ip,
            )
            plan.keys[(Workspace, prototype.pk)] = new.pk
            plan.words = {
                prototype.pk: new.pk,
                prototype.name: new.name,
                prototype.provider_instance_id: new.provider_instance_id,
                prototype.security_group_id: new.security_group_id,
                member.email: owner_email,
            }
            plans.append(plan)
            workspaces.append(new)
        bulk(Workspace, workspaces, counts)
        for stage in stages:
            for model in stage:
                made = []
                for plan in plans:
                    for row in found.get(model, []):
                        overrides: dict[str, Any] = {}
                        if model is AgentToken:  # unique; the agent's secret is not what is measured
                            overrides = {"nonce": secrets.token_hex(16), "key_hash": secrets.token_hex(32)}
                        made.append((plan, row, plan.row(row, **overrides)))
                bulk(model, [new for _, _, new in made], counts)
                for plan, row, new in made:
                    plan.keys[(model, row.pk)] = new.pk
                    if isinstance(row.pk, str):
                        plan.words[row.pk] = new.pk


def load(*, members: int, workspaces: int, progress: Callable[[str], None] = print) -> World:
    """Load the world (in the database Django is set up with, which must be empty and migrated): `members`
    organization members (the owner and members - 1 others) and `workspaces` running workspaces in one project."""
    member_users = max(1, members - 1)
    from django.db import connection, transaction

    started = time.perf_counter()
    counts: dict[str, int] = {}
    with transaction.atomic():
        owner, organization, project, member, token = _setup()
        prototype = _launch_prototype(project=project, member=member)
    progress(f"prototypes made in {time.perf_counter() - started:.1f} s; copying")
    with transaction.atomic():
        _copy_members(prototype=member, start=1, stop=member_users, counts=counts)
    progress(f"{members} members in {time.perf_counter() - started:.1f} s")
    with transaction.atomic():
        _copy_workspaces(
            prototype=prototype, member=member, start=1, stop=workspaces, member_users=member_users, counts=counts
        )
    progress(f"{workspaces} workspaces in {time.perf_counter() - started:.1f} s")
    # What beat does every two minutes: fold the changes appended to the kept sums of open intervals and to the
    # kept counts of projects.
    from budgets import open_sums
    from projects import tallies

    open_sums.compact()
    tallies.compact()
    # As autovacuum leaves tables that have been there a while: statistics, and the visibility map that
    # index-only scans need.
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    return World(
        organization_id=organization.pk,
        project_id=project.pk,
        owner_email=owner.email,
        token=token,
        members=members,
        workspaces=workspaces,
        rows=table_counts(),
        seconds=round(time.perf_counter() - started, 1),
    )


def table_counts() -> dict[str, int]:
    from accounts.models import Membership, User
    from audit.models import AuditEvent
    from budgets.models import CostEntry, Reservation
    from projects.models import Project, ProjectMember
    from workspaces.models import FirewallRule, ProvisionJob, StateTransition, Workspace

    models = (
        User,
        Membership,
        Project,
        ProjectMember,
        Workspace,
        StateTransition,
        ProvisionJob,
        FirewallRule,
        CostEntry,
        Reservation,
        AuditEvent,
    )
    return {model._meta.label: model.objects.count() for model in models}
