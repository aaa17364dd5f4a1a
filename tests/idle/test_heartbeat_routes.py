"""An agent token is good for one thing: its own workspace's heartbeat. Over EVERY route of the URL resolver
(as tests/test_isolation_matrix.py walks it) and every method its view implements, a request carrying the
workspace's agent token gets:

- under /api/: 401 (TOKEN_INVALID: it is no API token) from every view that reads credentials; the few public
  views that read none (healthcheck, schema, the agent script...) answer exactly as they answer anonymously;
- anywhere else (console, admin, account pages, which read sessions and never a bearer token): exactly what an
  anonymous visitor gets (the login redirect, a 403/404, a public page);

and nothing changes: no row of any app table (the agent token's own row included), no task queued, no cloud call.
Path parameters name the token's own workspace, its project and organization: the most tempting targets."""

import re

import pytest
from django.urls import get_resolver
from rest_framework.test import APIClient

from tests.conftest import make_org, make_project, make_user
from tests.idle.agent_support import agent_client, agent_workspace, heartbeat, idle_row
from tests.test_isolation_matrix import (
    IGNORED_TABLES,
    changed_tables,
    resolver_routes,
    side_effects,  # noqa: F401 (fixture)
    view_methods,
)

pytestmark = pytest.mark.django_db(transaction=False)

SNAPSHOT_APPS = [
    "accounts",
    "audit",
    "projects",
    "workspaces",
    "budgets",
    "invitations",
    "workspace_templates",
    "account",
    "idle",
]
HEARTBEAT = "api/v1/agent/heartbeat"
_CONVERTER = re.compile(r"<(?:\w+:)?(\w+)>")
_REGEX_GROUP = re.compile(r"\(\?P<(\w+)>[^)]*\)")


def snapshot() -> dict:
    """Every row of every app table, the agent token's included (its last use must not move either)."""
    import hashlib
    import json

    from django.apps import apps

    state = {}
    for label in SNAPSHOT_APPS:
        for model in apps.get_app_config(label).get_models():
            if model._meta.label in IGNORED_TABLES:
                continue
            columns = [field.attname for field in model._meta.concrete_fields]
            if model._meta.label == "accounts.User":
                columns.remove("last_login")
            rows = [
                json.dumps(row, default=str, sort_keys=True)
                for row in model._base_manager.order_by("pk").values_list(*columns)
            ]
            state[model._meta.label] = (len(rows), hashlib.sha256("\n".join(rows).encode()).hexdigest(), rows)
    return state


def concrete_path(route: str, values: dict[str, str]) -> str:
    """A request path for a resolver route: parameters filled in, regex anchors dropped."""
    path = _CONVERTER.sub(lambda match: values.get(match.group(1), "x"), route)
    path = _REGEX_GROUP.sub(lambda match: values.get(match.group(1), "x"), path)
    path = path.replace("^", "").replace("$", "")
    return "/" + path


def public_view(callback) -> bool:
    """A view that reads no credentials, or that answers anyone (the schema): its answer to an agent token
    must be its answer to nobody, or a 401 for a token it does not know."""
    view = getattr(callback, "cls", None)
    if view is None:
        return False
    instance = view()
    return not instance.get_authenticators() or all(
        type(permission).__name__ == "AllowAny" for permission in instance.get_permissions()
    )


def send(client: APIClient, method: str, path: str):
    if method in ("GET", "HEAD", "OPTIONS"):
        return getattr(client, method.lower())(path)
    if path.startswith("/api/"):
        return getattr(client, method.lower())(path, {}, format="json")
    return getattr(client, method.lower())(path, {}, format="multipart")


def test_an_agent_token_opens_no_route_but_its_heartbeat(settings, side_effects):  # noqa: F811
    # Every refused request counts as a failed authentication; the limit would turn later 401s into 429s.
    settings.CARREL_FAILED_AUTH_LIMIT = "100000/15min"
    settings.CARREL_RATE_LIMITS = {"token": "100000/hour", "user": "100000/hour", "ip": "100000/hour"}
    owner = make_user("owner@lab-a.example")
    org = make_org("Lab A", owner)
    project = make_project(org, "Genomics", owner)
    workspace = agent_workspace(project, owner, name="box")
    values = {
        "name": workspace.name,
        "workspace_id": workspace.pk,
        "project_id": project.pk,
        "organization_id": org.pk,
        "username": owner.username,
        "job_id": workspace.jobs.get().pk,
        "app_label": "workspaces",
        "url": "workspaces/workspace/",
    }
    cases = []
    for route, callback in resolver_routes():
        if route == HEARTBEAT:
            continue
        methods = view_methods(callback) or {"GET", "POST"}
        cases += [(route, callback, method, concrete_path(route, values)) for method in sorted(methods)]
    assert len(cases) > 300, "the resolver walk found too few routes"

    anonymous = {}
    for route, _, method, path in cases:
        response = send(APIClient(raise_request_exception=False), method, path)
        anonymous[(route, method)] = (response.status_code, response.get("Location"))

    agent = agent_client(workspace)
    agent.raise_request_exception = False  # a page that fails unconfigured (an OAuth login) fails for both alike
    before = snapshot()
    problems = []
    for route, callback, method, path in cases:
        response = send(agent, method, path)
        got = (response.status_code, response.get("Location"))
        where = f"{method} {path} ({route})"
        expected = anonymous[(route, method)]
        if path.startswith("/api/") and (expected[0] == 401 or (route != "^api/" and not public_view(callback))):
            code = response.json()["error"]["code"] if response.status_code == 401 else None
            if code != "TOKEN_INVALID":
                problems.append(f"{where}: expected 401 TOKEN_INVALID, got {response.status_code} {code or ''}")
        elif got != expected and response.status_code != 401:
            problems.append(f"{where}: got {got}, anonymous gets {expected}")
    assert not problems, "\n".join(problems)
    changes = changed_tables(before, snapshot())
    assert not changes, "an agent token changed the database:\n" + "\n".join(changes)
    assert not side_effects.tasks, side_effects.tasks
    assert not side_effects.cloud_calls, side_effects.cloud_calls

    # ...while the one route it is for works, for its own workspace only.
    assert heartbeat(agent).status_code == 200
    assert idle_row(workspace)["signal_source"] == "agent"


def test_the_walk_covers_the_heartbeat_and_every_api_route():
    routes = {route for route, _ in resolver_routes()}
    assert HEARTBEAT in routes and "api/v1/agent/script" in routes
    api_routes = {route for route in routes if route.startswith("api/v1/")}
    named = {str(p.pattern) for p in get_resolver("platform_site.api.urls").url_patterns}
    assert {route.removeprefix("api/v1/") for route in api_routes} >= named - {"^api/"}
