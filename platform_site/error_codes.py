"""Every error code Carrel answers with: one enum, and per code its HTTP status, meaning and remediation.

    raise NotFound("No template named 'x'.", code=ErrorCode.TEMPLATE_NOT_FOUND)   # or code="TEMPLATE_NOT_FOUND"

This module is the single source for:

- the API's answers: the exception handler (platform_site/api/errors.py) takes the status from the code and,
  when the raise site gives no `remediation`, the code's default one;
- the OpenAPI schema: the envelope's `code` enum and its descriptions, and which codes each status carries
  (platform_site/api/schema.py);
- the README's "Error codes" table, regenerated with `manage.py error_codes_readme` (a test compares them).

`ErrorCode` is a StrEnum, so raise sites may pass plain strings; the CarrelError constructor refuses a string
that is not a member, and tests/platform/test_error_codes.py finds every code written anywhere in the code
base and checks it is here, with the status its raising exception class answers.

Adding a code: a member in `ErrorCode`, an `ErrorSpec` in `ERRORS`, then `manage.py error_codes_readme`.
A remediation says what to do next, concretely (an endpoint to call, the values allowed, a header to read).
"""

from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path


@dataclass(frozen=True)
class ErrorSpec:
    status: int
    meaning: str
    remediation: str


class ErrorCode(StrEnum):
    # 400
    BAD_REQUEST = "BAD_REQUEST"
    BAD_HOST = "BAD_HOST"
    PARSE_ERROR = "PARSE_ERROR"
    VALIDATION_ERROR = "VALIDATION_ERROR"
    CONFIRMATION_REQUIRED = "CONFIRMATION_REQUIRED"
    INVALID_SIZE = "INVALID_SIZE"
    NAME_LOOKS_LIKE_ID = "NAME_LOOKS_LIKE_ID"
    NO_CLOUD_ACCOUNT = "NO_CLOUD_ACCOUNT"
    NO_MATCHING_INSTANCE_TYPE = "NO_MATCHING_INSTANCE_TYPE"
    TEMPLATE_INVALID = "TEMPLATE_INVALID"
    TTL_LIMIT_EXCEEDED = "TTL_LIMIT_EXCEEDED"
    UNKNOWN_INSTANCE_TYPE = "UNKNOWN_INSTANCE_TYPE"
    UNKNOWN_LOG_TYPE = "UNKNOWN_LOG_TYPE"
    UNSUPPORTED_REGION = "UNSUPPORTED_REGION"
    WORLD_SSH_NEEDS_FLAG = "WORLD_SSH_NEEDS_FLAG"
    # 401
    AUTHENTICATION_REQUIRED = "AUTHENTICATION_REQUIRED"
    AUTHENTICATION_FAILED = "AUTHENTICATION_FAILED"
    TOKEN_INVALID = "TOKEN_INVALID"
    TOKEN_EXPIRED = "TOKEN_EXPIRED"
    TOKEN_REVOKED = "TOKEN_REVOKED"
    # 403
    PERMISSION_DENIED = "PERMISSION_DENIED"
    CSRF_FAILED = "CSRF_FAILED"
    EMAIL_NOT_VERIFIED = "EMAIL_NOT_VERIFIED"
    INSUFFICIENT_SCOPE = "INSUFFICIENT_SCOPE"
    BUDGET_EXCEEDED = "BUDGET_EXCEEDED"
    MEMBER_CAP_EXCEEDED = "MEMBER_CAP_EXCEEDED"
    INVITATION_EMAIL_MISMATCH = "INVITATION_EMAIL_MISMATCH"
    ROLE_TOO_HIGH = "ROLE_TOO_HIGH"
    # 404
    NOT_FOUND = "NOT_FOUND"
    ALLOCATION_NOT_FOUND = "ALLOCATION_NOT_FOUND"
    BUDGET_NOT_FOUND = "BUDGET_NOT_FOUND"
    AUDIT_EVENT_NOT_FOUND = "AUDIT_EVENT_NOT_FOUND"
    FIREWALL_RULE_NOT_FOUND = "FIREWALL_RULE_NOT_FOUND"
    INSTANCE_NOT_FOUND = "INSTANCE_NOT_FOUND"
    INVITATION_NOT_FOUND = "INVITATION_NOT_FOUND"
    JOB_NOT_FOUND = "JOB_NOT_FOUND"
    LOG_NOT_AVAILABLE = "LOG_NOT_AVAILABLE"
    MEMBER_NOT_FOUND = "MEMBER_NOT_FOUND"
    ORGANIZATION_NOT_FOUND = "ORGANIZATION_NOT_FOUND"
    PAGE_NOT_FOUND = "PAGE_NOT_FOUND"
    PROFILE_NOT_FOUND = "PROFILE_NOT_FOUND"
    PROJECT_NOT_FOUND = "PROJECT_NOT_FOUND"
    PROVIDER_NOT_FOUND = "PROVIDER_NOT_FOUND"
    ROUTE_NOT_FOUND = "ROUTE_NOT_FOUND"
    SNOOZE_LINK_INVALID = "SNOOZE_LINK_INVALID"
    TEMPLATE_NOT_FOUND = "TEMPLATE_NOT_FOUND"
    TOKEN_NOT_FOUND = "TOKEN_NOT_FOUND"
    USER_NOT_FOUND = "USER_NOT_FOUND"
    # 405, 406
    METHOD_NOT_ALLOWED = "METHOD_NOT_ALLOWED"
    NOT_ACCEPTABLE = "NOT_ACCEPTABLE"
    # 409
    CONFLICT = "CONFLICT"
    ALLOCATION_EXCEEDS_POOL = "ALLOCATION_EXCEEDS_POOL"
    BUDGET_HAS_ALLOCATIONS = "BUDGET_HAS_ALLOCATIONS"
    PROJECT_ALREADY_FUNDED = "PROJECT_ALREADY_FUNDED"
    ALLOCATION_BELOW_SPENT = "ALLOCATION_BELOW_SPENT"
    ALREADY_MEMBER = "ALREADY_MEMBER"
    AMBIGUOUS_REFERENCE = "AMBIGUOUS_REFERENCE"
    HIBERNATION_NOT_SUPPORTED = "HIBERNATION_NOT_SUPPORTED"
    IDLE_DETECTION_DISABLED = "IDLE_DETECTION_DISABLED"
    INVALID_STATE = "INVALID_STATE"
    INVITATION_ALREADY_ACCEPTED = "INVITATION_ALREADY_ACCEPTED"
    INVITATION_ALREADY_DECLINED = "INVITATION_ALREADY_DECLINED"
    INVITATION_EXISTS = "INVITATION_EXISTS"
    INVITATION_NOT_PENDING = "INVITATION_NOT_PENDING"
    LAST_OWNER = "LAST_OWNER"
    NAME_TAKEN = "NAME_TAKEN"
    ORGANIZATION_NOT_EMPTY = "ORGANIZATION_NOT_EMPTY"
    PROJECT_HAS_LIVE_WORKSPACES = "PROJECT_HAS_LIVE_WORKSPACES"
    TEMPLATE_IN_USE = "TEMPLATE_IN_USE"
    # 410
    INVITATION_EXPIRED = "INVITATION_EXPIRED"
    INVITATION_REVOKED = "INVITATION_REVOKED"
    # 413, 415
    REQUEST_TOO_LARGE = "REQUEST_TOO_LARGE"
    UNSUPPORTED_MEDIA_TYPE = "UNSUPPORTED_MEDIA_TYPE"
    # 429
    RATE_LIMITED = "RATE_LIMITED"
    AUTH_THROTTLED = "AUTH_THROTTLED"
    INVITATION_RATE_LIMITED = "INVITATION_RATE_LIMITED"
    # 500, 503
    INTERNAL_ERROR = "INTERNAL_ERROR"
    PROVIDER_UNAVAILABLE = "PROVIDER_UNAVAILABLE"

    @property
    def spec(self) -> ErrorSpec:
        return ERRORS[self]

    @property
    def status(self) -> int:
        return ERRORS[self].status

    @property
    def meaning(self) -> str:
        return ERRORS[self].meaning

    @property
    def remediation(self) -> str:
        return ERRORS[self].remediation

    @classmethod
    def lookup(cls, code: object) -> "ErrorCode | None":
        """The member for a code (a member or its string), or None when the code is not one of ours."""
        try:
            # Any object may be asked about: one that is not a member's value (or not a string) raises ValueError.
            return cls(code)  # type: ignore[arg-type]
        except ValueError:
            return None


_SIZES = "XS, S, M, L, XL"  # workspaces.sizing.SIZES (a test keeps them equal)
_WAIT_RETRY_AFTER = "Wait the number of seconds in the `Retry-After` header"

ERRORS: dict[ErrorCode, ErrorSpec] = {
    # --- 400 -------------------------------------------------------------------------------------------------
    ErrorCode.BAD_REQUEST: ErrorSpec(
        400,
        "The request is malformed (for example a form body that cannot be parsed, or a NUL in the URL).",
        "Send a well-formed request: a JSON object body with `Content-Type: application/json`.",
    ),
    ErrorCode.BAD_HOST: ErrorSpec(
        400,
        "The Host header names a host this server does not serve.",
        "Use the host name the site is served under.",
    ),
    ErrorCode.PARSE_ERROR: ErrorSpec(
        400,
        "The request body is not valid JSON.",
        "Send a valid JSON object with `Content-Type: application/json`; `details` says where parsing failed.",
    ),
    ErrorCode.VALIDATION_ERROR: ErrorSpec(
        400,
        "A field is missing or invalid; see `fields`.",
        "Correct the fields listed in `fields` and retry.",
    ),
    ErrorCode.CONFIRMATION_REQUIRED: ErrorSpec(
        400,
        'Terminating a workspace needs {"confirm": "DELETE"}.',
        'Send `{"confirm": "DELETE"}` as the body of `POST /api/v1/instances/{name}/terminate`.',
    ),
    ErrorCode.INVALID_SIZE: ErrorSpec(
        400,
        f"The size is not one of Carrel's sizes ({_SIZES}).",
        f"Use one of the sizes {_SIZES}, or give an `instance_type` or a `configuration` instead.",
    ),
    ErrorCode.NAME_LOOKS_LIKE_ID: ErrorSpec(
        400,
        "Workspace names may not look like a workspace id (ws_…) or an instance id (i-…).",
        "Choose a name that is not `ws_` or `i-` followed by hexadecimal digits.",
    ),
    ErrorCode.NO_CLOUD_ACCOUNT: ErrorSpec(
        400,
        "The organization has no cloud account to launch in.",
        "Ask an administrator to add a cloud account for the organization (Django admin); "
        "`GET /api/v1/profiles` lists the ones you can use.",
    ),
    ErrorCode.NO_MATCHING_INSTANCE_TYPE: ErrorSpec(
        400,
        "No instance type satisfies the requested configuration.",
        f"Ask for fewer cores, less memory or another GPU model, or ask for a `size` ({_SIZES}) instead.",
    ),
    ErrorCode.TEMPLATE_INVALID: ErrorSpec(
        400,
        "The template fails validation; see `details`.",
        "Fix the problems listed in `details`; `GET /api/v1/templates/validate` checks every template.",
    ),
    ErrorCode.TTL_LIMIT_EXCEEDED: ErrorSpec(
        400,
        "The TTL would pass the longest allowed (the platform's, project's or template's limit).",
        "Ask for fewer `hours` in `POST /api/v1/instances/{name}/extend`; `details` gives the limit.",
    ),
    ErrorCode.UNKNOWN_INSTANCE_TYPE: ErrorSpec(
        400,
        "The instance type is not in Carrel's catalog.",
        f"Ask for a `size` ({_SIZES}) or a `configuration` instead, and Carrel picks a type from its catalog.",
    ),
    ErrorCode.UNKNOWN_LOG_TYPE: ErrorSpec(
        400,
        "The log type is not one Carrel knows.",
        "Use a type listed by `GET /api/v1/logs/{name}/types`.",
    ),
    ErrorCode.UNSUPPORTED_REGION: ErrorSpec(
        400,
        "The region has no prices in Carrel's catalog.",
        "Leave `region` out to use the cloud account's region, or use a region `GET /api/v1/profiles` shows.",
    ),
    ErrorCode.WORLD_SSH_NEEDS_FLAG: ErrorSpec(
        400,
        "The workspace's rules together would open SSH (port 22) to a large part of the Internet.",
        "Narrow the CIDR to your own network, or send `allow_world_ssh: true` if the world must reach port 22.",
    ),
    # --- 401 -------------------------------------------------------------------------------------------------
    ErrorCode.AUTHENTICATION_REQUIRED: ErrorSpec(
        401,
        "No credentials were sent.",
        "Send `Authorization: Bearer <token>` (create one with `POST /api/v1/tokens`) or log in.",
    ),
    ErrorCode.AUTHENTICATION_FAILED: ErrorSpec(
        401,
        "The credentials are wrong, or the account is disabled.",
        "Check the e-mail and password (or the token) and retry; an administrator re-enables disabled accounts.",
    ),
    ErrorCode.TOKEN_INVALID: ErrorSpec(
        401,
        "The bearer token is unknown or malformed.",
        "Send the whole secret shown when the token was created (`Authorization: Bearer carrel_…`), "
        "or create a new token with `POST /api/v1/tokens`.",
    ),
    ErrorCode.TOKEN_EXPIRED: ErrorSpec(
        401,
        "The bearer token has expired.",
        "Create a new token with `POST /api/v1/tokens` (from a browser session or another valid token).",
    ),
    ErrorCode.TOKEN_REVOKED: ErrorSpec(
        401,
        "The bearer token was revoked.",
        "Create a new token with `POST /api/v1/tokens` (from a browser session or another valid token).",
    ),
    # --- 403 -------------------------------------------------------------------------------------------------
    ErrorCode.PERMISSION_DENIED: ErrorSpec(
        403,
        "The caller may see the object but not do this to it.",
        "Ask an owner or admin of the project or organization for the role this action needs.",
    ),
    ErrorCode.CSRF_FAILED: ErrorSpec(
        403,
        "A browser session request lacks a valid CSRF token.",
        "Send the csrftoken cookie's value in the X-CSRFToken header, or authenticate with a bearer token.",
    ),
    ErrorCode.EMAIL_NOT_VERIFIED: ErrorSpec(
        403,
        "Inviting people needs a verified e-mail address.",
        "Open the confirmation link Carrel e-mailed you, or send a new one from /accounts/email/, then retry.",
    ),
    ErrorCode.INSUFFICIENT_SCOPE: ErrorSpec(
        403,
        "The token lacks the scope this request needs (e.g. `write`).",
        'Use a token with the scope (`POST /api/v1/tokens` with `"scopes": ["read", "write"]`) or a browser session.',
    ),
    ErrorCode.INVITATION_EMAIL_MISMATCH: ErrorSpec(
        403,
        "The caller's verified e-mails do not include the invited address.",
        "Log in with the invited address, or add and verify it at /accounts/email/, then accept again.",
    ),
    ErrorCode.ROLE_TOO_HIGH: ErrorSpec(
        403,
        "Nobody can grant, change or remove a role above their own.",
        "Choose a role at or below your own, or ask an owner to do it.",
    ),
    # --- 404 -------------------------------------------------------------------------------------------------
    ErrorCode.NOT_FOUND: ErrorSpec(
        404,
        "No such object, or not visible to the caller.",
        "Check the identifier; objects of other organizations are never visible.",
    ),
    ErrorCode.AUDIT_EVENT_NOT_FOUND: ErrorSpec(
        404,
        "No such audit event visible to the caller.",
        "List the events you may read with `GET /api/v1/audit` and use one's id.",
    ),
    ErrorCode.FIREWALL_RULE_NOT_FOUND: ErrorSpec(
        404,
        "The workspace has no firewall rule at that position.",
        "List the rules with `GET /api/v1/instances/{name}/firewall` and use one's position.",
    ),
    ErrorCode.INSTANCE_NOT_FOUND: ErrorSpec(
        404,
        "No such workspace visible to the caller.",
        "List your workspaces with `GET /api/v1/instances` and use one's id or name.",
    ),
    ErrorCode.SNOOZE_LINK_INVALID: ErrorSpec(
        404,
        "The snooze link is not valid: altered, older than 24 hours, or already used (or its warning no longer holds).",
        "Snooze from the workspace's page in the console, or with `POST /api/v1/idle/instances/{name}/snooze`.",
    ),
    ErrorCode.INVITATION_NOT_FOUND: ErrorSpec(
        404,
        "No such invitation, or the link is not valid.",
        "`GET /api/v1/invitations/me` lists your invitations; for a broken link, ask the inviter for a new one.",
    ),
    ErrorCode.JOB_NOT_FOUND: ErrorSpec(
        404,
        "No such provisioning job visible to the caller.",
        "Use the `job_id` returned by `POST /api/v1/instances/launch` or by a resize "
        "(`PATCH /api/v1/instances/{name}`).",
    ),
    ErrorCode.LOG_NOT_AVAILABLE: ErrorSpec(
        404,
        "The workspace has no log of that type yet.",
        "Wait until the workspace has an instance (`GET /api/v1/instances/{name}`), then retry; "
        "`GET /api/v1/logs/{name}/types` lists the types.",
    ),
    ErrorCode.MEMBER_NOT_FOUND: ErrorSpec(
        404,
        "No such member visible to the caller.",
        "List the members with `GET /api/v1/organizations/{id}/members` or `GET /api/v1/projects/{id}/members`.",
    ),
    ErrorCode.ORGANIZATION_NOT_FOUND: ErrorSpec(
        404,
        "No such organization visible to the caller.",
        "List your organizations with `GET /api/v1/organizations` and use one's id.",
    ),
    ErrorCode.PAGE_NOT_FOUND: ErrorSpec(
        404,
        "The page number is past the last page.",
        "Ask for a lower `?page=`; `X-Total-Count` and `?page_size=` tell how many pages there are.",
    ),
    ErrorCode.PROFILE_NOT_FOUND: ErrorSpec(
        404,
        "No such cloud account (profile) visible to the caller.",
        "List the cloud accounts you can use with `GET /api/v1/profiles`.",
    ),
    ErrorCode.PROJECT_NOT_FOUND: ErrorSpec(
        404,
        "No such project visible to the caller.",
        "List your projects with `GET /api/v1/projects` and use one's id.",
    ),
    ErrorCode.PROVIDER_NOT_FOUND: ErrorSpec(
        404,
        "No such login provider is configured.",
        "Use a provider listed by `GET /api/v1/auth/providers`.",
    ),
    ErrorCode.ROUTE_NOT_FOUND: ErrorSpec(
        404,
        "No API endpoint has this path.",
        "Check the path against the schema at `GET /api/v1/schema/` (Swagger UI at /api/v1/docs/).",
    ),
    ErrorCode.TEMPLATE_NOT_FOUND: ErrorSpec(
        404,
        "No such template visible to the caller.",
        "List the templates you can use with `GET /api/v1/templates`.",
    ),
    ErrorCode.TOKEN_NOT_FOUND: ErrorSpec(
        404,
        "No such token belonging to the caller.",
        "List your tokens with `GET /api/v1/tokens`.",
    ),
    ErrorCode.USER_NOT_FOUND: ErrorSpec(
        404,
        "No such user sharing an organization with the caller.",
        "List the people you share an organization with: `GET /api/v1/users`.",
    ),
    # --- 405, 406 --------------------------------------------------------------------------------------------
    ErrorCode.METHOD_NOT_ALLOWED: ErrorSpec(
        405,
        "The endpoint does not support this HTTP method.",
        "Use one of the methods in the `Allow` header.",
    ),
    ErrorCode.NOT_ACCEPTABLE: ErrorSpec(
        406,
        "No response format matches the Accept header.",
        "Send `Accept: application/json` (or no Accept header).",
    ),
    # --- 409 -------------------------------------------------------------------------------------------------
    ErrorCode.CONFLICT: ErrorSpec(
        409,
        "The request conflicts with the current state.",
        "Read the object again and retry with its current state.",
    ),
    ErrorCode.ALREADY_MEMBER: ErrorSpec(
        409,
        "The user is already a member.",
        "Nothing to add; change the member's role with `PATCH` on the member instead.",
    ),
    ErrorCode.AMBIGUOUS_REFERENCE: ErrorSpec(
        409,
        "The name matches several workspaces you can see; `candidates` lists them.",
        "Use the workspace id (`ws_…`) of one of the `candidates`, or add `?project=<id or name>`.",
    ),
    ErrorCode.HIBERNATION_NOT_SUPPORTED: ErrorSpec(
        409,
        "The workspace was not launched with hibernation (instance type or image).",
        "Stop it instead with `POST /api/v1/instances/{name}/stop`.",
    ),
    ErrorCode.IDLE_DETECTION_DISABLED: ErrorSpec(
        409,
        "Idle detection is off for the workspace, so there is nothing to snooze.",
        "Turn it on with `POST /api/v1/idle/instances/{name}/configure` (`enabled: true`) if you want it.",
    ),
    ErrorCode.INVALID_STATE: ErrorSpec(
        409,
        "The action is not allowed in the workspace's current state.",
        "Read the state with `GET /api/v1/instances/{name}` and retry once it is the one the action needs "
        "(e.g. stop it before resizing, start it before connecting).",
    ),
    ErrorCode.INVITATION_ALREADY_ACCEPTED: ErrorSpec(
        409,
        "The invitation was used already.",
        "Nothing to do if it was you (`GET /api/v1/projects` lists your projects); otherwise ask for a new invitation.",
    ),
    ErrorCode.INVITATION_ALREADY_DECLINED: ErrorSpec(
        409,
        "The invitation was declined already.",
        "Ask the project's owner or admins for a new invitation.",
    ),
    ErrorCode.INVITATION_EXISTS: ErrorSpec(
        409,
        "The address already has a pending invitation to the project.",
        "Resend it with `POST /api/v1/invitations/{id}/resend` (find it with "
        "`GET /api/v1/invitations/project/{project_id}?status=pending`).",
    ),
    ErrorCode.INVITATION_NOT_PENDING: ErrorSpec(
        409,
        "Only pending invitations can be resent or revoked.",
        "Send a new invitation with `POST /api/v1/invitations/send`.",
    ),
    ErrorCode.LAST_OWNER: ErrorSpec(
        409,
        "The last owner cannot be removed or demoted.",
        "Make someone else an owner first.",
    ),
    ErrorCode.NAME_TAKEN: ErrorSpec(
        409,
        "Another object already has this name.",
        "Choose another name, or use the existing object.",
    ),
    ErrorCode.ORGANIZATION_NOT_EMPTY: ErrorSpec(
        409,
        "The organization still has projects.",
        "Delete its projects first (`GET /api/v1/projects` lists them, `DELETE /api/v1/projects/{id}`).",
    ),
    ErrorCode.PROJECT_HAS_LIVE_WORKSPACES: ErrorSpec(
        409,
        "The project still has workspaces that are not terminated.",
        "Terminate them first: `GET /api/v1/instances?project=<id>` lists them, "
        "`POST /api/v1/instances/{name}/terminate` ends each.",
    ),
    ErrorCode.TEMPLATE_IN_USE: ErrorSpec(
        409,
        "Other templates inherit this one.",
        "Delete or change the inheriting templates (named in `message`) first.",
    ),
    # --- 410 -------------------------------------------------------------------------------------------------
    ErrorCode.INVITATION_EXPIRED: ErrorSpec(
        410,
        "The invitation expired.",
        "Ask the project's owner or admins to resend it.",
    ),
    ErrorCode.INVITATION_REVOKED: ErrorSpec(
        410,
        "The invitation was revoked.",
        "Ask the project's owner or admins for a new invitation.",
    ),
    # --- 413, 415 --------------------------------------------------------------------------------------------
    ErrorCode.REQUEST_TOO_LARGE: ErrorSpec(
        413,
        "The request body exceeds the size limit.",
        "Send a smaller body; API requests are small JSON objects.",
    ),
    ErrorCode.UNSUPPORTED_MEDIA_TYPE: ErrorSpec(
        415,
        "The request body has a content type the endpoint does not accept.",
        "Send the body as JSON with `Content-Type: application/json`.",
    ),
    # --- 429 -------------------------------------------------------------------------------------------------
    ErrorCode.RATE_LIMITED: ErrorSpec(
        429,
        "Too many requests in the current window.",
        f"{_WAIT_RETRY_AFTER}, then retry; `X-RateLimit-Remaining` shows what is left.",
    ),
    ErrorCode.AUTH_THROTTLED: ErrorSpec(
        429,
        "Too many failed authentications from this address or for this credential.",
        f"{_WAIT_RETRY_AFTER}, then retry with the right credentials.",
    ),
    ErrorCode.BUDGET_EXCEEDED: ErrorSpec(
        403,
        "The project's allocation (with what running workspaces have reserved) would pass its launch limit.",
        "Stop or terminate workspaces, choose a smaller size or shorter TTL, or ask an organization admin to raise "
        "the allocation (`PUT /api/v1/budgets/{id}/allocations/{allocation_id}`).",
    ),
    ErrorCode.MEMBER_CAP_EXCEEDED: ErrorSpec(
        403,
        "Your own cap inside the project's allocation would be passed.",
        "Stop your running workspaces, or ask a project owner or organization admin to raise your cap.",
    ),
    ErrorCode.ALLOCATION_NOT_FOUND: ErrorSpec(
        404,
        "No such allocation in this budget pool visible to the caller.",
        "List the pool's allocations with `GET /api/v1/budgets/{id}/allocations`.",
    ),
    ErrorCode.BUDGET_NOT_FOUND: ErrorSpec(
        404,
        "No such budget pool visible to the caller.",
        "List the pools you can see with `GET /api/v1/budgets`.",
    ),
    ErrorCode.ALLOCATION_EXCEEDS_POOL: ErrorSpec(
        409,
        "The pool's allocations would add up to more than the pool.",
        "Allocate at most the pool's `unallocated_amount`, lower another allocation, or raise the pool's total.",
    ),
    ErrorCode.BUDGET_HAS_ALLOCATIONS: ErrorSpec(
        409,
        "A budget pool with allocations cannot be deleted.",
        "Delete the pool's allocations first (`DELETE /api/v1/budgets/{id}/allocations/{allocation_id}`).",
    ),
    ErrorCode.PROJECT_ALREADY_FUNDED: ErrorSpec(
        409,
        "The project already has an allocation (a project draws on one pool).",
        "Change the existing allocation, or move money with `POST /api/v1/budgets/{id}/reallocate`.",
    ),
    ErrorCode.ALLOCATION_BELOW_SPENT: ErrorSpec(
        409,
        "Moving this much would leave the source allocation below what its project has already spent.",
        "Move at most the source's `movable_amount` (allocated minus spent this period).",
    ),
    ErrorCode.INVITATION_RATE_LIMITED: ErrorSpec(
        429,
        "The daily invitation limit (per inviter or per organization) is spent.",
        f"{_WAIT_RETRY_AFTER}, or send at most `remaining` invitations now.",
    ),
    # --- 500, 503 --------------------------------------------------------------------------------------------
    ErrorCode.INTERNAL_ERROR: ErrorSpec(
        500,
        "An unexpected server error.",
        "Retry later; if it persists, report the `request_id` to an administrator.",
    ),
    ErrorCode.PROVIDER_UNAVAILABLE: ErrorSpec(
        503,
        "The cloud provider is throttling or unreachable.",
        "Retry after the number of seconds in the `Retry-After` header; nothing was changed.",
    ),
}


def _check_registry() -> None:
    missing = [code.value for code in ErrorCode if code not in ERRORS]
    if missing:
        raise RuntimeError(f"Error codes without an ErrorSpec in platform_site/error_codes.py: {missing}")
    for code, spec in ERRORS.items():
        if code.value != code.name:
            raise RuntimeError(f"ErrorCode.{code.name} must have the value {code.name!r}")
        if not (400 <= spec.status <= 599 and spec.meaning.strip() and spec.remediation.strip()):
            raise RuntimeError(f"{code}: an error needs a 4xx/5xx status, a meaning and a remediation")


_check_registry()


def codes_for_status(status: int) -> list[ErrorCode]:
    return sorted(code for code in ErrorCode if code.status == status)


# --- The README table ---------------------------------------------------------------------------------------

README_PATH = Path(__file__).resolve().parent.parent / "README.md"
TABLE_START = "<!-- error-codes:start (generated by `manage.py error_codes_readme`; do not edit) -->"
TABLE_END = "<!-- error-codes:end -->"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def markdown_table() -> str:
    """The codes by HTTP status, then name: code, status, meaning and what to do."""
    rows = [
        "| Code | HTTP status | Meaning | What to do |",
        "|---|---|---|---|",
    ]
    for code in sorted(ErrorCode, key=lambda code: (code.status, code.value)):
        rows.append(f"| `{code.value}` | {code.status} | {_cell(code.meaning)} | {_cell(code.remediation)} |")
    return "\n".join(rows)


def readme_with_table(readme: str) -> str:
    """The README text with the generated table between the markers (which must be there already)."""
    start, end = readme.find(TABLE_START), readme.find(TABLE_END)
    if start < 0 or end < start:
        raise ValueError(f"README.md has no {TABLE_START!r} … {TABLE_END!r} markers")
    return readme[: start + len(TABLE_START)] + "\n" + markdown_table() + "\n" + readme[end:]
