"""What a deploy needs: production settings, the image's dependencies, compose's environment, the README's table."""

import ast
import json
import os
import re
import subprocess
import sys
import textwrap
from io import StringIO
from pathlib import Path

import pytest
import yaml
from django.conf import settings
from django.core.management import call_command

from templates.models import WorkspaceTemplate

ROOT = Path(settings.BASE_DIR)
SETTINGS_DIR = ROOT / "platform_site" / "settings"
PRODUCTION_ENV = {
    "DJANGO_SETTINGS_MODULE": "platform_site.settings.production",
    "DJANGO_SECRET_KEY": "k9$Qe1!xZ7rT3wY5uI8oP0aS2dF4gH6jK8lL1zX3cV5bN7mM9qW2eR4tY6uI8oP0",
    "DJANGO_ALLOWED_HOSTS": "carrel.example.org",
    "CARREL_PUBLIC_URL": "https://carrel.example.org",
}


def production_env(tmp_path, **changes) -> dict:
    env = {**os.environ, **PRODUCTION_ENV, "CARREL_VAR_DIR": str(tmp_path)}
    for name, value in changes.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


def run_manage(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


# --- CARREL_PUBLIC_URL --------------------------------------------------------------------------


def test_check_deploy_is_clean_with_the_settings_a_deploy_needs(tmp_path):
    result = run_manage(production_env(tmp_path), "check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def production_public_url(env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", "from django.conf import settings; print(settings.CARREL_PUBLIC_URL)"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("public_url", [None, "", "http://carrel.example.org", "carrel.example.org", "https://"])
def test_production_settings_refuse_to_start_without_an_https_public_url(tmp_path, public_url):
    result = production_public_url(production_env(tmp_path, CARREL_PUBLIC_URL=public_url))
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr and "CARREL_PUBLIC_URL" in result.stderr


def test_the_public_url_is_used_without_a_trailing_slash(tmp_path):
    result = production_public_url(production_env(tmp_path, CARREL_PUBLIC_URL="https://carrel.example.org/"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "https://carrel.example.org"


# --- Dependencies by role: no moto in production --------------------------------------------------

IMPORT_EVERY_MODULE = textwrap.dedent(
    """
    import importlib, json, pkgutil, sys
    from pathlib import Path


    class BlockMoto:
        # The production image has no moto: importing it fails there, so it fails here.
        def find_spec(self, name, path=None, target=None):
            if name == "moto" or name.startswith("moto."):
                raise ModuleNotFoundError(f"No module named {name!r} (not in the production image)", name=name)
            return None


    sys.meta_path.insert(0, BlockMoto())
    import django

    django.setup()
    from django.apps import apps
    from django.conf import settings

    root = Path(settings.BASE_DIR).resolve()
    # The project's own apps: top-level packages of the repository (not the libraries in .venv).
    packages = sorted(app.name for app in apps.get_app_configs() if Path(app.path).resolve().parent == root)
    imported, failures = [], {}

    def failed(name):
        failures[name] = repr(sys.exc_info()[1])

    for package in packages:
        module = importlib.import_module(package)
        imported.append(package)
        for info in pkgutil.walk_packages(module.__path__, package + ".", onerror=failed):
            if info.name.startswith("platform_site.settings"):
                continue  # settings modules are loaded by django.setup(); the test ones are not for production
            try:
                importlib.import_module(info.name)
                imported.append(info.name)
            except Exception:
                failed(info.name)
    moto = sorted(name for name in sys.modules if name == "moto" or name.startswith("moto."))
    print(json.dumps({"packages": packages, "imported": imported, "failures": failures, "moto": moto}))
    """
)


def test_every_app_module_imports_under_production_settings_without_moto(tmp_path):
    result = subprocess.run(
        [sys.executable, "-c", IMPORT_EVERY_MODULE],
        cwd=ROOT,
        env=production_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["failures"] == {}
    assert report["moto"] == []
    assert {"platform_site", "accounts", "workspaces", "templates", "invitations"} <= set(report["packages"])
    # The modules that start the local cloud are among those imported: they import moto only when they run.
    assert {"platform_site.management.commands.sandbox", "workspaces.moto_server", "platform_site.wsgi"} <= set(
        report["imported"]
    )


def requirement_lines(name: str) -> list[str]:
    lines = [line.split("#", 1)[0].strip() for line in (ROOT / name).read_text().splitlines()]
    return [line for line in lines if line]


def test_the_production_image_installs_the_runtime_requirements_only():
    runtime = requirement_lines("requirements.txt")
    assert all("==" in line for line in runtime), runtime
    assert not any(line.lower().startswith(("moto", "pytest", "ruff", "schemathesis", "-r")) for line in runtime)
    assert any(line.startswith("drf-spectacular-sidecar==") for line in runtime)

    dockerfile = (ROOT / "Dockerfile").read_text()
    installs = re.findall(r"pip install[^\n]*", dockerfile)
    assert installs == ["pip install --no-cache-dir -r requirements.txt"]

    # The sandbox's local cloud on top of the runtime; the test tools on top of the sandbox (tests run moto too).
    sandbox = requirement_lines("requirements-sandbox.txt")
    assert sandbox[0] == "-r requirements.txt"
    assert [line for line in sandbox[1:] if line.startswith("moto")] == ["moto[server]==5.2.5"]
    dev = requirement_lines("requirements-dev.txt")
    assert dev[0] == "-r requirements-sandbox.txt"
    assert all("==" in line for line in sandbox[1:] + dev[1:])


def test_the_venv_is_reinstalled_when_any_requirement_file_changes():
    script = (ROOT / "scripts" / "_venv.sh").read_text()
    listed = re.search(r"REQUIREMENT_FILES=\(([^)]*)\)", script).group(1).split()
    assert sorted(listed) == sorted(path.name for path in ROOT.glob("requirements*.txt"))
    assert "-r requirements-dev.txt" in script


# --- docker-compose.yml ----------------------------------------------------------------------------


def compose_services() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]


def test_compose_requires_the_public_url_and_passes_mail_and_aws_settings():
    for name in ("migrate", "web", "worker", "beat"):
        env = compose_services()[name]["environment"]
        assert env["CARREL_PUBLIC_URL"].startswith("${CARREL_PUBLIC_URL:?"), name
        for variable in (
            "DJANGO_EMAIL_BACKEND",
            "EMAIL_HOST",
            "EMAIL_PORT",
            "EMAIL_HOST_USER",
            "EMAIL_HOST_PASSWORD",
            "EMAIL_USE_TLS",
            "DEFAULT_FROM_EMAIL",
            "AWS_DEFAULT_REGION",
        ):
            assert env[variable].startswith(f"${{{variable}:-"), (name, variable)
        # Credentials or a role are optional: passed through when set, left unset (not empty) otherwise.
        for variable in (
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_SESSION_TOKEN",
            "AWS_ROLE_ARN",
            "AWS_ROLE_SESSION_NAME",
            "AWS_WEB_IDENTITY_TOKEN_FILE",
        ):
            assert variable in env and env[variable] is None, (name, variable)


def test_every_deploy_migrates_then_loads_the_template_catalog():
    services = compose_services()
    command = services["migrate"]["command"]
    assert command[:2] == ["sh", "-c"]
    steps = [step.strip() for step in command[2].split("&&")]
    assert steps == ["python manage.py migrate --noinput", "python manage.py load_templates"]
    for name in ("web", "worker", "beat"):
        assert services[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"


def test_loading_the_template_catalog_again_changes_nothing(db):
    first = StringIO()
    call_command("load_templates", stdout=first)
    rows = {template.slug: (template.pk, template.definition) for template in WorkspaceTemplate.objects.all()}
    assert rows and re.search(r"Templates: [1-9]\d* created, 0 updated, 0 unchanged, 0 invalid", first.getvalue())

    again = StringIO()
    call_command("load_templates", stdout=again)
    assert re.search(rf"Templates: 0 created, 0 updated, {len(rows)} unchanged, 0 invalid", again.getvalue())
    assert {template.slug: (template.pk, template.definition) for template in WorkspaceTemplate.objects.all()} == rows


# --- The README's settings table --------------------------------------------------------------------

# Read by the settings but not for operators: set only by the test suite.
TEST_ONLY = {
    "CARREL_TEST_RUN_ID": "test settings: the run's SQLite file and broker folder, inherited by the workers it starts",
    "CARREL_CLOUD_FAULTS": "fault injection for tests (DESIGN principle 11: no test hooks in production)",
}
# In the table but read by libraries rather than by the settings.
READ_ELSEWHERE = {
    "DJANGO_SETTINGS_MODULE": "Django itself (manage.py, wsgi.py, the Celery app)",
    "AWS_ACCESS_KEY_ID": "boto3's credential chain",
    "AWS_SECRET_ACCESS_KEY": "boto3's credential chain",
    "AWS_SESSION_TOKEN": "boto3's credential chain",
    "AWS_DEFAULT_REGION": "boto3's region",
    "AWS_ROLE_ARN": "boto3's web-identity role",
    "AWS_ROLE_SESSION_NAME": "boto3's web-identity role",
    "AWS_WEB_IDENTITY_TOKEN_FILE": "boto3's web-identity role",
}
ENV_HELPERS = {"env_bool", "env_list"}


def _is_os_environ(node: ast.AST) -> bool:
    return ast.unparse(node) == "os.environ"


def variables_read_by(path: Path) -> dict[str, int]:
    """Environment variables read in one settings module -> the line first reading each."""
    found: dict[str, int] = {}
    tree = ast.parse(path.read_text(), filename=str(path))
    helper_bodies = {
        id(node)
        for function in ast.walk(tree)
        if isinstance(function, ast.FunctionDef) and function.name in ENV_HELPERS
        for node in ast.walk(function)
    }

    def record(argument: ast.AST, node: ast.AST) -> None:
        if id(node) in helper_bodies:
            return  # env_bool(name) / env_list(name) themselves: their callers name the variable
        assert isinstance(argument, ast.Constant) and isinstance(argument.value, str), (
            f"{path.name}:{node.lineno} reads an environment variable whose name is not a literal "
            f"({ast.unparse(node)}): name it in full so that this test can check the README"
        )
        found.setdefault(argument.value, node.lineno)

    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            function = node.func
            reads = ast.unparse(function) in {"os.environ.get", "os.environ.setdefault", "os.environ.pop", "os.getenv"}
            if reads or (isinstance(function, ast.Name) and function.id in ENV_HELPERS):
                record(node.args[0], node)
            for keyword in node.keywords:
                if keyword.arg == "env" and ast.unparse(function).startswith("dj_database_url."):
                    record(keyword.value, node)
        elif isinstance(node, ast.Subscript) and _is_os_environ(node.value):
            record(node.slice, node)
        elif isinstance(node, ast.Compare) and any(_is_os_environ(c) for c in node.comparators):
            record(node.left, node)
    return found


def variables_in_the_readme_table() -> set[str]:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("### Settings (environment variables)", 1)[1]
    table = section[section.index("\n| variable |") + 1 :]
    rows = table[: table.index("\n\n")].splitlines()
    assert rows[0].startswith("| variable |") and set(rows[1]) <= set("|- ")
    names: set[str] = set()
    for row in rows[2:]:
        first_column = row.split("|")[1]
        # Full names only ("`CARREL_X`, `CARREL_Y`"), so that each can be searched for.
        assert re.fullmatch(r"\s*`[A-Z][A-Z0-9_]*`(,\s*`[A-Z][A-Z0-9_]*`)*\s*", first_column), first_column
        names.update(re.findall(r"`([A-Z][A-Z0-9_]*)`", first_column))
    return names


def test_the_collector_finds_every_way_the_settings_read_the_environment(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text(
        "import os\nimport dj_database_url\n"
        "def env_bool(name, default):\n    return os.environ.get(name)\n"
        "A = os.environ.get('A')\nB = os.environ['B']\nC = env_bool('C', False)\nD = env_list('D')\n"
        "E = os.environ.setdefault('E', '1')\nF = dj_database_url.config(env='F')\nG = 'G' in os.environ\n"
        "H = os.getenv('H')\n"
    )
    assert set(variables_read_by(sample)) == set("ABCDEFGH")
    sample.write_text("import os\nX = os.environ.get(f'CARREL_{1}')\n")
    with pytest.raises(AssertionError, match="not a literal"):
        variables_read_by(sample)


def test_the_readme_settings_table_lists_every_environment_variable_the_settings_read():
    read: dict[str, str] = {}
    for path in sorted(SETTINGS_DIR.glob("*.py")):
        for name, line in variables_read_by(path).items():
            read.setdefault(name, f"{path.name}:{line}")
    assert len(read) > 40  # the collector sees the settings (a guard against it silently finding nothing)
    documented = variables_in_the_readme_table()

    missing = {name: where for name, where in read.items() if name not in documented and name not in TEST_ONLY}
    assert not missing, f"add these to the README's settings table: {missing}"
    stale = documented - set(read) - set(READ_ELSEWHERE)
    assert not stale, f"the README's settings table lists variables nothing reads: {sorted(stale)}"
    assert not set(TEST_ONLY) & documented
