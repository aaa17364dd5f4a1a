"""Auto-hibernate through a real Celery worker: the budget's threshold stops the machines on the moto server."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from audit.models import AuditEvent
from budgets.models import Allocation, BudgetAlert, BudgetPool
from budgets.services import enforcement
from tests.conftest import bearer_client
from tests.support import celery_worker, record_cost, wait_until
from tests.workspaces.conftest import cloud_instances
from workspaces.models import Workspace

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def launch(owner, project, name: str) -> str:
    response = bearer_client(owner).post(
        "/api/v1/instances/launch",
        {"name": name, "template": "Python Machine Learning", "size": "S", "project": project.id},
        format="json",
    )
    assert response.status_code == 202, response.content
    return response.json()["workspace_id"]


def test_auto_hibernate_stops_the_machines_on_the_cloud_through_a_real_worker(
    owner, org, project, account, ec2, tmp_path
):
    pool = BudgetPool.objects.create(
        organization=org,
        name="Grant",
        total_amount=Decimal(1000),
        start_date=datetime(2020, 1, 1, tzinfo=UTC),
        end_date=datetime(2040, 1, 1, tzinfo=UTC),
    )
    Allocation.objects.create(pool=pool, project=project, amount=Decimal(100), auto_hibernate_threshold=Decimal("0.9"))
    log = tmp_path / "worker.log"
    with celery_worker(tmp_path):
        able, unable = launch(owner, project, "able"), launch(owner, project, "unable")
        wait_until(
            lambda: set(Workspace.objects.filter(pk__in=[able, unable]).values_list("state", flat=True)) == {"running"},
            timeout=120,
            what="both launches to run",
            log_path=log,
        )
        # An instance launched without hibernation configured cannot hibernate: the budget stops it instead.
        Workspace.objects.filter(pk=unable).update(hibernation_capable=False)
        # Past spend of the project crosses the threshold (95 of 100).
        past = Workspace.objects.get(pk=able)
        at = datetime.now(UTC) - timedelta(hours=2)
        record_cost(
            organization=org,
            workspace=past,
            project=project,
            member=owner,
            kind="compute",
            item="c5.xlarge",
            start=at,
            end=at + timedelta(hours=1),
            day=at.date(),
            quantity=Decimal(3600),
            unit="seconds",
            rate=Decimal("95"),
            amount=Decimal("95"),
        )
        fired = enforcement.apply_thresholds()
        assert [alert.kind for alert in fired] == ["auto_hibernate"]
        wait_until(
            lambda: (
                dict(Workspace.objects.filter(pk__in=[able, unable]).values_list("pk", "state"))
                == {able: "hibernated", unable: "stopped"}
            ),
            timeout=120,
            what="the worker to hibernate one workspace and stop the other",
            log_path=log,
        )
        wait_until(
            lambda: BudgetAlert.objects.get(pk=fired[0].pk).notified_at is not None,
            what="the worker to e-mail the alert",
            log_path=log,
        )
    ids = dict(Workspace.objects.filter(pk__in=[able, unable]).values_list("pk", "provider_instance_id"))
    on_cloud = {i["InstanceId"]: i["State"]["Name"] for i in cloud_instances(ec2, states=("running", "stopped"))}
    assert on_cloud == {ids[able]: "stopped", ids[unable]: "stopped"}
    assert enforcement.apply_thresholds() == []  # once per period
    alert = BudgetAlert.objects.get(pk=fired[0].pk)
    assert [e["name"] for e in alert.details["hibernated"]] == ["able"]
    assert [e["name"] for e in alert.details["stopped"]] == ["unable"]
    assert AuditEvent.objects.filter(action="budget.auto_hibernate", actor_label="system").count() == 1
    assert "drive_workspace" in log.read_text() and "send_budget_alert_email" in log.read_text()
