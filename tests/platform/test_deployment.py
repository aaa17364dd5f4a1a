import os
import subprocess
import sys
from pathlib import Path

import yaml
from django.conf import settings

ROOT = Path(settings.BASE_DIR)


def test_check_deploy_with_production_settings_prints_no_warnings(tmp_path):
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "platform_site.settings.production",
        "DJANGO_SECRET_KEY": "k9$Qe1!xZ7rT3wY5uI8oP0aS2dF4gH6jK8lL1zX3cV5bN7mM9qW2eR4tY6uI8oP0",
        "DJANGO_ALLOWED_HOSTS": "carrel.example.org",
        "CARREL_PUBLIC_URL": "https://carrel.example.org",
        "CARREL_VAR_DIR": str(tmp_path),
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout
    assert "WARNINGS" not in result.stdout + result.stderr


def test_production_settings_refuse_the_sandbox_secret(tmp_path):
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "platform_site.settings.production",
        "DJANGO_ALLOWED_HOSTS": "carrel.example.org",
        "CARREL_VAR_DIR": str(tmp_path),
    }
    env.pop("DJANGO_SECRET_KEY", None)
    result = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY" in result.stderr


def test_docker_compose_runs_the_production_stack():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"postgres", "redis", "web", "worker", "beat"} <= set(services)
    assert "gunicorn" in services["web"]["command"]
    assert "worker" in services["worker"]["command"] and "beat" in services["beat"]["command"]
    for name in ("web", "worker", "beat", "migrate"):
        env = services[name]["environment"]
        assert env["DJANGO_SETTINGS_MODULE"] == "platform_site.settings.production"
        assert env["DATABASE_URL"].startswith("postgres://") and "@postgres:5432/" in env["DATABASE_URL"]
        assert env["REDIS_URL"].startswith("redis://redis:6379")
        assert services[name]["build"] == "."
    assert services["web"]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert (ROOT / "Dockerfile").exists()
    requirements = (ROOT / "requirements.txt").read_text()
    assert all("==" in line for line in requirements.splitlines() if line and not line.startswith("#"))


def test_it_publishes_the_web_port_on_loopback_only():
    # The TLS proxy runs on the host: nothing else may reach gunicorn and forge X-Forwarded-For.
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    for name, service in compose["services"].items():
        for mapping in service.get("ports", []):
            published = mapping if isinstance(mapping, str) else f"{mapping.get('host_ip', '')}:{mapping['published']}"
            assert published.startswith(("127.0.0.1:", "[::1]:")), (name, mapping)
    assert compose["services"]["web"]["ports"] == ["127.0.0.1:8000:8000"]
    assert "127.0.0.1" in (ROOT / "README.md").read_text().split("## Production", 1)[1].split("###", 1)[0]


def test_the_wsgi_module_loads_every_view_and_freezes_what_it_loaded():
    import gc

    from platform_site import wsgi

    # The application's modules and classes stay out of the collector's full passes (see platform_site/wsgi.py).
    assert gc.get_freeze_count() > 10_000
    assert callable(wsgi.application)
    gc.unfreeze()  # the test process's later objects are collected as usual
