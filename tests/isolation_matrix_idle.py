"""Isolation-matrix rows of idle detection (see tests/isolation_matrix.py): the policies API (/api/v1/idle/…,
/api/v1/projects/{id}/idle-policy), the agent's routes, the e-mail's snooze link and the console's snooze and
idle-settings forms.

A's running workspace `box` belongs to `member` and has idle detection on (every launch sets it up); `dual` and
`org_admin` administer organization A, so they manage its workspaces and its idle profiles; no actor owns A's
project, so nobody here may set its idle default. The agent routes take an agent token only: every person's
token or session is refused (tests/idle/test_agent_* cover the agent token itself on every route).
"""

from tests.isolation_matrix import A_SIDE, V1, Row, S

IDLE_WS = V1 + "idle/instances/<str:name>"
CONSOLE_WS = "workspaces/<str:workspace_id>/"
NEW_PROFILE = {"organization": "{o.org}", "name": "matrix-quiet", "idle_threshold_minutes": 30, "cpu_threshold": 3.0}

# fmt: off
ROWS: list[Row] = [
    #                                                                            anon outs dual view memb admn orgA
    # --- Profiles ---------------------------------------------------------------------------------------------------
    Row(V1 + "idle/profiles", "GET", "/api/v1/idle/profiles",                 S("401  200  200  200  200  200  200")),
    # Another organization's filter leaves the built-in profiles only.
    Row(V1 + "idle/profiles", "GET", "/api/v1/idle/profiles?organization={o.org}",
                                                                               S("401  200  200  200  200  200  200"),
        case="?organization=", foreign={actor: 200 for actor in A_SIDE}),
    # Organization owners and admins create profiles (`dual` is a plain member of B).
    Row(V1 + "idle/profiles", "POST", "/api/v1/idle/profiles",                S("401  404  201  403  403  403  201"),
        body=NEW_PROFILE, foreign={"dual": 403}),
    Row(V1 + "idle/profiles", "POST", "/api/v1/idle/profiles",                S("401  404  409  403  403  403  409"),
        body={**NEW_PROFILE, "name": "batch"}, case="a built-in's name", foreign={"dual": 403}),
    # --- A workspace's idle state, settings and snooze ------------------------------------------------------------
    Row(IDLE_WS, "GET", "/api/v1/idle/instances/{o.ws}",                      S("401  404  200  200  200  200  200")),
    Row(IDLE_WS + "/configure", "POST", "/api/v1/idle/instances/{o.ws}/configure",
                                                                               S("401  404  200  403  200  200  200"),
        body={"profile": "batch", "idle_threshold_minutes": 30}),
    Row(IDLE_WS + "/snooze", "POST", "/api/v1/idle/instances/{o.ws}/snooze", S("401  404  200  403  200  200  200")),
    # A stopped workspace has nothing to snooze (409, checked after permissions).
    Row(IDLE_WS + "/snooze", "POST", "/api/v1/idle/instances/{o.ws_stopped}/snooze",
                                                                               S("401  404  409  403  409  409  409"),
        case="stopped"),
    # --- Warnings and history (lists scoped to the caller) ---------------------------------------------------------
    Row(V1 + "idle/warnings", "GET", "/api/v1/idle/warnings",                 S("401  200  200  200  200  200  200")),
    Row(V1 + "idle/history", "GET", "/api/v1/idle/history",                   S("401  200  200  200  200  200  200")),
    Row(V1 + "idle/history", "GET", "/api/v1/idle/history?project={o.project}",
                                                                               S("401  404  200  200  200  200  200"),
        case="?project="),
    Row(V1 + "idle/history", "GET", "/api/v1/idle/history?instance={o.ws}", S("401  404  200  200  200  200  200"),
        case="?instance="),
    # --- A project's idle default (its owners set it; A's owner is not an actor) ----------------------------------
    Row(V1 + "projects/<str:project_id>/idle-policy", "GET", "/api/v1/projects/{o.project}/idle-policy",
                                                                               S("401  404  200  200  200  200  200")),
    Row(V1 + "projects/<str:project_id>/idle-policy", "PUT", "/api/v1/projects/{o.project}/idle-policy",
                                                                               S("401  404  403  403  403  403  403"),
        body={"profile": "batch", "enabled": True}),
    # --- The agent's routes: the heartbeat takes an agent token only; the script is public code -----------------
    Row(V1 + "agent/heartbeat", "POST", "/api/v1/agent/heartbeat",            S("401  401  401  401  401  401  401"),
        body={"cpu_percent": [1.0, 2.0], "memory_percent": 10.0, "sessions": 0, "busy": False}),
    Row(V1 + "agent/heartbeat", "POST", "/api/v1/agent/heartbeat",            S("401  401  401  401  401  401  401"),
        body={"cpu_percent": [1.0, 2.0], "memory_percent": 10.0, "sessions": 0, "busy": False}, session=True,
        case="a person's session"),
    Row(V1 + "agent/script", "GET", "/api/v1/agent/script",                   S("200  200  200  200  200  200  200")),
    # --- The warning e-mail's snooze link: the signed token is the credential; a bad one is refused for everyone -
    Row("idle/snooze/<str:token>", "GET", "/idle/snooze/not-a-real-token",    S("404  404  404  404  404  404  404"),
        session=True, foreign=None),
    # --- Console: the banner's snooze button and the workspace page's idle settings form --------------------------
    Row(CONSOLE_WS + "snooze", "GET", "/workspaces/{o.ws}/snooze",             S("302  404  302  302  302  302  302"),
        session=True),
    Row(CONSOLE_WS + "snooze", "POST", "/workspaces/{o.ws}/snooze",            S("302  404  302  403  302  302  302"),
        session=True, body={"next": "/"}),
    Row(CONSOLE_WS + "idle", "GET", "/workspaces/{o.ws}/idle",                 S("302  404  302  302  302  302  302"),
        session=True),
    Row(CONSOLE_WS + "idle", "POST", "/workspaces/{o.ws}/idle",                S("302  404  302  403  302  302  302"),
        session=True, body={"enabled": "on", "profile": "batch", "idle_threshold_minutes": "30", "action": "stop"}),
]
# fmt: on
