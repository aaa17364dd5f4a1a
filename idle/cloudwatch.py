"""The fallback signal: CloudWatch's CPUUtilization and NetworkIn/Out for running workspaces whose agent has not
reported in the last 3 minutes (none installed, or it died).

Per cloud account and region, one batched GetMetricData call per 166 workspaces (three metric queries each, at
most 500 a call), never one per workspace, over the longest idle window among them, at EC2's basic-monitoring
period of 5 minutes. Each new period becomes one report (idle.services.reports.report_changes, source
"cloudwatch"), measured at the period's end. A workspace's window needs a datapoint of all three metrics for
every period: a missing period is missing data, and the coverage starts again after it.

Limits, by what CloudWatch measures: CPUUtilization is the whole instance's average over its vCPUs (one busy
core of 16 reads about 6%), so it cannot judge the busiest core; it knows nothing of memory, disk (for EBS),
GPUs, logged-in sessions, input or registered jobs. The agent is the signal to trust; this only keeps
workspaces without one from running idle forever."""

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from idle.models import SignalSource, WorkspaceIdle
from idle.services.reports import report_changes
from workspaces.cloud import METRIC_QUERIES_PER_CALL, AwsProvider, MetricSeries
from workspaces.models import CloudAccount, WorkspaceState

logger = logging.getLogger("carrel.idle")

PERIOD = timedelta(minutes=5)
# A workspace falls back to CloudWatch once its agent has been silent this long.
AGENT_SILENT_AFTER = timedelta(minutes=3)
# Besides the window, look this much further back: CloudWatch publishes basic monitoring a few minutes late.
LOOKBACK = timedelta(minutes=15)
METRICS = (("c", "CPUUtilization", "Maximum"), ("i", "NetworkIn", "Sum"), ("o", "NetworkOut", "Sum"))
PER_CALL = METRIC_QUERIES_PER_CALL // len(METRICS)
REPORT_FIELDS = [
    "signal_source",
    "observed_since",
    "last_observed_at",
    "last_active_at",
    "active_reasons",
    "last_sample",
]


@dataclass
class FetchResult:
    workspaces: int = 0  # asked about
    calls: int = 0  # GetMetricData calls (pages not counted)
    reports: int = 0  # periods applied
    updated: int = 0  # rows written


def agent_heard_from(now: datetime) -> Q:
    return Q(signal_source=SignalSource.AGENT, last_observed_at__gte=now - AGENT_SILENT_AFTER)


def candidates(now: datetime):
    """Running workspaces with idle detection on, an instance, and no recent heartbeat."""
    return (
        WorkspaceIdle.objects.filter(enabled=True, workspace__state=WorkspaceState.RUNNING)
        .exclude(workspace__provider_instance_id="")
        .exclude(workspace__cloud_account__isnull=True)
        .exclude(agent_heard_from(now))
    )


def cloudwatch_targets(*, now: datetime | None = None) -> list[tuple[str, str]]:
    """The (cloud account, region) pairs that have workspaces to fetch for (one query)."""
    now = now or timezone.now()
    pairs = candidates(now).values_list("workspace__cloud_account_id", "workspace__region").distinct().order_by()
    return sorted(set(pairs))


def floor_period(moment: datetime) -> datetime:
    seconds = int(PERIOD.total_seconds())
    stamp = int(moment.timestamp())
    return datetime.fromtimestamp(stamp - stamp % seconds, tz=UTC)


def _queries(batch: list[WorkspaceIdle]) -> list[dict]:
    queries = []
    for index, state in enumerate(batch):
        for prefix, name, stat in METRICS:
            queries.append(
                {
                    "Id": f"{prefix}{index}",
                    "MetricStat": {
                        "Metric": {
                            "Namespace": "AWS/EC2",
                            "MetricName": name,
                            "Dimensions": [{"Name": "InstanceId", "Value": state.workspace.provider_instance_id}],
                        },
                        "Period": int(PERIOD.total_seconds()),
                        "Stat": stat,
                    },
                    "ReturnData": True,
                }
            )
    return queries


def apply_series(state: WorkspaceIdle, series: dict[str, dict[datetime, float]], start: datetime, end: datetime) -> int:
    """Apply each period not reported yet, oldest first, to `state` (in memory); the number applied."""
    last_end = state.last_observed_at if state.signal_source == SignalSource.CLOUDWATCH else None
    applied = 0
    moment = start
    while moment + PERIOD <= end:
        period_end = moment + PERIOD
        values = [series[prefix].get(moment) for prefix, _, _ in METRICS]
        moment = period_end
        if last_end is not None and period_end <= last_end:
            continue
        if any(value is None for value in values):
            continue  # missing data: whatever comes next starts a new coverage
        cpu, network_in, network_out = values
        if last_end is not None and period_end - last_end > PERIOD:
            state.observed_since = None  # a period was missing since the last report
        sample = {
            "cpu_percent": [round(float(cpu), 2)],
            "network_bytes_per_s": round((float(network_in) + float(network_out)) / PERIOD.total_seconds(), 2),
            "source": SignalSource.CLOUDWATCH,
            "measured_at": period_end.isoformat(),
        }
        for name, value in report_changes(state, source=SignalSource.CLOUDWATCH, at=period_end, sample=sample).items():
            setattr(state, name, value)
        last_end = period_end
        applied += 1
    return applied


def _points(found: dict[str, MetricSeries], prefix: str, index: int) -> dict[datetime, float]:
    series = found.get(f"{prefix}{index}")
    return {stamp.astimezone(UTC): value for stamp, value in series.points} if series else {}


def cloudwatch_fetch(*, cloud_account_id: str, region: str, now: datetime | None = None) -> FetchResult:
    """Fetch and apply the fallback signal for one cloud account's workspaces in one region."""
    now = now or timezone.now()
    result = FetchResult()
    account = CloudAccount.objects.filter(pk=cloud_account_id).first()
    if account is None:
        return result
    states = list(
        candidates(now)
        .filter(workspace__cloud_account_id=cloud_account_id, workspace__region=region)
        .select_related("workspace")
        .order_by("pk")
    )
    if not states:
        return result
    result.workspaces = len(states)
    end = floor_period(now)
    longest = max(timedelta(minutes=state.idle_threshold_minutes) for state in states)
    start = floor_period(end - longest - LOOKBACK)
    provider = AwsProvider(account, region=region)
    changed: dict[str, WorkspaceIdle] = {}
    for offset in range(0, len(states), PER_CALL):
        batch = states[offset : offset + PER_CALL]
        found = provider.metric_data(_queries(batch), start, end)
        result.calls += 1
        for index, state in enumerate(batch):
            series = {prefix: _points(found, prefix, index) for prefix, _, _ in METRICS}
            applied = apply_series(state, series, start, end)
            if applied:
                result.reports += applied
                changed[state.pk] = state
    if changed:
        with transaction.atomic():
            # Only rows whose agent has still not spoken: a heartbeat that arrived meanwhile wins.
            still = set(
                candidates(now)
                .select_for_update(of=("self",))
                .filter(pk__in=list(changed))
                .values_list("pk", flat=True)
            )
            rows = [changed[pk] for pk in sorted(still)]
            WorkspaceIdle.objects.bulk_update(rows, REPORT_FIELDS, batch_size=500)
            result.updated = len(rows)
    logger.info(
        "CloudWatch %s/%s: %d workspaces, %d calls, %d periods, %d rows",
        cloud_account_id,
        region,
        result.workspaces,
        result.calls,
        result.reports,
        result.updated,
    )
    return result
