"""No way around the budget: a pool outside its dates funds nothing; a TTL extension is held like a start."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from budgets.models import Reservation
from platform_site.errors import PermissionDenied
from tests.budgets.test_enforcement import LAUNCH, fund, make_pool, spend
from workspaces import services
from workspaces.models import Workspace

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("when", ["after_the_pool_ended", "before_the_pool_started"])
def test_spend_outside_the_pools_dates_still_counts_against_launches(owner, project, account, when):
    """An allocation of 10 whose project has spent 1000 outside the pool's dates (a grant that ended, or one not
    started): the launch check counts only entries inside the pool's dates, so launches go on without limit."""
    now = datetime.now(UTC)
    if when == "after_the_pool_ended":
        pool = make_pool(project.organization, start_date=now - timedelta(days=365), end_date=now - timedelta(days=1))
    else:
        pool = make_pool(project.organization, start_date=now + timedelta(days=1), end_date=now + timedelta(days=365))
    fund(project, "10", pool=pool)
    spend(project, "1000", owner=owner)  # an hour ago: outside the pool's dates
    with pytest.raises(PermissionDenied):
        services.workspace_launch(actor=owner, project=project, **LAUNCH)


def test_extending_the_ttl_of_a_running_workspace_is_held_against_the_budget(owner, project, account):
    """A start reserves only the remaining TTL (one minute here, almost nothing), so it fits an allocation that
    is all but spent; an extension then lets it run 24 hours with no check and no reservation."""
    allocation = fund(project, "100")
    launched = services.workspace_launch(actor=owner, project=project, **LAUNCH)
    services.workspace_provision(job_id=launched.job.pk)
    workspace = Workspace.objects.get(pk=launched.workspace.pk)
    services.workspace_act(actor=owner, workspace=workspace, action="stop")
    services.workspace_drive(workspace_id=workspace.pk, action="stop")
    spend(project, "99.99", owner=owner, name="earlier")
    allocation.refresh_from_db()
    Workspace.objects.filter(pk=workspace.pk).update(expires_at=datetime.now(UTC) + timedelta(minutes=1))
    services.workspace_act(actor=owner, workspace=Workspace.objects.get(pk=workspace.pk), action="start")
    held = Reservation.objects.get(workspace=workspace, released_at__isnull=True)
    assert held.amount < Decimal("0.01")
    refused = False
    try:
        services.workspace_extend(actor=owner, workspace=Workspace.objects.get(pk=workspace.pk), hours=24)
    except PermissionDenied:
        refused = True
    held.refresh_from_db()
    assert refused or held.remaining > Decimal("1"), "24 more hours of c5.xlarge past a spent budget, unchecked"
