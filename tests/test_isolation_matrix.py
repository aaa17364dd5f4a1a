"""The isolation matrix (DESIGN.md principles 2 and 9): every route of the URL resolver, every method, every
kind of caller, checked against the table in tests/isolation_matrix.py.

Two organizations, A and B, share one cloud setup (one moto server, one region). Each has a project, running and
stopped workspaces (launched through the services against moto), a provisioning job, firewall rules, a pending
invitation, an org-private template, an audit event and API tokens. The actors (tests/isolation_matrix.py, ACTORS)
act on A's objects; the A-side actors then repeat every request with B's objects substituted.

For every request the status must match the table. Whenever the table expects a refusal (4xx), NOTHING may change:
no row of any app table (counts + a hash of every row), no Celery task queued (directly or on commit), no cloud call
made (any botocore operation). Errors under /api/ must carry the one JSON envelope.

The world is built once per module inside a transaction that is rolled back at the end; each test runs in a savepoint
of it (pytest-django's `db`), so tests that succeed in changing something do not leak into the next one.
"""

import hashlib
import json
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from types import SimpleNamespace

import pytest
from allauth.account.models import EmailAddress
from django.apps import apps
from django.db import transaction
from django.urls import URLResolver, get_resolver
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import Membership, Organization, OrgRole, User
from accounts.services import token_create
from audit.models import AuditEvent
from budgets.models import Allocation, BudgetPool
from invitations import services as invitation_services
from projects.models import Project, ProjectMember, ProjectRole
from templates.services import template_catalog_load, template_create
from tests import isolation_matrix as matrix
from workspaces import services as workspace_services
from workspaces.models import CloudAccount, Workspace
from workspaces.moto_server import SANDBOX_AWS_ENV, sandbox_image_id, start_moto_server

pytestmark = pytest.mark.django_db

# --- The URL resolver --------------------------------------------------------------------------------------------

# Methods a view answers by itself and that are not part of the matrix (DRF answers OPTIONS for every APIView).
IMPLICIT_METHODS = {"OPTIONS", "HEAD", "TRACE"}


def resolver_routes(patterns=None, prefix: str = ""):
    """(route, callback) for every URL pattern, walking includes recursively; route is the concatenated pattern."""
    for pattern in get_resolver().url_patterns if patterns is None else patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            yield from resolver_routes(pattern.url_patterns, route)
        else:
            yield route, pattern.callback


def view_methods(callback) -> set[str] | None:
    """The HTTP methods a class-based view implements, or None when they cannot be read (function views)."""
    view_class = getattr(callback, "cls", None) or getattr(callback, "view_class", None)
    if view_class is None:
        return None
    return {
        method.upper()
        for method in view_class.http_method_names
        if hasattr(view_class, method) and method.upper() not in IMPLICIT_METHODS
    }


def view_label(callback) -> str:
    view = getattr(callback, "cls", None) or getattr(callback, "view_class", None) or callback
    return f"{view.__module__}.{view.__qualname__}"


def excluded(route: str) -> bool:
    return any(route.startswith(prefix) for prefix in matrix.EXCLUDED_PREFIXES)


def test_every_route_is_in_the_matrix():
    routes = dict(resolver_routes())
    rows_by_route: dict[str, set[str]] = {}
    for row in matrix.ROWS:
        rows_by_route.setdefault(row.route, set()).add(row.method)
    problems = []
    for route, callback in routes.items():
        if excluded(route):
            continue
        if route not in rows_by_route:
            methods = sorted(view_methods(callback) or {"GET"})
            problems.append(
                f"route {route!r} ({view_label(callback)}) is not in the "
                f"isolation matrix: add a Row(route={route!r}, method=..., ...) to tests/isolation_matrix.py for each "
                f"of {methods}, with the status every actor must get on organization A's objects (and `foreign=` "
                "where organization B's objects do not answer 404), or add its prefix to EXCLUDED_PREFIXES with a "
                "reason"
            )
            continue
        implemented = view_methods(callback)
        if implemented is not None:
            for method in sorted(implemented - rows_by_route[route]):
                problems.append(
                    f"{method} {route!r} is implemented by {view_label(callback)} but has no row: add "
                    f"Row(route={route!r}, method={method!r}, ...) to tests/isolation_matrix.py"
                )
            for method in sorted(rows_by_route[route] - implemented):
                problems.append(
                    f"tests/isolation_matrix.py has a {method} row for {route!r}, which {view_label(callback)} "
                    "does not implement: remove the row"
                )
    for route in sorted(set(rows_by_route) - set(routes)):
        problems.append(f"tests/isolation_matrix.py has rows for {route!r}, which no URL pattern has: remove them")
    for prefix in matrix.EXCLUDED_PREFIXES:
        if not any(route.startswith(prefix) for route in routes):
            problems.append(f"EXCLUDED_PREFIXES names {prefix!r}, which no route starts with: remove it")
    assert not problems, "\n".join(problems)


def test_the_matrix_is_well_formed():
    seen = set()
    for row in matrix.ROWS:
        key = (row.route, row.method, row.case)
        assert key not in seen, f"duplicate row {key}: give one of them a distinct `case`"
        seen.add(key)
        assert len(row.statuses) == len(matrix.ACTORS), f"{key}: one status per actor {matrix.ACTORS}"
        assert set(row.foreign or {}) <= set(matrix.A_SIDE), f"{key}: foreign overrides name A-side actors only"


# --- The world -----------------------------------------------------------------------------------------------------

PASSWORD = "correct horse battery staple"


def _user(email: str) -> User:
    user = User.objects.create_user(email=email, password=PASSWORD)
    EmailAddress.objects.create(user=user, email=user.email, verified=True, primary=True)
    return user


def _side(
    label: str, owner: User, account_url: str, image: str, *, members: list, workspace_owner: User
) -> SimpleNamespace:
    """One organization with everything the matrix needs; `owner` owns the organization and its project, and
    `members` are (user, organization role, project role or None)."""
    org = Organization.objects.create(name=f"Lab {label}", slug=f"matrix-lab-{label.lower()}")
    Membership.objects.create(organization=org, user=owner, role=OrgRole.OWNER)
    project = Project.objects.create(organization=org, name=f"Project {label}", created_by=owner)
    ProjectMember.objects.create(project=project, user=owner, role=ProjectRole.OWNER)
    for user, org_role, project_role in members:
        Membership.objects.create(organization=org, user=user, role=org_role)
        if project_role:
            ProjectMember.objects.create(project=project, user=user, role=project_role)
    bystander = _user(f"bystander@lab-{label.lower()}.example")  # an org member in no project
    Membership.objects.create(organization=org, user=bystander, role=OrgRole.MEMBER)
    colleague = _user(f"colleague@lab-{label.lower()}.example")  # a project viewer, target of member routes
    Membership.objects.create(organization=org, user=colleague, role=OrgRole.MEMBER)
    ProjectMember.objects.create(project=project, user=colleague, role=ProjectRole.VIEWER)
    account = CloudAccount.objects.create(
        organization=org,
        name="shared-cloud",
        region="us-east-1",
        endpoint_url=account_url,
        image_overrides={"*": image},
        is_default=True,
    )
    template = template_create(
        actor=owner,
        organization=org,
        definition={
            "name": f"Lab {label} Image",
            "description": "Ubuntu with the lab's tools",
            "inherits": ["Ubuntu 24.04 Base"],
            "packages": ["samtools"],
        },
    )

    def launch(name: str) -> Workspace:
        result = workspace_services.workspace_launch(
            actor=workspace_owner, project=project, name=name, template="Ubuntu 24.04 Base", size="S"
        )
        workspace_services.workspace_provision(job_id=result.job.pk)
        return Workspace.objects.get(pk=result.workspace.pk)

    running = launch("box")  # the same name in both organizations: names resolve within the caller's view
    workspace_services.firewall_add(
        actor=owner, workspace=running, rules=[{"cidr": "198.51.100.0/24", "port": 8787, "description": "matrix"}]
    )
    stopped = launch(f"parked-{label.lower()}")
    workspace_services.workspace_act(actor=owner, workspace=stopped, action="stop")
    workspace_services.workspace_drive(workspace_id=stopped.pk, action="stop")
    stopped.refresh_from_db()
    assert running.state == "running" and stopped.state == "stopped", (running.state, stopped.state)
    invitation = invitation_services.invitation_send(
        actor=owner, project=project, email=f"invitee@partner-{label.lower()}.example", role=ProjectRole.VIEWER
    )
    event = AuditEvent.objects.filter(organization=org, actor=owner).order_by("created_at").first()
    assert event is not None
    pool = BudgetPool.objects.create(
        organization=org,
        name=f"Grant {label}",
        total_amount=Decimal("10000"),
        start_date=timezone.now() - timedelta(days=30),
        end_date=timezone.now() + timedelta(days=335),
        created_by=owner,
    )
    allocation = Allocation.objects.create(pool=pool, project=project, amount=Decimal("5000"), allocated_by=owner)
    return SimpleNamespace(
        label=label,
        org=org.pk,
        project=project.pk,
        account=account.pk,
        ws=running.pk,
        ws_name=running.name,
        ws_instance=running.provider_instance_id,
        ws_stopped=stopped.pk,
        job=running.jobs.get().pk,
        invitation=invitation.pk,
        invitation_token=invitation_services.invitation_token(invitation),
        template=template.slug,
        template_name=template.name,
        event=event.pk,
        pool=pool.pk,
        allocation=allocation.pk,
        owner=owner,
        bystander=bystander.username,
        bystander_email=bystander.email,
        colleague=colleague.username,
        person=owner.username,
        # Strings that identify this organization's objects: responses to anyone outside must not contain them.
        org_markers={
            org.pk,
            pool.pk,
            template.slug,
            template.name,
            account.pk,
            owner.email,
            bystander.email,
            colleague.email,
        },
        project_markers={
            project.pk,
            running.pk,
            stopped.pk,
            running.provider_instance_id,
            stopped.provider_instance_id,
            running.jobs.get().pk,
            invitation.pk,
            event.pk,
            allocation.pk,
        },
    )


def _spare_token(user: User) -> SimpleNamespace:
    issued = token_create(actor=user, name="spare", scopes=["read", "write"])
    return SimpleNamespace(token=issued.token.pk, token_hash=issued.token.token_hash)


@pytest.fixture(scope="module")
def matrix_cloud():
    import os

    for key, value in SANDBOX_AWS_ENV.items():
        os.environ.setdefault(key, value)
    server = start_moto_server()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def world(django_db_setup, django_db_blocker, matrix_cloud):
    """Both organizations and every actor, built once; rolled back when the module is done."""
    with django_db_blocker.unblock():
        atomic = transaction.atomic()
        atomic.__enter__()
        try:
            template_catalog_load()
            image = sandbox_image_id(matrix_cloud.url)
            users = {name: _user(f"{name}@matrix.example") for name in matrix.ACTORS if name != "anonymous"}
            # `dual` administers organization A and is a plain member of organization B (in none of its projects).
            a_members = [
                (users["dual"], OrgRole.ADMIN, None),
                (users["org_admin"], OrgRole.ADMIN, None),
                (users["viewer"], OrgRole.MEMBER, ProjectRole.VIEWER),
                (users["member"], OrgRole.MEMBER, ProjectRole.MEMBER),
                (users["admin"], OrgRole.MEMBER, ProjectRole.ADMIN),
            ]
            owner_a = _user("owner@lab-a.example")
            a = _side("A", owner_a, matrix_cloud.url, image, members=a_members, workspace_owner=users["member"])
            b_members = [(users["dual"], OrgRole.MEMBER, None)]
            b = _side(
                "B", users["outsider"], matrix_cloud.url, image, members=b_members, workspace_owner=users["outsider"]
            )
            loner = _user("loner@nowhere.example")  # belongs to no organization: someone to add
            tokens = {
                name: token_create(actor=user, name="matrix", scopes=["read", "write"]) for name, user in users.items()
            }
            mine = {name: _spare_token(user) for name, user in users.items()}
            mine["anonymous"] = _spare_token(a.owner)
            b_mine = _spare_token(b.owner)
            yield SimpleNamespace(a=a, b=b, users=users, tokens=tokens, mine=mine, b_mine=b_mine, loner=loner.email)
        finally:
            transaction.set_rollback(True)
            atomic.__exit__(None, None, None)


# --- Observing side effects ----------------------------------------------------------------------------------------

# Bookkeeping that a refused request is meant to write: not tenant data.
IGNORED_TABLES = {"accounts.FailedAuthCounter"}  # failed authentications count against the address and account
# Columns that every authenticated request may legitimately touch.
VOLATILE_COLUMNS = {("accounts", "apitoken"): {"last_used_at", "last_used_ip"}, ("accounts", "user"): {"last_login"}}
SNAPSHOT_APPS = [
    "accounts",
    "audit",
    "projects",
    "workspaces",
    "budgets",
    "idle",
    "invitations",
    "workspace_templates",
    "account",
]


def snapshot() -> dict[str, tuple[int, str, list]]:
    """Every row of every tenant-owned table: count, hash and the rows themselves (for the failure message)."""
    state = {}
    for label in SNAPSHOT_APPS:
        for model in apps.get_app_config(label).get_models():
            if model._meta.label in IGNORED_TABLES:
                continue
            skip = VOLATILE_COLUMNS.get((model._meta.app_label, model._meta.model_name), set())
            columns = [field.attname for field in model._meta.concrete_fields if field.attname not in skip]
            rows = [
                json.dumps(row, default=str, sort_keys=True)
                for row in model._base_manager.order_by("pk").values_list(*columns)
            ]
            digest = hashlib.sha256("\n".join(rows).encode()).hexdigest()
            state[model._meta.label] = (len(rows), digest, rows)
    return state


def changed_tables(before: dict, after: dict) -> list[str]:
    lines = []
    for table in sorted(set(before) | set(after)):
        if before.get(table, (0, ""))[:2] != after.get(table, (0, ""))[:2]:
            old, new = set(before.get(table, (0, "", []))[2]), set(after.get(table, (0, "", []))[2])
            lines.append(
                f"{table}: {len(old)} -> {len(new)} rows; "
                f"before: {sorted(old - new)[:3]}; after: {sorted(new - old)[:3]}"
            )
    return lines


@dataclass
class SideEffects:
    tasks: list
    cloud_calls: list


@pytest.fixture
def side_effects(monkeypatch) -> SideEffects:
    """Records every Celery task queued (apply_async / send_task) and every botocore API call made in-process."""
    import botocore.client
    import celery
    from celery.app.task import Task

    recorded = SideEffects(tasks=[], cloud_calls=[])
    original_apply_async = Task.apply_async
    original_send_task = celery.Celery.send_task
    original_api_call = botocore.client.BaseClient._make_api_call

    def apply_async(self, *args, **kwargs):
        recorded.tasks.append(self.name)
        return original_apply_async(self, *args, **kwargs)

    def send_task(self, name, *args, **kwargs):
        recorded.tasks.append(name)
        return original_send_task(self, name, *args, **kwargs)

    def make_api_call(self, operation_name, api_params):
        recorded.cloud_calls.append(f"{self.meta.service_model.service_name}:{operation_name}")
        return original_api_call(self, operation_name, api_params)

    monkeypatch.setattr(Task, "apply_async", apply_async)
    monkeypatch.setattr(celery.Celery, "send_task", send_task)
    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", make_api_call)
    return recorded


# --- Requests -----------------------------------------------------------------------------------------------------


def _fill(value, context: dict):
    if isinstance(value, str):
        return value.format(**context)
    if isinstance(value, dict):
        return {key: _fill(item, context) for key, item in value.items()}
    if isinstance(value, list):
        return [_fill(item, context) for item in value]
    return value


def client_for(world, actor: str, *, session: bool) -> APIClient:
    client = APIClient()
    if actor == "anonymous":
        return client
    if session:
        client.force_login(world.users[actor])
    else:
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {world.tokens[actor].secret}")
    return client


def prepare(world, row: matrix.Row, actor: str, *, foreign: bool):
    """The client (logged in, prelude done), path and body: everything before the request under test."""
    side = world.b if foreign else world.a
    mine = world.b_mine if foreign else world.mine[actor]
    context = {"o": side, "a": world.a, "b": world.b, "mine": mine, "loner": world.loner}
    client = client_for(world, actor, session=row.session)
    for step in row.prelude:
        client.get(_fill(step, context))
    return client, _fill(row.path, context), _fill(row.body, context)


def send(client, row: matrix.Row, path: str, body):
    # HTML pages get what a browser's form sends; the API gets JSON.
    kwargs = {"format": "multipart" if row.session else "json"} if body is not None else {}
    return getattr(client, row.method.lower())(path, body, **kwargs)


def check_envelope(path: str, response) -> None:
    if not path.startswith("/api/") or response.status_code < 400:
        return
    assert response["Content-Type"].startswith("application/json"), response["Content-Type"]
    error = response.json()["error"]
    assert set(error) >= {"code", "message", "details", "remediation", "timestamp", "request_id"}, error
    assert error["code"].isupper(), error
    assert error["request_id"] == response["X-Request-ID"], error


def check_no_leak(world, row, actor, *, foreign: bool, path: str, body, response) -> None:
    """Nothing identifying the other organization's objects shows up in a response, lists included.

    `dual` is a member of B, so only B's project-level objects (in none of whose projects they are) count for them.
    Identifiers the request itself carried may be echoed back (e.g. in a 404's message).
    """
    if actor == "anonymous" or (actor == "outsider" and row.foreign is None):
        return  # anonymous callers get nothing; `foreign=None` rows are capabilities (an invitation link)
    other = world.a if actor == "outsider" else world.b
    markers = set(other.project_markers) | (set() if actor == "dual" else set(other.org_markers))
    sent = f"{path} {json.dumps(body, default=str)}"
    content = response.content.decode(errors="replace")
    leaked = sorted(marker for marker in markers if marker and marker in content and marker not in sent)
    side = "organization A" if actor == "outsider" else "organization B"
    assert not leaked, f"{row.method} {path} as {actor} shows {side}'s {leaked}: {content[:400]}"


def read_stream(response):
    """A streamed response as a plain one (its body read), so that the checks can read `content` twice."""
    from django.http import HttpResponse

    read = HttpResponse(response.getvalue(), status=response.status_code)
    for header, value in response.items():
        read[header] = value
    return read


def run_case(world, row, actor, expected, *, foreign, side_effects, capture_on_commit):
    refused = expected >= 400
    client, path, body = prepare(world, row, actor, foreign=foreign)
    before = snapshot() if refused else None
    calls_before, tasks_before = len(side_effects.cloud_calls), len(side_effects.tasks)
    with capture_on_commit(execute=False) as callbacks:
        response = send(client, row, path, body)
    if response.streaming:  # a streamed body (the CSV export) is read once, here
        response = read_stream(response)
    where = f"{row.method} {path} as {actor}" + (" (organization B's objects)" if foreign else "")
    shown = response.content[:400].decode(errors="replace")
    assert response.status_code == expected, f"{where}: expected {expected}, got {response.status_code}: {shown}"
    check_envelope(path, response)
    check_no_leak(world, row, actor, foreign=foreign, path=path, body=body, response=response)
    if refused:
        changes = changed_tables(before, snapshot())
        assert not changes, f"{where} answered {expected} but changed the database:\n" + "\n".join(changes)
        assert not callbacks, f"{where} answered {expected} but registered on-commit work: {callbacks}"
        tasks = side_effects.tasks[tasks_before:]
        assert not tasks, f"{where} answered {expected} but queued tasks: {tasks}"
        calls = side_effects.cloud_calls[calls_before:]
        assert not calls, f"{where} answered {expected} but called the cloud: {calls}"


def _case_id(row, actor) -> str:
    return f"{row.method} {row.route}{' ' + row.case if row.case else ''} [{actor}]"


OWN_CASES = [(row, actor) for row in matrix.ROWS for actor in matrix.ACTORS]
FOREIGN_CASES = [(row, actor) for row in matrix.ROWS if row.has_foreign_objects for actor in matrix.A_SIDE]


@pytest.mark.parametrize(("row", "actor"), OWN_CASES, ids=[_case_id(row, actor) for row, actor in OWN_CASES])
def test_each_actor_gets_what_the_matrix_says_on_organization_a(
    world, row, actor, side_effects, django_capture_on_commit_callbacks
):
    expected = row.statuses[matrix.ACTORS.index(actor)]
    run_case(
        world,
        row,
        actor,
        expected,
        foreign=False,
        side_effects=side_effects,
        capture_on_commit=django_capture_on_commit_callbacks,
    )


@pytest.mark.parametrize(("row", "actor"), FOREIGN_CASES, ids=[_case_id(row, actor) for row, actor in FOREIGN_CASES])
def test_organization_b_objects_answer_404_and_nothing_changes(
    world, row, actor, side_effects, django_capture_on_commit_callbacks
):
    expected = row.foreign.get(actor, 404)
    run_case(
        world,
        row,
        actor,
        expected,
        foreign=True,
        side_effects=side_effects,
        capture_on_commit=django_capture_on_commit_callbacks,
    )


def test_the_detectors_see_what_they_look_for(world, side_effects, django_capture_on_commit_callbacks, settings):
    """The matrix's no-change checks are only worth something if they notice change."""
    from platform_site.celery import app as celery_app
    from platform_site.tasks import record_worker_heartbeat

    member = client_for(world, "member", session=False)
    before = snapshot()
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert member.post(f"/api/v1/instances/{world.a.ws}/stop").status_code == 202
    assert changed_tables(before, snapshot()), "a stop writes a transition and an audit event"
    assert callbacks, "a stop queues its task on commit"

    assert member.get(f"/api/v1/logs/{world.a.ws}?type=console").status_code == 200
    assert any(call.endswith(":GetConsoleOutput") for call in side_effects.cloud_calls), side_effects.cloud_calls

    celery_app.conf.task_always_eager = True
    try:
        record_worker_heartbeat.delay()
    finally:
        celery_app.conf.task_always_eager = False
    assert side_effects.tasks == ["platform_site.tasks.record_worker_heartbeat"]

    users = client_for(world, "dual", session=False).get("/api/v1/users")
    row = matrix.Row("api/v1/users", "GET", "/api/v1/users", matrix.S("401 200 200 200 200 200 200"))
    check_no_leak(world, row, "dual", foreign=False, path="/api/v1/users", body=None, response=users)
    with pytest.raises(AssertionError, match="organization B's"):
        check_no_leak(world, row, "viewer", foreign=False, path="/api/v1/users", body=None, response=users)
