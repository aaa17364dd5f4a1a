"""The isolation matrix: the status every kind of caller gets on every route and method (DESIGN.md principle 9).

tests/test_isolation_matrix.py walks the URL resolver; a route with no row here, or a row whose route is gone,
fails it. Each row is run by every actor against organization A's objects (the `statuses` column, in the order of
ACTORS), then by every A-side actor against organization B's objects: those answer 404 unless `foreign` says
otherwise (only `dual`, who is also a member of B, may see some of B's organization-level objects). Whenever a
refusal (4xx) is expected, the test also proves that nothing changed: no row of any app table, no Celery task
queued, no cloud call.

The actors:
    anonymous  no credentials
    outsider   owner of organization B only: everything of A is foreign to them
    dual       admin of organization A and plain member of organization B (in none of B's projects)
    viewer     organization A member, viewer of A's project
    member     organization A member, member of A's project; owns A's workspaces
    admin      organization A member, admin of A's project
    org_admin  admin of organization A, in no project (organization admins administer every project)

Placeholders in paths and bodies: `o` is the organization under test (A, or B in the foreign run), with
    o.org  o.project  o.account (cloud account)  o.ws (running workspace)  o.ws_stopped  o.ws_instance (its i-…)
    o.job  o.invitation  o.invitation_token (the link's secret)  o.template (slug)  o.template_name
    o.event (an organization event by its owner)  o.person (the owner's username)  o.owner.email
    o.bystander / o.bystander_email (an org member in no project)  o.colleague (a project viewer's username)
`mine` is the caller's own spare token (`mine.token`, `mine.token_hash`), or B's owner's in the foreign run;
`loner` is the e-mail of a user in no organization. `a` and `b` name an organization explicitly, for rows that mix
them (those rows are not repeated against B). Workspaces are referenced by workspace id (names may be ambiguous);
A's and B's running workspaces are both named "box".

To add a route: add one Row per method with the status for each actor; rows with no object of an organization in
the path or body are not repeated against B.
"""

from dataclasses import dataclass, field

ACTORS = ("anonymous", "outsider", "dual", "viewer", "member", "admin", "org_admin")
A_SIDE = ("dual", "viewer", "member", "admin", "org_admin")

# Routes deliberately left out, and why.
EXCLUDED_PREFIXES = {
    "admin/": (
        "Django admin: staff-only and guarded by Django's own admin-site permission checks; platform superusers "
        "see every tenant there by design (tests/platform/test_admin.py covers who gets in)."
    ),
    "accounts/": (
        "django-allauth's login, sign-up, e-mail, password and OAuth callback pages: they act only on the "
        "session's own user and hold no tenant-owned object (tests/accounts covers them)."
    ),
}


@dataclass(frozen=True)
class Row:
    route: str  # the resolver's pattern, e.g. "api/v1/projects/<str:project_id>"
    method: str
    path: str
    statuses: tuple[int, ...]  # one per actor, in ACTORS order
    body: dict | None = None
    foreign: dict | None = field(default_factory=dict)  # A-side actor -> status on B's objects (default 404)
    case: str = ""  # tells rows of one route and method apart
    session: bool = False  # HTML pages: log in with a session instead of a bearer token
    prelude: tuple[str, ...] = ()  # GETs made first with the same client (e.g. opening an invitation link)

    @property
    def has_foreign_objects(self) -> bool:
        text = f"{self.path} {self.body} {self.prelude}"
        return self.foreign is not None and ("{o." in text or "{mine." in text)


def S(columns: str) -> tuple[int, ...]:  # noqa: N802 (reads like a table)
    """'401 404 200 ...' -> (401, 404, 200, ...), one status per actor in ACTORS order."""
    return tuple(int(status) for status in columns.split())


V1 = "api/v1/"
WS = V1 + "instances/<str:name>"
ORG = V1 + "organizations/<str:organization_id>"
PROJ = V1 + "projects/<str:project_id>"
INV = V1 + "invitations/<str:invitation_id>"
TEMPLATE = {"name": "Matrix Image", "inherits": ["Ubuntu 24.04 Base"], "packages": ["htop"]}
NEW_INVITEE = "matrix.invitee@partner.example"

# fmt: off
ROWS: list[Row] = [
    #                                                                            anon outs dual view memb admn orgA
    # --- HTML pages ------------------------------------------------------------------------------------------------
    Row("", "GET", "/",                                                        S("200  200  200  200  200  200  200")),
    Row("invitations/accept/<str:token>/", "GET", "/invitations/accept/{o.invitation_token}/",
                                                                               S("302  302  302  302  302  302  302"),
        session=True, foreign=None),  # the link is a capability: whoever holds it may open it
    Row("invitations/accept/", "GET", "/invitations/accept/",                  S("404  404  404  404  404  404  404"),
        session=True, case="no link opened"),
    Row("invitations/accept/", "GET", "/invitations/accept/",                  S("200  200  200  200  200  200  200"),
        session=True, case="link opened", prelude=("/invitations/accept/{o.invitation_token}/",), foreign=None),
    Row("invitations/accept/", "POST", "/invitations/accept/",                 S("404  404  404  404  404  404  404"),
        session=True, body={"action": "accept"}, case="no link opened"),
    # Only the invitee (a verified owner of the invited address) may accept; none of the actors is.
    Row("invitations/accept/", "POST", "/invitations/accept/",                 S("302  403  403  403  403  403  403"),
        session=True, body={"action": "accept"}, case="link opened",
        prelude=("/invitations/accept/{o.invitation_token}/",), foreign=None),
    # --- System -----------------------------------------------------------------------------------------------------
    Row(V1 + "healthcheck", "GET", "/api/v1/healthcheck",                     S("200  200  200  200  200  200  200")),
    Row(V1 + "daemon/status", "GET", "/api/v1/daemon/status",                 S("401  200  200  200  200  200  200")),
    Row(V1 + "schema/", "GET", "/api/v1/schema/",                             S("200  200  200  200  200  200  200")),
    Row(V1 + "docs/", "GET", "/api/v1/docs/",                                 S("200  200  200  200  200  200  200")),
    Row("^api/", "GET", "/api/v1/no-such-route",                              S("404  404  404  404  404  404  404")),
    Row("^api/", "POST", "/api/v2/projects",                                  S("404  404  404  404  404  404  404"),
        body={"name": "x"}),
    # --- Login --------------------------------------------------------------------------------------------------------
    Row(V1 + "auth/providers", "GET", "/api/v1/auth/providers",               S("200  200  200  200  200  200  200")),
    Row(V1 + "auth/login", "GET", "/api/v1/auth/login?provider=password",     S("302  302  302  302  302  302  302")),
    Row(V1 + "auth/logout", "POST", "/api/v1/auth/logout",                    S("200  200  200  200  200  200  200")),
    # --- People -------------------------------------------------------------------------------------------------------
    Row(V1 + "me/profile", "GET", "/api/v1/me/profile",                       S("401  200  200  200  200  200  200")),
    Row(V1 + "users", "GET", "/api/v1/users",                                 S("401  200  200  200  200  200  200")),
    Row(V1 + "users/<str:username>/profile", "GET", "/api/v1/users/{o.person}/profile",
                                                                               S("401  404  200  200  200  200  200"),
        foreign={"dual": 200}),
    # --- Tokens -------------------------------------------------------------------------------------------------------
    Row(V1 + "tokens", "GET", "/api/v1/tokens",                               S("401  200  200  200  200  200  200")),
    Row(V1 + "tokens", "POST", "/api/v1/tokens",                              S("401  201  201  201  201  201  201"),
        body={"name": "matrix-new", "scopes": ["read"]}),
    Row(V1 + "tokens/purge", "POST", "/api/v1/tokens/purge",                  S("401  200  200  200  200  200  200"),
        body={}),
    # A wrong password for someone else's address purges nothing, whoever asks.
    Row(V1 + "tokens/purge", "POST", "/api/v1/tokens/purge",                  S("401  401  401  401  401  401  401"),
        body={"email": "{o.owner.email}", "password": "not the password"}, case="wrong password",
        foreign={actor: 401 for actor in A_SIDE}),
    Row(V1 + "tokens/revoke/<str:digest>", "POST", "/api/v1/tokens/revoke/{mine.token_hash}",
                                                                               S("401  200  200  200  200  200  200")),
    Row(V1 + "tokens/<str:token_id>", "GET", "/api/v1/tokens/{mine.token}",   S("401  200  200  200  200  200  200")),
    Row(V1 + "tokens/<str:token_id>", "DELETE", "/api/v1/tokens/{mine.token}",
                                                                               S("401  204  204  204  204  204  204")),
    # --- Organizations ------------------------------------------------------------------------------------------------
    Row(V1 + "organizations", "GET", "/api/v1/organizations",                 S("401  200  200  200  200  200  200")),
    Row(V1 + "organizations", "POST", "/api/v1/organizations",                S("401  201  201  201  201  201  201"),
        body={"name": "Matrix New Lab"}),
    Row(ORG, "GET", "/api/v1/organizations/{o.org}",                          S("401  404  200  200  200  200  200"),
        foreign={"dual": 200}),
    Row(ORG, "PATCH", "/api/v1/organizations/{o.org}",                        S("401  404  200  403  403  403  200"),
        body={"name": "Renamed Lab"}, foreign={"dual": 403}),
    Row(ORG, "DELETE", "/api/v1/organizations/{o.org}",                       S("401  404  403  403  403  403  403"),
        foreign={"dual": 403}),
    Row(ORG + "/members", "GET", "/api/v1/organizations/{o.org}/members",     S("401  404  200  200  200  200  200"),
        foreign={"dual": 200}),
    Row(ORG + "/members", "POST", "/api/v1/organizations/{o.org}/members",    S("401  404  201  403  403  403  201"),
        body={"email": "{loner}", "role": "member"}, foreign={"dual": 403}),
    Row(ORG + "/members/<str:username>", "GET", "/api/v1/organizations/{o.org}/members/{o.bystander}",
                                                                               S("401  404  200  200  200  200  200"),
        foreign={"dual": 200}),
    Row(ORG + "/members/<str:username>", "PATCH", "/api/v1/organizations/{o.org}/members/{o.bystander}",
                                                                               S("401  404  200  403  403  403  200"),
        body={"role": "admin"}, foreign={"dual": 403}),
    Row(ORG + "/members/<str:username>", "DELETE", "/api/v1/organizations/{o.org}/members/{o.bystander}",
                                                                               S("401  404  204  403  403  403  204"),
        foreign={"dual": 403}),
    # --- Projects -----------------------------------------------------------------------------------------------------
    Row(V1 + "projects", "GET", "/api/v1/projects",                           S("401  200  200  200  200  200  200")),
    Row(V1 + "projects", "GET", "/api/v1/projects?organization={o.org}",      S("401  200  200  200  200  200  200"),
        case="?organization=", foreign={actor: 200 for actor in A_SIDE}),
    # Any member of an organization may create a project in it.
    Row(V1 + "projects", "POST", "/api/v1/projects",                          S("401  404  201  201  201  201  201"),
        body={"name": "Matrix New Project", "organization": "{o.org}"}, foreign={"dual": 201}),
    # Members of a new project must belong to its organization.
    Row(V1 + "projects", "POST", "/api/v1/projects",                          S("401  404  400  400  400  400  400"),
        body={"name": "Matrix New Project", "organization": "{a.org}", "members": [{"email": "{b.bystander_email}"}]},
        case="with a member of B"),
    Row(PROJ, "GET", "/api/v1/projects/{o.project}",                          S("401  404  200  200  200  200  200")),
    Row(PROJ, "PATCH", "/api/v1/projects/{o.project}",                        S("401  404  200  403  403  200  200"),
        body={"description": "changed"}),
    # Only owners delete (and A's project has live workspaces, which would make it a 409 for them).
    Row(PROJ, "DELETE", "/api/v1/projects/{o.project}",                       S("401  404  403  403  403  403  403")),
    Row(PROJ + "/members", "GET", "/api/v1/projects/{o.project}/members",     S("401  404  200  200  200  200  200")),
    Row(PROJ + "/members", "POST", "/api/v1/projects/{o.project}/members",    S("401  404  201  403  403  201  201"),
        body={"email": "{o.bystander_email}", "role": "viewer"}),
    Row(PROJ + "/members", "POST", "/api/v1/projects/{a.project}/members",    S("401  404  400  403  403  400  400"),
        body={"email": "{b.bystander_email}", "role": "viewer"}, case="a member of B"),
    Row(PROJ + "/members/<str:username>", "GET", "/api/v1/projects/{o.project}/members/{o.colleague}",
                                                                               S("401  404  200  200  200  200  200")),
    Row(PROJ + "/members/<str:username>", "PATCH", "/api/v1/projects/{o.project}/members/{o.colleague}",
                                                                               S("401  404  200  403  403  200  200"),
        body={"role": "member"}),
    Row(PROJ + "/members/<str:username>", "DELETE", "/api/v1/projects/{o.project}/members/{o.colleague}",
                                                                               S("401  404  204  403  403  204  204")),
    # --- Templates ----------------------------------------------------------------------------------------------------
    Row(V1 + "templates", "GET", "/api/v1/templates",                         S("401  200  200  200  200  200  200")),
    Row(V1 + "templates", "POST", "/api/v1/templates",                        S("401  404  201  403  403  403  201"),
        body={"organization": "{o.org}", "definition": TEMPLATE}, foreign={"dual": 403}),
    Row(V1 + "templates/validate", "GET", "/api/v1/templates/validate",       S("401  200  200  200  200  200  200")),
    Row(V1 + "templates/<str:name>/info", "GET", "/api/v1/templates/{o.template}/info",
                                                                               S("401  404  200  200  200  200  200"),
        foreign={"dual": 200}),
    Row(V1 + "templates/<str:name>", "DELETE", "/api/v1/templates/{o.template}",
                                                                               S("401  404  204  403  403  403  204"),
        foreign={"dual": 403}),
    # --- Workspaces ---------------------------------------------------------------------------------------------------
    Row(V1 + "instances", "GET", "/api/v1/instances",                         S("401  200  200  200  200  200  200")),
    # Filtering on another organization's project is an empty list, not an error.
    Row(V1 + "instances", "GET", "/api/v1/instances?project={o.project}",     S("401  200  200  200  200  200  200"),
        case="?project=", foreign={actor: 200 for actor in A_SIDE}),
    Row(V1 + "instances/launch", "POST", "/api/v1/instances/launch",          S("401  404  202  403  202  202  202"),
        body={"name": "matrix-new", "template": "Ubuntu 24.04 Base", "project": "{o.project}"}),
    # B's private template and B's cloud account cannot be used in A's project, even by `dual`, who may see them.
    Row(V1 + "instances/launch", "POST", "/api/v1/instances/launch",          S("401  404  404  403  404  404  404"),
        body={"name": "matrix-new", "template": "{b.template_name}", "project": "{a.project}"},
        case="B's template in A's project"),
    Row(V1 + "instances/launch", "POST", "/api/v1/instances/launch",          S("401  404  404  404  404  404  404"),
        body={"name": "new", "template": "Ubuntu 24.04 Base", "project": "{a.project}", "profile": "{b.account}"},
        case="B's cloud account in A's project"),
    Row(WS, "GET", "/api/v1/instances/{o.ws}",                                S("401  404  200  200  200  200  200")),
    Row(WS, "GET", "/api/v1/instances/{o.ws_instance}",                       S("401  404  200  200  200  200  200"),
        case="by instance id"),
    # Both organizations have a workspace named "box": each caller sees their own (B's for the outsider).
    Row(WS, "GET", "/api/v1/instances/box",                                   S("401  200  200  200  200  200  200"),
        case="by name", foreign=None),
    Row(WS, "PATCH", "/api/v1/instances/{o.ws}",                              S("401  404  200  403  200  200  200"),
        body={"name": "renamed-box"}),
    Row(WS + "/stop", "POST", "/api/v1/instances/{o.ws}/stop",                S("401  404  202  403  202  202  202")),
    Row(WS + "/stop", "POST", "/api/v1/instances/{o.ws_instance}/stop",       S("401  404  202  403  202  202  202"),
        case="by instance id"),
    Row(WS + "/start", "POST", "/api/v1/instances/{o.ws_stopped}/start",      S("401  404  202  403  202  202  202")),
    Row(WS + "/hibernate", "POST", "/api/v1/instances/{o.ws}/hibernate",      S("401  404  202  403  202  202  202")),
    # A running workspace was never hibernated: resuming it is a mistake (409), checked after permissions.
    Row(WS + "/resume", "POST", "/api/v1/instances/{o.ws}/resume",            S("401  404  409  403  409  409  409")),
    Row(WS + "/terminate", "POST", "/api/v1/instances/{o.ws}/terminate",      S("401  404  202  403  202  202  202"),
        body={"confirm": "DELETE"}),
    Row(WS + "/hibernation-status", "GET", "/api/v1/instances/{o.ws}/hibernation-status",
                                                                               S("401  404  200  200  200  200  200")),
    Row(WS + "/connect", "GET", "/api/v1/instances/{o.ws}/connect",           S("401  404  200  200  200  200  200")),
    Row(WS + "/extend", "POST", "/api/v1/instances/{o.ws}/extend",            S("401  404  204  403  204  204  204"),
        body={"hours": 2}),
    Row(WS + "/usage", "GET", "/api/v1/instances/{o.ws}/usage",               S("401  404  200  200  200  200  200")),
    Row(WS + "/sysinfo", "GET", "/api/v1/instances/{o.ws}/sysinfo",           S("401  404  200  200  200  200  200")),
    Row(WS + "/firewall", "GET", "/api/v1/instances/{o.ws}/firewall",         S("401  404  200  200  200  200  200")),
    Row(WS + "/firewall", "POST", "/api/v1/instances/{o.ws}/firewall",        S("401  404  201  403  201  201  201"),
        body={"rules": [{"cidr": "203.0.113.0/24", "port": 443}]}),
    Row(WS + "/firewall", "DELETE", "/api/v1/instances/{o.ws}/firewall",      S("401  404  204  403  204  204  204")),
    Row(V1 + "jobs/<str:job_id>", "GET", "/api/v1/jobs/{o.job}",              S("401  404  200  200  200  200  200")),
    Row(V1 + "logs", "GET", "/api/v1/logs",                                   S("401  200  200  200  200  200  200")),
    Row(V1 + "logs/<str:name>/types", "GET", "/api/v1/logs/{o.ws}/types",     S("401  404  200  200  200  200  200")),
    Row(V1 + "logs/<str:name>", "GET", "/api/v1/logs/{o.ws}?type=console&tail=5",
                                                                               S("401  404  200  200  200  200  200")),
    # --- Profiles (cloud accounts) ------------------------------------------------------------------------------------
    Row(V1 + "profiles", "GET", "/api/v1/profiles",                           S("401  200  200  200  200  200  200")),
    Row(V1 + "profiles/current", "GET", "/api/v1/profiles/current",           S("401  200  200  200  200  200  200")),
    # Organization members may use its cloud accounts, so `dual` may switch to B's.
    Row(V1 + "profiles/switch", "POST", "/api/v1/profiles/switch",            S("401  404  200  200  200  200  200"),
        body={"profile_name": "{o.account}"}, foreign={"dual": 200}),
    Row(V1 + "profiles/switch", "POST", "/api/v1/profiles/switch",            S("401  404  200  200  200  200  200"),
        body={"project": "{o.project}"}, case="project"),
    # --- Invitations --------------------------------------------------------------------------------------------------
    Row(V1 + "invitations/send", "POST", "/api/v1/invitations/send",          S("401  404  201  403  403  201  201"),
        body={"project_id": "{o.project}", "email": NEW_INVITEE, "role": "viewer"}),
    Row(V1 + "invitations/bulk", "POST", "/api/v1/invitations/bulk",          S("401  404  200  403  403  200  200"),
        body={"project_id": "{o.project}", "invitations": [{"email": NEW_INVITEE}], "default_role": "viewer"}),
    Row(V1 + "invitations/me", "GET", "/api/v1/invitations/me",               S("401  200  200  200  200  200  200")),
    Row(V1 + "invitations/project/<str:project_id>", "GET", "/api/v1/invitations/project/{o.project}",
                                                                               S("401  404  200  403  403  200  200")),
    # Invitations are visible to the project's owners and admins and to the invitee; to anyone else they do not exist.
    Row(INV, "GET", "/api/v1/invitations/{o.invitation}",                     S("401  404  200  404  404  200  200")),
    Row(INV, "DELETE", "/api/v1/invitations/{o.invitation}",                  S("401  404  204  404  404  204  204")),
    Row(INV + "/accept", "POST", "/api/v1/invitations/{o.invitation}/accept", S("401  404  403  404  404  403  403"),
        body={}),
    Row(INV + "/decline", "POST", "/api/v1/invitations/{o.invitation}/decline",
                                                                               S("401  404  403  404  404  403  403"),
        body={"reason": "no"}),
    Row(INV + "/resend", "POST", "/api/v1/invitations/{o.invitation}/resend", S("401  404  200  404  404  200  200")),
    # --- Audit --------------------------------------------------------------------------------------------------------
    Row(V1 + "audit", "GET", "/api/v1/audit",                                 S("401  200  200  200  200  200  200")),
    Row(V1 + "audit", "GET", "/api/v1/audit?organization={o.org}",            S("401  200  200  200  200  200  200"),
        case="?organization=", foreign={actor: 200 for actor in A_SIDE}),
    # An organization's trail is read by its owners and admins (`dual` is a plain member of B: 404 there too).
    Row(V1 + "audit/<str:event_id>", "GET", "/api/v1/audit/{o.event}",        S("401  404  200  404  404  404  200")),
]
# fmt: on

# Money routes keep their rows in their own modules (o.pool and o.allocation are A's or B's pool and allocation).
# The browser console's pages keep theirs in tests/isolation_matrix_console.py; idle detection's (API, agent,
# snooze link and console forms) are in tests/isolation_matrix_idle.py.
from tests.isolation_matrix_console import ROWS as CONSOLE_ROWS  # noqa: E402
from tests.isolation_matrix_costs import ROWS as COST_ROWS  # noqa: E402
from tests.isolation_matrix_idle import ROWS as IDLE_ROWS  # noqa: E402
from tests.isolation_matrix_pools import ROWS as POOL_ROWS  # noqa: E402

ROWS += POOL_ROWS + COST_ROWS + CONSOLE_ROWS + IDLE_ROWS
