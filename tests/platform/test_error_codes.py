"""Error codes are one enum (platform_site/error_codes.py): every code used anywhere is in it, with the status
its raising exception class answers, a concrete remediation, the README table and the schema generated from it,
and no answer carries a code outside it.
"""

import ast
import builtins
import importlib
import inspect
import logging
import re
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import Resolver404, resolve
from rest_framework import exceptions as drf_exceptions
from rest_framework.permissions import BasePermission
from rest_framework.test import APIClient

from accounts.services import TokenRejected
from platform_site import errors
from platform_site.api import errors as api_errors
from platform_site.api.schema import _ERROR_RESPONSES
from platform_site.error_codes import ERRORS, README_PATH, ErrorCode, markdown_table, readme_with_table
from tests.conftest import assert_error

ROOT = Path(__file__).resolve().parents[2]
ENVELOPE_KEYS = {"code", "message", "details", "remediation", "timestamp", "request_id"}

# --- Finding every code in the code base ------------------------------------------------------------------------

_SKIPPED_DIRS = {".venv", "venv", "tests", "migrations", "var", "node_modules", "__pycache__"}
_CODE_SHAPED = re.compile(r"^[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)*$")
# Files that produce codes themselves (not by raising): every code-shaped string constant in them is a code,
# except dictionary keys, subscripts and `.get()` keys (request.META["HTTP_AUTHORIZATION"] and the like).
_PLUMBING = {"platform_site/api/errors.py", "platform_site/api/ratelimit.py"}
# Callees whose `code` is not an API error code, as (top-level package, qualified name). Keep this short.
_NOT_ERROR_CODES = {
    # A failed launch's ProvisionJob.error_code: LAUNCH_TIMEOUT or the cloud provider's own error code
    # (e.g. InsufficientInstanceCapacity), shown in GET /api/v1/jobs/{id}; never an envelope's code.
    ("workspaces", "workspace_launch_failed"),
    ("workspaces", "_fail_launch"),  # the cloud poller's way to workspace_launch_failed
}
# Where a name ending in `code` fixes the status: ScopedAPIView raises NotFound(code=not_found_code).
_ATTRIBUTE_STATUS = {"not_found_code": 404}


@dataclass(frozen=True)
class CodeUse:
    code: str
    where: str  # path:line
    how: str
    status: int | None  # the status the raise site fixes, when it does


def _source_files() -> list[Path]:
    files = []
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT)
        if any(part in _SKIPPED_DIRS or part.startswith(".") for part in rel.parts[:-1]):
            continue
        files.append(rel)
    return files


def _fallback_namespace() -> dict:
    """Names resolved when a module cannot be imported or a name is local to a function."""
    namespace: dict = {"TokenRejected": TokenRejected, "json_error": api_errors.json_error}
    namespace["envelope"] = api_errors.envelope
    stack = [errors.CarrelError]
    while stack:
        cls = stack.pop()
        namespace.setdefault(cls.__name__, cls)
        stack.extend(cls.__subclasses__())
    return namespace


def _module_namespace(rel: Path) -> dict:
    """The module's globals for resolving names; only Django apps' and platform_site's modules are imported."""
    packages = {app.split(".")[0] for app in settings.INSTALLED_APPS}
    if rel.parts[0] not in packages or rel.parts[:2] == ("platform_site", "settings"):
        return {}
    dotted = ".".join(rel.with_suffix("").parts).removesuffix(".__init__")
    try:
        return vars(importlib.import_module(dotted))
    except Exception:  # noqa: BLE001 -- an unimportable module is resolved by the fallback names
        return {}


def _resolve(node: ast.expr, namespace: dict, fallback: dict):
    if isinstance(node, ast.Name):
        if node.id in namespace:
            return namespace[node.id]
        return fallback.get(node.id, getattr(builtins, node.id, None))
    if isinstance(node, ast.Attribute):
        base = _resolve(node.value, namespace, fallback)
        if base is None:
            return fallback.get(node.attr)
        try:
            return getattr(base, node.attr, None)
        except Exception:  # noqa: BLE001 -- a lazy object that cannot be evaluated here resolves to nothing
            return None
    return None


def _code_value(node: ast.expr | None) -> str | None:
    """The code a node spells: a string constant, or ErrorCode.X (however ErrorCode is reached)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.Attribute) and ast.unparse(node.value).split(".")[-1] == "ErrorCode":
        return node.attr
    return None


def _int_value(node: ast.expr | None) -> int | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, int) else None


def _code_argument(call: ast.Call, callee) -> ast.expr | None:
    for keyword in call.keywords:
        if keyword.arg == "code":
            return keyword.value
    if callee is None or not callable(callee):
        return None
    try:
        parameters = list(inspect.signature(callee).parameters.values())
    except Exception:  # noqa: BLE001 -- builtins and odd callables have no signature
        return None
    positional = [p.name for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if "code" in positional and positional.index("code") < len(call.args):
        return call.args[positional.index("code")]
    return None


def _call_status(call: ast.Call, callee) -> tuple[bool, int | None]:
    """(whether any code passed here is one of ours, even a lower-case one; the status the call fixes)."""
    if inspect.isclass(callee) and issubclass(callee, errors.CarrelError):
        return True, callee.status_code if callee.fixed_status else None
    if callee is TokenRejected:  # accounts.authentication turns it into AuthenticationFailed
        return True, 401
    if inspect.isclass(callee) and issubclass(callee, drf_exceptions.APIException):
        if issubclass(callee, (drf_exceptions.NotAuthenticated, drf_exceptions.AuthenticationFailed)):
            return False, 401
        return False, callee.status_code
    if any(callee is function for function in (api_errors.json_error, api_errors.envelope, api_errors.resolve_code)):
        status = next((_int_value(k.value) for k in call.keywords if k.arg == "status_code"), None)
        return True, status
    return False, None


def _parents(tree: ast.AST) -> dict[ast.AST, ast.AST]:
    return {child: parent for parent in ast.walk(tree) for child in ast.iter_child_nodes(parent)}


def scan_source(text: str, rel: str, namespace: dict | None = None) -> list[CodeUse]:
    """Every error code a source file uses: `code=` arguments (keyword or positional), `…code = "…"`
    assignments (default_code, not_found_code, a permission's code, local variables), `ErrorCode.X`, and in the
    plumbing files every code-shaped string."""
    namespace = namespace or {}
    fallback = _fallback_namespace()
    tree = ast.parse(text)
    parents = _parents(tree)
    uses: list[CodeUse] = []

    def add(code: str | None, node: ast.AST, how: str, status: int | None = None) -> None:
        if code is not None:
            uses.append(CodeUse(code, f"{rel}:{getattr(node, 'lineno', '?')}", how, status))

    def enclosing_class(node: ast.AST) -> ast.ClassDef | None:
        node = parents.get(node)
        while node is not None and not isinstance(node, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            node = parents.get(node)
        return node if isinstance(node, ast.ClassDef) else None

    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            callee = _resolve(node.func, namespace, fallback)
            code = _code_value(_code_argument(node, callee))
            if code is None:
                continue
            package = str(getattr(callee, "__module__", None) or "").split(".")[0]
            if (package, getattr(callee, "__qualname__", None)) in _NOT_ERROR_CODES:
                continue
            ours, status = _call_status(node, callee)
            if ours or _CODE_SHAPED.match(code):
                add(code, node, f"{ast.unparse(node.func)}(code={code!r})", status)
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                pairs: list[tuple[ast.expr, ast.expr | None]] = [(target, node.value)]
                if isinstance(target, ast.Tuple) and isinstance(node.value, ast.Tuple):
                    pairs = list(zip(target.elts, node.value.elts, strict=False))
                names = {ast.unparse(t).split(".")[-1]: v for t, v in pairs}
                for name, value in names.items():
                    if not name.endswith("code") or name == "status_code" or value is None:
                        continue
                    status = _int_value(names.get("status_code")) or _ATTRIBUTE_STATUS.get(name)
                    owner = enclosing_class(node)
                    if owner is not None and status is None:
                        cls = namespace.get(owner.name)
                        if name == "default_code" and inspect.isclass(cls) and issubclass(cls, errors.CarrelError):
                            status = cls.status_code if cls.fixed_status else None
                        elif name == "code" and inspect.isclass(cls) and issubclass(cls, BasePermission):
                            status = 403  # DRF raises PermissionDenied(code=permission.code)
                    for value_node in ast.walk(value):
                        code = _code_value(value_node) if isinstance(value_node, ast.Constant | ast.Attribute) else None
                        if code is not None and _CODE_SHAPED.match(code):
                            add(code, value_node, f"{name} = {code!r}", status)
        elif isinstance(node, ast.Attribute) and ast.unparse(node.value).split(".")[-1] == "ErrorCode":
            if node.attr.isupper():
                add(node.attr, node, f"ErrorCode.{node.attr}")
        elif rel in _PLUMBING and isinstance(node, ast.Constant) and isinstance(node.value, str):
            parent = parents.get(node)
            is_key = isinstance(parent, ast.Subscript) or (isinstance(parent, ast.Dict) and node in parent.keys)
            is_get = (
                isinstance(parent, ast.Call)
                and isinstance(parent.func, ast.Attribute)
                and parent.func.attr in {"get", "pop", "setdefault"}
            )
            if len(node.value) > 1 and _CODE_SHAPED.match(node.value) and not (is_key or is_get):
                add(node.value, node, f"constant {node.value!r}")
    return uses


def _all_uses() -> list[CodeUse]:
    uses = []
    for rel in _source_files():
        uses += scan_source((ROOT / rel).read_text(encoding="utf-8"), rel.as_posix(), _module_namespace(rel))
    return uses


@pytest.fixture(scope="module")
def code_uses() -> list[CodeUse]:
    return _all_uses()


def test_the_scan_finds_codes_in_every_form(code_uses):
    found = {(use.code, use.where.split(":")[0]) for use in code_uses}
    assert ("TEMPLATE_NOT_FOUND", "templates/api.py") in found  # NotFound(code="…")
    assert ("TOKEN_REVOKED", "accounts/services.py") in found  # TokenRejected("…", message), positional
    assert ("INSUFFICIENT_SCOPE", "accounts/authentication.py") in found  # a permission's `code = "…"`
    assert ("AUDIT_EVENT_NOT_FOUND", "audit/api.py") in found  # not_found_code = "…"
    assert ("INVITATION_EXPIRED", "invitations/services/limits.py") in found  # default_code = "…"
    assert ("RATE_LIMITED", "platform_site/api/ratelimit.py") in found
    assert ("ROUTE_NOT_FOUND", "platform_site/api/errors.py") in found  # ErrorCode.X
    assert ("BAD_HOST", "platform_site/middleware.py") in found  # json_error(code="…")
    assert len(code_uses) > 100


def test_every_code_used_in_the_code_base_is_in_the_enum(code_uses):
    unknown = sorted(f"{use.where}: {use.how}" for use in code_uses if ErrorCode.lookup(use.code) is None)
    assert not unknown, "Codes missing from ErrorCode (platform_site/error_codes.py):\n" + "\n".join(unknown)


def test_every_raise_site_answers_its_codes_registered_status(code_uses):
    wrong = sorted(
        f"{use.where}: {use.how} answers {use.status}, but {use.code} is a {ErrorCode(use.code).status} code"
        for use in code_uses
        if use.status is not None and ErrorCode.lookup(use.code) and ErrorCode(use.code).status != use.status
    )
    assert not wrong, "\n".join(wrong)
    assert sum(use.status is not None for use in code_uses) > 80  # most raise sites fix a status


def test_the_scan_catches_unknown_codes_and_wrong_statuses():
    source = (
        "from platform_site.errors import NotFound, CarrelError\n"
        "from rest_framework import exceptions\n"
        "from accounts.services import TokenRejected\n"
        "from platform_site.error_codes import ErrorCode\n"
        "class Gone(CarrelError):\n"
        "    status_code = 410\n"
        "    default_code = 'NO_SUCH_DEFAULT'\n"
        "def f():\n"
        "    raise NotFound('x', code='NAME_TAKEN')\n"
        "def g():\n"
        "    raise exceptions.PermissionDenied('x', 'MADE_UP_CODE')\n"
        "def h():\n"
        "    raise TokenRejected('NOT_A_TOKEN_CODE', 'x')\n"
        "def i():\n"
        "    return ErrorCode.NO_SUCH_MEMBER\n"
        "def j():\n"
        "    raise CarrelError(code='lower_case_but_ours')\n"
        "def k():\n"
        "    raise ValueError('x', code='some_django_code')\n"
    )
    namespace = {"NotFound": errors.NotFound, "CarrelError": errors.CarrelError}
    namespace |= {"exceptions": drf_exceptions, "TokenRejected": TokenRejected, "ErrorCode": ErrorCode}
    uses = scan_source(source, "example.py", namespace)
    unknown = {use.code for use in uses if ErrorCode.lookup(use.code) is None}
    assert unknown == {"NO_SUCH_DEFAULT", "MADE_UP_CODE", "NOT_A_TOKEN_CODE", "NO_SUCH_MEMBER", "lower_case_but_ours"}
    [taken] = [use for use in uses if use.code == "NAME_TAKEN"]
    assert taken.status == 404  # NotFound fixes 404, and NAME_TAKEN is a 409 code: the test above would fail


# --- The registry --------------------------------------------------------------------------------------------------


def test_every_code_has_a_status_meaning_and_remediation():
    assert set(ERRORS) == set(ErrorCode)
    for code in ErrorCode:
        assert code.value == code.name
        assert code.status in {int(status) for status in _ERROR_RESPONSES}, code
        assert code.meaning.strip() and code.remediation.strip(), code
        assert code.remediation != code.meaning, code


@pytest.mark.parametrize(
    ("code", "must_mention"),
    [
        (ErrorCode.TEMPLATE_NOT_FOUND, ["GET /api/v1/templates"]),
        (ErrorCode.INSTANCE_NOT_FOUND, ["GET /api/v1/instances"]),
        (ErrorCode.RATE_LIMITED, ["Retry-After", "Wait"]),
        (ErrorCode.PROVIDER_UNAVAILABLE, ["Retry-After", "Retry"]),
        (ErrorCode.AMBIGUOUS_REFERENCE, ["id", "?project="]),
        (ErrorCode.INVITATION_RATE_LIMITED, ["Retry-After"]),
        (ErrorCode.AUTH_THROTTLED, ["Retry-After"]),
        (ErrorCode.CONFIRMATION_REQUIRED, ['{"confirm": "DELETE"}']),
    ],
)
def test_remediations_say_what_to_do_next(code, must_mention):
    for text in must_mention:
        assert text in code.remediation, (code, text)


def test_invalid_size_lists_the_sizes():
    from workspaces.sizing import SIZES

    assert ", ".join(SIZES) in ErrorCode.INVALID_SIZE.remediation


def test_every_lookup_failure_points_at_where_to_look():
    """A *_NOT_FOUND remediation names the endpoint that lists what can be found (or the schema's routes)."""
    for code in ErrorCode:
        if code.name.endswith("_NOT_FOUND") and code not in {ErrorCode.PAGE_NOT_FOUND}:
            assert "/api/v1/" in code.remediation, code


_ENDPOINT = re.compile(r"\b(GET|POST|PUT|PATCH|DELETE) (/api/v1/[^\s`?,;)]*)")


def test_the_endpoints_remediations_name_exist_with_that_method():
    mentioned = [(code, m) for code in ErrorCode for m in _ENDPOINT.finditer(code.remediation)]
    assert len(mentioned) > 20
    for code, match in mentioned:
        method, path = match.groups()
        try:
            resolved = resolve(re.sub(r"\{[^}]+\}", "x1", path))
        except Resolver404:
            pytest.fail(f"{code}: {path} is no route")
        view_class = getattr(resolved.func, "view_class", None) or getattr(resolved.func, "cls", None)
        assert view_class is not None and view_class.__module__ != api_errors.__name__, (code, path)
        assert hasattr(view_class, method.lower()), f"{code}: {method} {path} is not an operation"


# --- README and schema ---------------------------------------------------------------------------------------------


def test_the_readme_table_is_the_registrys():
    readme = README_PATH.read_text(encoding="utf-8")
    assert "## Error codes" in readme
    assert readme_with_table(readme) == readme, "README.md is out of date: run `python manage.py error_codes_readme`"
    for code in ErrorCode:
        assert f"| `{code}` | {code.status} |" in readme


def test_the_readme_command_rewrites_and_checks(tmp_path):
    readme = tmp_path / "README.md"
    from platform_site.error_codes import TABLE_END, TABLE_START

    readme.write_text(f"# X\n\n## Error codes\n\n{TABLE_START}\n| stale |\n{TABLE_END}\n\n## Next\n", encoding="utf-8")
    with pytest.raises(CommandError, match="out of date"):
        call_command("error_codes_readme", "--check", readme=str(readme))
    call_command("error_codes_readme", readme=str(readme))
    assert markdown_table() in readme.read_text(encoding="utf-8")
    assert readme.read_text(encoding="utf-8").endswith(f"{TABLE_END}\n\n## Next\n")
    call_command("error_codes_readme", "--check", readme=str(readme))


def test_the_schema_lists_every_code_and_each_status_its_codes(db):
    schema = yaml.safe_load(APIClient().get("/api/v1/schema/").content)
    code_schema = schema["components"]["schemas"]["ErrorEnvelope"]["properties"]["error"]["properties"]["code"]
    assert code_schema["enum"] == sorted(code.value for code in ErrorCode)
    for code in ErrorCode:
        assert f"`{code}` ({code.status}): {code.meaning}" in code_schema["description"]
    for status in _ERROR_RESPONSES:
        response = schema["components"]["responses"][f"Error{status}"]
        narrowed = response["content"]["application/json"]["schema"]["allOf"][1]
        enum = narrowed["properties"]["error"]["properties"]["code"]["enum"]
        assert enum == sorted(code.value for code in ErrorCode if code.status == int(status)), status
        assert enum, f"no code answers {status}"


# --- The handler ---------------------------------------------------------------------------------------------------


def _raise_from_a_view(monkeypatch, exc: Exception) -> None:
    def explode(**kwargs):
        raise exc

    monkeypatch.setattr("projects.api.selectors.projects_for", explode)


@pytest.mark.parametrize("code", list(ErrorCode))
def test_each_code_answers_its_status_and_default_remediation(owner_client, monkeypatch, code):
    _raise_from_a_view(monkeypatch, errors.CarrelError("Something.", code=code.value))
    response = owner_client.get("/api/v1/projects")
    error = assert_error(response, code.status, code.value)
    assert set(error) == ENVELOPE_KEYS
    assert error["remediation"] == code.remediation
    assert error["message"] == "Something."


def test_a_raise_sites_own_remediation_wins(owner_client, monkeypatch):
    exc = errors.NotFound("No.", code="TEMPLATE_NOT_FOUND", remediation="Try 'base'.", extra={"candidates": []})
    _raise_from_a_view(monkeypatch, exc)
    error = assert_error(owner_client.get("/api/v1/projects"), 404, "TEMPLATE_NOT_FOUND")
    assert error["remediation"] == "Try 'base'."
    assert set(error) == ENVELOPE_KEYS | {"candidates"}


def test_provider_unavailable_keeps_retry_after(owner_client, monkeypatch):
    _raise_from_a_view(monkeypatch, errors.ProviderUnavailable(retry_after=7))
    response = owner_client.get("/api/v1/projects")
    error = assert_error(response, 503, "PROVIDER_UNAVAILABLE")
    assert response["Retry-After"] == "7"
    assert "7 seconds" in error["remediation"]


def test_carrel_errors_refuse_codes_outside_the_enum():
    with pytest.raises(ValueError, match="not an error code"):
        errors.NotFound("x", code="NO_SUCH_THING")
    with pytest.raises(ValueError, match="not an error code"):
        errors.CarrelError(code="template_not_found")
    assert errors.NotFound("x", code=ErrorCode.TEMPLATE_NOT_FOUND).code is ErrorCode.TEMPLATE_NOT_FOUND
    assert errors.NotFound("x", code="TEMPLATE_NOT_FOUND").code is ErrorCode.TEMPLATE_NOT_FOUND


def test_carrel_errors_refuse_a_code_of_another_status():
    with pytest.raises(ValueError, match="answers 404, but NAME_TAKEN is a 409 code"):
        errors.NotFound("x", code="NAME_TAKEN")
    # CarrelError itself stands for no status: it answers its code's.
    assert errors.CarrelError(code="NAME_TAKEN").status_code == 409


def test_exception_classes_must_default_to_a_code_of_their_status():
    with pytest.raises(TypeError, match="not an ErrorCode"):
        type("Broken", (errors.CarrelError,), {"default_code": "NOPE"})
    with pytest.raises(TypeError, match="answers 410 but its default_code NOT_FOUND is a 404"):
        type("Broken", (errors.CarrelError,), {"status_code": 410, "default_code": "NOT_FOUND"})
    with pytest.raises(TypeError, match="answers 404 but its default_code NAME_TAKEN is a 409"):
        type("Broken", (errors.NotFound,), {"default_code": "NAME_TAKEN"})


def test_an_unknown_code_the_constructor_refuses_answers_internal_error(owner_client, monkeypatch, caplog):
    def explode(**kwargs):
        raise errors.NotFound("x", code="NO_SUCH_THING")

    monkeypatch.setattr("projects.api.selectors.projects_for", explode)
    with caplog.at_level(logging.ERROR, logger="carrel.api"):
        response = owner_client.get("/api/v1/projects")
    error = assert_error(response, 500, "INTERNAL_ERROR")
    assert "NO_SUCH_THING" not in response.content.decode()
    assert error["remediation"] == ErrorCode.INTERNAL_ERROR.remediation
    assert any("NO_SUCH_THING" in record.getMessage() or record.exc_info for record in caplog.records)


@pytest.mark.parametrize(
    "exc",
    [
        drf_exceptions.PermissionDenied("x", code="MADE_UP_CODE"),
        drf_exceptions.NotFound("x", code="NOT_FOUND_EITHER"),
        drf_exceptions.Throttled(wait=3, code="SLOW_DOWN_PLEASE"),
    ],
)
def test_a_drf_exception_with_a_code_outside_the_enum_is_a_logged_internal_error(
    owner_client, monkeypatch, caplog, exc
):
    _raise_from_a_view(monkeypatch, exc)
    with caplog.at_level(logging.ERROR, logger="carrel.api"):
        response = owner_client.get("/api/v1/projects")
    assert set(assert_error(response, 500, "INTERNAL_ERROR")) == ENVELOPE_KEYS
    assert any("Programming error" in record.getMessage() for record in caplog.records)


def test_a_drf_exception_answers_its_codes_status_and_logs_a_mismatch(owner_client, monkeypatch, caplog):
    _raise_from_a_view(monkeypatch, drf_exceptions.PermissionDenied("x", code="NAME_TAKEN"))
    with caplog.at_level(logging.ERROR, logger="carrel.api"):
        response = owner_client.get("/api/v1/projects")
    assert_error(response, 409, "NAME_TAKEN")
    assert any("raised as a 403" in record.getMessage() for record in caplog.records)


@pytest.mark.parametrize(
    ("exc", "status", "code"),
    [
        (drf_exceptions.PermissionDenied("x", code="INSUFFICIENT_SCOPE"), 403, "INSUFFICIENT_SCOPE"),
        (drf_exceptions.PermissionDenied("x"), 403, "PERMISSION_DENIED"),
        (drf_exceptions.NotFound(), 404, "NOT_FOUND"),
        (drf_exceptions.AuthenticationFailed("x", code="TOKEN_EXPIRED"), 401, "TOKEN_EXPIRED"),
        (drf_exceptions.NotAuthenticated(), 401, "AUTHENTICATION_REQUIRED"),
        (drf_exceptions.Throttled(wait=3, code="AUTH_THROTTLED"), 429, "AUTH_THROTTLED"),
        (drf_exceptions.Throttled(wait=3), 429, "RATE_LIMITED"),
        (drf_exceptions.MethodNotAllowed("GET"), 405, "METHOD_NOT_ALLOWED"),
        (drf_exceptions.NotAcceptable(), 406, "NOT_ACCEPTABLE"),
        (drf_exceptions.UnsupportedMediaType("text/plain"), 415, "UNSUPPORTED_MEDIA_TYPE"),
        (drf_exceptions.ParseError(), 400, "PARSE_ERROR"),
        (drf_exceptions.ValidationError({"name": ["Bad."]}), 400, "VALIDATION_ERROR"),
        (drf_exceptions.APIException(), 500, "INTERNAL_ERROR"),
        (RuntimeError("boom"), 500, "INTERNAL_ERROR"),
    ],
)
def test_drf_and_unexpected_exceptions_answer_enum_codes(owner_client, monkeypatch, exc, status, code):
    _raise_from_a_view(monkeypatch, exc)
    response = owner_client.get("/api/v1/projects")
    error = assert_error(response, status, code)
    assert ErrorCode(error["code"]).status == response.status_code
    assert error["remediation"] == ErrorCode(code).remediation


def test_json_error_answers_the_codes_status_and_refuses_unknown_codes(rf, caplog):
    request = rf.get("/api/v1/somewhere")
    response = api_errors.json_error(request, code=ErrorCode.LAST_OWNER, message="x")
    assert response.status_code == 409
    with caplog.at_level(logging.ERROR, logger="carrel.api"):
        response = api_errors.json_error(request, code="WHATEVER", message="x", status_code=418)
    assert response.status_code == 500
    assert b'"INTERNAL_ERROR"' in response.content
    assert any("WHATEVER" in record.getMessage() for record in caplog.records)


def test_the_response_shape_is_unchanged(owner_client):
    error = assert_error(owner_client.get("/api/v1/projects/prj_nope"), 404)
    assert set(error) == ENVELOPE_KEYS
    assert error["code"] in {"PROJECT_NOT_FOUND", "NOT_FOUND"}
    assert error["remediation"] == ErrorCode(error["code"]).remediation
    error = assert_error(owner_client.post("/api/v1/projects", {"description": 3}, format="json"), 400)
    assert set(error) == ENVELOPE_KEYS | {"fields"}
