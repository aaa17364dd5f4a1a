import time

from django.core.cache import cache
from rest_framework.test import APIClient

from platform_site.tasks import WORKER_HEARTBEAT_KEY, record_worker_heartbeat
from tests.conftest import assert_error


def test_healthcheck_needs_no_auth(db):
    response = APIClient().get("/api/v1/healthcheck")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


def test_daemon_status_reports_version_uptime_and_dependencies(owner_client, project):
    body = owner_client.get("/api/v1/daemon/status").json()
    assert body["api_version"] == "v1"
    assert body["version"]
    assert body["uptime"].endswith("s") and body["uptime_seconds"] >= 0
    assert body["database"] == "connected"
    assert body["redis"] in {"connected", "not_configured"}
    assert body["worker"] == "unknown"
    assert body["status"] == "degraded"
    assert body["projects"] == 1 and body["organizations"] == 1


def test_daemon_status_sees_a_worker_heartbeat(owner_client):
    record_worker_heartbeat()
    body = owner_client.get("/api/v1/daemon/status").json()
    assert body["worker"] == "running"
    assert body["worker_last_seen"]
    cache.set(WORKER_HEARTBEAT_KEY, {"at": time.time() - 3600, "hostname": "old"})
    assert owner_client.get("/api/v1/daemon/status").json()["worker"] == "unreachable"


def test_daemon_status_needs_auth(db):
    assert_error(APIClient().get("/api/v1/daemon/status"), 401)


def test_the_home_page_links_the_console(db):
    response = APIClient().get("/")
    assert response.status_code == 200
    assert b"/api/v1/docs/" in response.content
