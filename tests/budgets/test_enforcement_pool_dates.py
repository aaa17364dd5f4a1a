"""Review: ways to run compute past BUDGET_EXCEEDED / MEMBER_CAP_EXCEEDED."""

from datetime import UTC, datetime, timedelta

import pytest

from platform_site.errors import PermissionDenied
from tests.budgets.test_enforcement import LAUNCH, fund, make_pool, spend
from workspaces import services

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
