"""Isolation-matrix rows of the browser console's pages (see tests/isolation_matrix.py).

Console pages are session pages: anonymous visitors are sent to sign in (302); an object of another organization
is the console's 404 page, as in the API; a request the page offers no button for (PERMISSION_DENIED) is the 403
page; a form that succeeds redirects (302, post/redirect/get); a refused state change (e.g. resizing a running
workspace) redirects back with a message. A's running workspace `box` belongs to `member`; `dual` and `org_admin`
administer organization A (so its projects and workspaces), `viewer` only looks.
"""

from tests.isolation_matrix import NEW_INVITEE, Row, S

WS = "workspaces/<str:workspace_id>/"
ORG = "organizations/<str:organization_id>/"
POOL = ORG + "budgets/<str:pool_id>/"
MANAGERS_ONLY_FOREIGN = {"dual": 403}  # `dual` is a plain member of B: B's organization pages are 403 to them

# fmt: off
ROWS: list[Row] = [
    #                                                                            anon outs dual view memb admn orgA
    # --- Home -------------------------------------------------------------------------------------------------------
    # Any member of an organization creates projects in it; `dual` belongs to B too.
    Row("", "POST", "/",                                                       S("403  404  302  302  302  302  302"),
        session=True, body={"name": "Console Project", "organization": "{o.org}"}, foreign={"dual": 302}),
    Row("home/workspaces", "GET", "/home/workspaces",                         S("403  200  200  200  200  200  200"),
        session=True),
    # Invitations are answered only by the invitee (none of the actors): as if they did not exist.
    Row("home/invitations/<str:invitation_id>/accept", "POST", "/home/invitations/{o.invitation}/accept",
                                                                               S("302  404  404  404  404  404  404"),
        session=True, body={}),
    Row("home/invitations/<str:invitation_id>/decline", "POST", "/home/invitations/{o.invitation}/decline",
                                                                               S("302  404  404  404  404  404  404"),
        session=True, body={}),
    # --- Workspace --------------------------------------------------------------------------------------------------
    Row(WS, "GET", "/workspaces/{o.ws}/",                                      S("302  404  200  200  200  200  200"),
        session=True),
    Row(WS + "live", "GET", "/workspaces/{o.ws}/live",                         S("302  404  200  200  200  200  200"),
        session=True),
    # The action addresses answer a GET with the workspace's page (a redirect), or 404 when it is foreign.
    Row(WS + "act", "GET", "/workspaces/{o.ws}/act",                           S("302  404  302  302  302  302  302"),
        session=True),
    Row(WS + "act", "POST", "/workspaces/{o.ws}/act",                          S("302  404  302  403  302  302  302"),
        session=True, body={"action": "stop"}),
    Row(WS + "extend", "GET", "/workspaces/{o.ws}/extend",                     S("302  404  302  302  302  302  302"),
        session=True),
    Row(WS + "extend", "POST", "/workspaces/{o.ws}/extend",                    S("302  404  302  403  302  302  302"),
        session=True, body={"hours": "2"}),
    Row(WS + "resize", "GET", "/workspaces/{o.ws_stopped}/resize",             S("302  404  302  302  302  302  302"),
        session=True),
    Row(WS + "resize", "POST", "/workspaces/{o.ws_stopped}/resize",            S("302  404  302  403  302  302  302"),
        session=True, body={"size": "M"}),
    Row(WS + "terminate", "GET", "/workspaces/{o.ws}/terminate",               S("302  404  302  302  302  302  302"),
        session=True),
    Row(WS + "terminate", "POST", "/workspaces/{o.ws}/terminate",              S("302  404  302  403  302  302  302"),
        session=True, body={"confirm_name": "box"}),
    Row(WS + "firewall/add", "GET", "/workspaces/{o.ws}/firewall/add",         S("302  404  302  302  302  302  302"),
        session=True),
    Row(WS + "firewall/add", "POST", "/workspaces/{o.ws}/firewall/add",        S("302  404  302  403  302  302  302"),
        session=True, body={"from_port": "8888", "protocol": "tcp", "cidr": "203.0.113.0/24", "description": "matrix"}),
    Row(WS + "firewall/remove", "GET", "/workspaces/{o.ws}/firewall/remove",   S("302  404  302  302  302  302  302"),
        session=True),
    Row(WS + "firewall/remove", "POST", "/workspaces/{o.ws}/firewall/remove",  S("302  404  302  403  302  302  302"),
        session=True, body={"position": "1"}),
    # --- Launch (members and above launch; a viewer's project is not offered, and the service refuses it) ----------
    Row("launch/", "GET", "/launch/",                                          S("302  200  200  200  200  200  200"),
        session=True),
    # A viewer can launch nowhere: the page says how to get a project, whatever project is asked for.
    Row("launch/", "GET", "/launch/?project={o.project}",                      S("302  404  200  200  200  200  200"),
        session=True, case="?project=", foreign={"viewer": 200}),
    Row("launch/", "POST", "/launch/",                                         S("302  404  302  403  302  302  302"),
        foreign={"viewer": 403},
        session=True, body={"project": "{o.project}", "template": "ubuntu-24-04-base", "size": "S",
                            "name": "console-box", "ttl_hours": "4", "launch": "1"}),
    # --- Project (owners and admins manage members and invitations; A's owner is not an actor) ---------------------
    Row("projects/<str:project_id>/", "GET", "/projects/{o.project}/",         S("302  404  200  200  200  200  200"),
        session=True),
    Row("projects/<str:project_id>/invitations/live", "GET", "/projects/{o.project}/invitations/live",
                                                                               S("302  404  200  403  403  200  200"),
        session=True),
    Row("projects/<str:project_id>/members/<str:username>/role", "POST",
        "/projects/{o.project}/members/{o.colleague}/role",                    S("302  404  302  403  403  302  302"),
        session=True, body={"role": "member"}),
    Row("projects/<str:project_id>/members/<str:username>/remove", "POST",
        "/projects/{o.project}/members/{o.colleague}/remove",                  S("302  404  302  403  403  302  302"),
        session=True, body={}),
    Row("projects/<str:project_id>/invitations/send", "POST", "/projects/{o.project}/invitations/send",
                                                                               S("302  404  302  403  403  302  302"),
        session=True, body={"email": NEW_INVITEE, "role": "viewer", "message": "matrix"}),
    Row("projects/<str:project_id>/invitations/bulk", "POST", "/projects/{o.project}/invitations/bulk",
                                                                               S("302  404  302  403  403  302  302"),
        session=True, body={"emails": NEW_INVITEE, "role": "viewer", "message": ""}),
    Row("projects/<str:project_id>/invitations/<str:invitation_id>/resend", "POST",
        "/projects/{o.project}/invitations/{o.invitation}/resend",             S("302  404  302  404  404  302  302"),
        session=True, body={}),
    Row("projects/<str:project_id>/invitations/<str:invitation_id>/revoke", "POST",
        "/projects/{o.project}/invitations/{o.invitation}/revoke",             S("302  404  302  404  404  302  302"),
        session=True, body={}),
    # --- Organization (its owners and admins: `dual`, `org_admin`; other members get the 403 page) ------------------
    Row(ORG, "GET", "/organizations/{o.org}/",                                 S("302  404  200  403  403  403  200"),
        session=True, foreign=MANAGERS_ONLY_FOREIGN),
    Row(ORG, "POST", "/organizations/{o.org}/",                                S("302  404  302  403  403  403  302"),
        session=True, foreign=MANAGERS_ONLY_FOREIGN,
        body={"name": "Console Grant", "total_amount": "100.00", "period": "project", "start_date": "2026-01-01",
              "end_date": "2030-01-01", "alert_threshold": "80", "description": ""}),
    Row(POOL, "GET", "/organizations/{o.org}/budgets/{o.pool}/",               S("302  404  200  403  403  403  200"),
        session=True, foreign=MANAGERS_ONLY_FOREIGN),
    Row(POOL + "edit", "GET", "/organizations/{o.org}/budgets/{o.pool}/edit",  S("302  404  200  403  403  403  200"),
        session=True, foreign=MANAGERS_ONLY_FOREIGN),
    Row(POOL + "edit", "POST", "/organizations/{o.org}/budgets/{o.pool}/edit", S("302  404  302  403  403  403  302"),
        session=True, foreign=MANAGERS_ONLY_FOREIGN,
        body={"name": "Grant renamed", "total_amount": "9000.00", "end_date": "2030-01-01", "alert_threshold": "80",
              "description": "changed"}),
    Row(POOL + "delete", "GET", "/organizations/{o.org}/budgets/{o.pool}/delete",
                                                                               S("302  404  200  403  403  403  200"),
        session=True, foreign=MANAGERS_ONLY_FOREIGN),
    # The pool still funds A's project: refused with a message on the pool's page, after who may.
    Row(POOL + "delete", "POST", "/organizations/{o.org}/budgets/{o.pool}/delete",
                                                                               S("302  404  302  403  403  403  302"),
        session=True, foreign=MANAGERS_ONLY_FOREIGN, body={}),
    Row(POOL + "allocations", "GET", "/organizations/{o.org}/budgets/{o.pool}/allocations",
                                                                               S("302  404  200  403  403  403  200"),
        session=True, foreign=MANAGERS_ONLY_FOREIGN),
    # A's project already has its allocation: the form answers 409 with the error next to the project.
    Row(POOL + "allocations", "POST", "/organizations/{o.org}/budgets/{o.pool}/allocations",
                                                                               S("302  404  409  403  403  403  409"),
        session=True, foreign=MANAGERS_ONLY_FOREIGN,
        body={"project_id": "{o.project}", "allocated_amount": "10.00"}),
    Row(POOL + "allocations/<str:allocation_id>", "GET",
        "/organizations/{o.org}/budgets/{o.pool}/allocations/{o.allocation}",  S("302  404  200  403  403  403  200"),
        session=True, foreign=MANAGERS_ONLY_FOREIGN),
    Row(POOL + "allocations/<str:allocation_id>", "POST",
        "/organizations/{o.org}/budgets/{o.pool}/allocations/{o.allocation}",  S("302  404  302  403  403  403  302"),
        session=True, foreign=MANAGERS_ONLY_FOREIGN,
        body={"allocated_amount": "4000.00", "alert_thresholds": "50, 80", "auto_hibernate_threshold": "",
              "prevent_launch_threshold": "", "end_date": ""}),
    Row(POOL + "allocations/<str:allocation_id>/delete", "GET",
        "/organizations/{o.org}/budgets/{o.pool}/allocations/{o.allocation}/delete",
                                                                               S("302  404  200  403  403  403  200"),
        session=True, foreign=MANAGERS_ONLY_FOREIGN),
    Row(POOL + "allocations/<str:allocation_id>/delete", "POST",
        "/organizations/{o.org}/budgets/{o.pool}/allocations/{o.allocation}/delete",
                                                                               S("302  404  302  403  403  403  302"),
        session=True, foreign=MANAGERS_ONLY_FOREIGN, body={}),
    Row(POOL + "reallocate", "GET", "/organizations/{o.org}/budgets/{o.pool}/reallocate",
                                                                               S("302  404  200  403  403  403  200"),
        session=True, foreign=MANAGERS_ONLY_FOREIGN),
    # Reallocating from A's only allocation to itself is refused on the form.
    Row(POOL + "reallocate", "POST", "/organizations/{o.org}/budgets/{o.pool}/reallocate",
                                                                               S("302  404  400  403  403  403  400"),
        session=True, foreign=MANAGERS_ONLY_FOREIGN,
        body={"from_allocation": "{o.allocation}", "to_allocation": "{o.allocation}", "amount": "1.00",
              "reason": "matrix"}),
    Row(ORG + "members/", "GET", "/organizations/{o.org}/members/",            S("302  404  200  403  403  403  200"),
        session=True, foreign=MANAGERS_ONLY_FOREIGN),
    Row(ORG + "members/", "POST", "/organizations/{o.org}/members/",           S("302  404  302  403  403  403  302"),
        session=True, foreign=MANAGERS_ONLY_FOREIGN, body={"email": "{loner}", "role": "member"}),
    Row(ORG + "members/<str:username>/role", "POST", "/organizations/{o.org}/members/{o.person}/role",
                                                                               S("302  404  403  403  403  403  403"),
        session=True, foreign=MANAGERS_ONLY_FOREIGN, body={"role": "member"}),  # admins do not demote the owner
    Row(ORG + "members/<str:username>/remove", "POST", "/organizations/{o.org}/members/{o.person}/remove",
                                                                               S("302  404  403  403  403  403  403"),
        session=True, foreign=MANAGERS_ONLY_FOREIGN, body={}),
    Row(ORG + "cloud-accounts/", "GET", "/organizations/{o.org}/cloud-accounts/",
                                                                               S("302  404  200  403  403  403  200"),
        session=True, foreign=MANAGERS_ONLY_FOREIGN),
    Row(ORG + "cloud-accounts/<str:account_id>/default", "POST",
        "/organizations/{o.org}/cloud-accounts/{o.account}/default",           S("302  404  302  403  403  403  302"),
        session=True, foreign=MANAGERS_ONLY_FOREIGN, body={}),
    # --- Tokens (one's own only: `mine` is the caller's spare token, B's owner's in the foreign run) ---------------
    Row("tokens/", "GET", "/tokens/",                                          S("302  200  200  200  200  200  200"),
        session=True),
    Row("tokens/", "POST", "/tokens/",                                         S("302  200  200  200  200  200  200"),
        session=True, body={"name": "console matrix", "scopes": "read", "expiry": ""}),
    Row("tokens/<str:token_id>/revoke", "GET", "/tokens/{mine.token}/revoke",  S("302  200  200  200  200  200  200"),
        session=True),
    Row("tokens/<str:token_id>/revoke", "POST", "/tokens/{mine.token}/revoke", S("302  302  302  302  302  302  302"),
        session=True, body={}),
]
# fmt: on
