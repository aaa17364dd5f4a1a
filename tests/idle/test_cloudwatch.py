# ruff: noqa: F811 (pytest fixtures imported from tests.workspaces.conftest are redefined as arguments)
"""The CloudWatch fallback, against the moto server: batched GetMetricData (never one call per workspace), only for
workspaces whose agent is silent, every period of the window needed, and each account's own instances."""

from datetime import timedelta

import boto3
import pytest
from django.utils import timezone

from idle.cloudwatch import PERIOD, cloudwatch_fetch, cloudwatch_targets, floor_period
from idle.models import WorkspaceIdle
from idle.services.sweep import idle_sweep
from tests.idle.sweep_support import make_workspace
from tests.workspaces.conftest import account, catalog, cloud, moto, moto_image  # noqa: F401 (fixtures)
from workspaces.models import CloudAccount
from workspaces.moto_server import SANDBOX_AWS_ENV

pytestmark = pytest.mark.django_db

CALLS: list[str] = []


def count_cloudwatch_calls(client) -> None:
    """A client hook (CARREL_CLOUD_CLIENT_HOOKS): records each CloudWatch call this process makes."""
    client.meta.events.register("after-call.cloudwatch", lambda model=None, **_: CALLS.append(model.name))


@pytest.fixture
def calls(settings):
    settings.CARREL_CLOUD_CLIENT_HOOKS = [*settings.CARREL_CLOUD_CLIENT_HOOKS, f"{__name__}.count_cloudwatch_calls"]
    CALLS.clear()
    return CALLS


@pytest.fixture
def metrics(cloud):
    client = boto3.client(
        "cloudwatch",
        endpoint_url=cloud.url,
        region_name="us-east-1",
        aws_access_key_id=SANDBOX_AWS_ENV["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=SANDBOX_AWS_ENV["AWS_SECRET_ACCESS_KEY"],
    )

    def publish(instance_id: str, *, start, end, cpu: float = 1.0, network: float = 1000.0, skip=()):
        """EC2's basic monitoring for the instance: one datapoint of each metric every 5 minutes in [start, end)."""
        moment, data = start, []
        while moment < end:
            if moment not in skip:
                dims = [{"Name": "InstanceId", "Value": instance_id}]
                for name, value in (("CPUUtilization", cpu), ("NetworkIn", network), ("NetworkOut", network)):
                    data.append({"MetricName": name, "Dimensions": dims, "Timestamp": moment, "Value": value})
            moment += PERIOD
        for offset in range(0, len(data), 500):
            client.put_metric_data(Namespace="AWS/EC2", MetricData=data[offset : offset + 500])

    return publish


def fallback(project, owner, account, name: str, *, instance: str, minutes_ago: float = 180):
    return make_workspace(
        project,
        owner,
        name,
        cloud_account=account,
        instance_id=instance,
        configured_at=timezone.now() - timedelta(minutes=minutes_ago),
    )


def state_of(workspace) -> WorkspaceIdle:
    return WorkspaceIdle.objects.get(pk=workspace.pk)


def test_quiet_metrics_over_the_window_make_a_workspace_idle(project, owner, account, metrics, calls):
    now = timezone.now()
    end = floor_period(now)
    workspace = fallback(project, owner, account, "quiet", instance="i-0000000000000aaaa")
    metrics("i-0000000000000aaaa", start=end - timedelta(minutes=90), end=end)
    result = cloudwatch_fetch(cloud_account_id=account.pk, region="us-east-1", now=now)
    assert (result.workspaces, result.calls, result.updated) == (1, 1, 1)
    assert calls == ["GetMetricData"]
    state = state_of(workspace)
    assert state.signal_source == "cloudwatch"
    assert state.last_observed_at == end
    assert state.last_active_at is None and state.active_reasons == []
    assert state.observed_since <= end - timedelta(minutes=60)
    assert state.last_sample["cpu_percent"] == [1.0]
    assert state.last_sample["network_bytes_per_s"] == pytest.approx(2000 / 300, abs=0.01)
    assert idle_sweep(now=now).warned == [workspace.pk]


def test_busy_metrics_keep_it_alive(project, owner, account, metrics):
    now = timezone.now()
    end = floor_period(now)
    workspace = fallback(project, owner, account, "busy", instance="i-0000000000000bbbb")
    metrics("i-0000000000000bbbb", start=end - timedelta(minutes=90), end=end, cpu=40.0)
    cloudwatch_fetch(cloud_account_id=account.pk, region="us-east-1", now=now)
    state = state_of(workspace)
    assert state.active_reasons == ["cpu"] and state.last_active_at == end
    assert idle_sweep(now=now).warned == []


def test_a_missing_period_is_missing_data(project, owner, account, metrics):
    now = timezone.now()
    end = floor_period(now)
    workspace = fallback(project, owner, account, "gappy", instance="i-0000000000000cccc")
    gap = end - timedelta(minutes=20)
    metrics("i-0000000000000cccc", start=end - timedelta(minutes=90), end=end, skip={gap})
    cloudwatch_fetch(cloud_account_id=account.pk, region="us-east-1", now=now)
    # Coverage starts again after the gap: the period after it, ending 10 minutes after the gap began.
    assert state_of(workspace).observed_since == gap + 2 * PERIOD
    assert idle_sweep(now=now).warned == []


def test_no_data_is_never_idle(project, owner, account, metrics):
    now = timezone.now()
    workspace = fallback(project, owner, account, "dark", instance="i-0000000000000dddd")
    result = cloudwatch_fetch(cloud_account_id=account.pk, region="us-east-1", now=now)
    assert result.updated == 0
    assert state_of(workspace).signal_source == ""
    assert idle_sweep(now=now).warned == []


def test_a_later_fetch_adds_only_the_new_periods(project, owner, account, metrics):
    now = timezone.now()
    end = floor_period(now)
    workspace = fallback(project, owner, account, "steady", instance="i-0000000000000eeee")
    metrics("i-0000000000000eeee", start=end - timedelta(minutes=90), end=end + PERIOD)
    cloudwatch_fetch(cloud_account_id=account.pk, region="us-east-1", now=now)
    since = state_of(workspace).observed_since
    later = cloudwatch_fetch(cloud_account_id=account.pk, region="us-east-1", now=now + PERIOD)
    assert later.reports == 1
    state = state_of(workspace)
    assert state.observed_since == since and state.last_observed_at == end + PERIOD


def test_workspaces_with_a_live_agent_are_not_fetched(project, owner, account, metrics, calls):
    now = timezone.now()
    workspace = fallback(project, owner, account, "agent", instance="i-0000000000000ffff")
    WorkspaceIdle.objects.filter(pk=workspace.pk).update(
        signal_source="agent", observed_since=now - timedelta(hours=1), last_observed_at=now - timedelta(minutes=1)
    )
    assert cloudwatch_targets(now=now) == []
    assert cloudwatch_fetch(cloud_account_id=account.pk, region="us-east-1", now=now).workspaces == 0
    assert calls == []
    # Silent for over 3 minutes: CloudWatch takes over.
    assert cloudwatch_targets(now=now + timedelta(minutes=3, seconds=1)) == [(account.pk, "us-east-1")]


def test_it_batches_500_queries_a_call(project, owner, account, metrics, calls):
    now = timezone.now()
    end = floor_period(now)
    created = [fallback(project, owner, account, f"box-{n}", instance=f"i-{n:017x}") for n in range(170)]
    for workspace in created[:3]:
        metrics(workspace.provider_instance_id, start=end - timedelta(minutes=90), end=end)
    result = cloudwatch_fetch(cloud_account_id=account.pk, region="us-east-1", now=now)
    assert result.workspaces == 170 and result.calls == 2  # 166 workspaces (498 queries) per call
    assert calls == ["GetMetricData", "GetMetricData"]
    assert result.updated == 3
    assert set(WorkspaceIdle.objects.filter(signal_source="cloudwatch").values_list("pk", flat=True)) == {
        w.pk for w in created[:3]
    }


def test_two_organizations_on_one_endpoint_each_get_their_own_instances(
    project, owner, account, outsider, metrics, cloud
):
    now = timezone.now()
    end = floor_period(now)
    from projects.models import Project

    theirs = CloudAccount.objects.create(
        organization=Project.objects.get(name="Climate").organization,
        name="shared",
        region="us-east-1",
        endpoint_url=cloud.url,
    )
    mine = fallback(project, owner, account, "mine", instance="i-00000000000001111")
    other = fallback(Project.objects.get(name="Climate"), outsider, theirs, "theirs", instance="i-00000000000002222")
    metrics("i-00000000000001111", start=end - timedelta(minutes=90), end=end)
    metrics("i-00000000000002222", start=end - timedelta(minutes=90), end=end, cpu=90.0)
    assert cloudwatch_targets(now=now) == sorted([(account.pk, "us-east-1"), (theirs.pk, "us-east-1")])
    cloudwatch_fetch(cloud_account_id=account.pk, region="us-east-1", now=now)
    assert state_of(mine).signal_source == "cloudwatch" and state_of(other).signal_source == ""
    cloudwatch_fetch(cloud_account_id=theirs.pk, region="us-east-1", now=now)
    assert state_of(other).active_reasons == ["cpu"] and state_of(mine).active_reasons == []
    assert idle_sweep(now=now).warned == [mine.pk]
