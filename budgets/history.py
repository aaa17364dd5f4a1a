"""Money reports across projects: the caller's current costs and cost history.

Split from budgets.reports, whose rules apply here too (selectors only; the ledger summed in SQL plus the open
interval of each live workspace; a constant number of queries per report; days are the organization's) and whose
helpers this module shares.
"""

import zoneinfo
from collections import defaultdict
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db.models import F, Q, Sum
from django.db.models.functions import TruncMonth, TruncWeek
from django.utils import timezone

from accounts.models import User
from budgets import ledger
from budgets.models import CostEntry
from budgets.reports import (
    NOT_INCLUDED,
    RESTING,
    TOP,
    S,
    days_between,
    discount_factor,
    month_bounds,
    open_costs,
    percent,
    resting_savings,
    workspaces_active_since,
)
from budgets.selectors import HOUR, ZERO, money
from projects.models import Project
from workspaces.models import Workspace

# --- The caller's costs across projects ---------------------------------------------------------------------------


def caller_zone(user: User) -> zoneinfo.ZoneInfo:
    """The time zone of the caller's organizations when they share one, else UTC (one query)."""
    from accounts.models import Organization

    zones = set(Organization.objects.visible_to(user).values_list("time_zone", flat=True)[:50])
    return ledger.zone_of(zones.pop() if len(zones) == 1 else "UTC")


def costs_current(*, user: User, now: datetime | None = None) -> dict:
    """GET /costs/current: what the caller's visible projects cost per hour right now (compute of billed
    workspaces and their volumes), projected over a day and the month, and this month's hibernation savings.
    Two queries plus one for the time zone."""
    now = now or timezone.now()
    zone = caller_zone(user)
    # Load every workspace live since the earliest local month start any time zone can have (UTC+14).
    earliest = month_bounds(now, zoneinfo.ZoneInfo("UTC"))[0] - timedelta(hours=14)
    workspaces = workspaces_active_since(Q(project__in=Project.objects.visible_to(user)), earliest)
    hours_in_month = ledger.seconds_in_month(now) / HOUR
    compute_total = storage_total = ZERO
    drivers = []
    starts, month_end = {}, {}
    for workspace in workspaces:
        factor = discount_factor(workspace)
        workspace_zone = ledger.zone_of(workspace.organization.time_zone)
        starts[workspace.pk], month_end[workspace.pk] = month_bounds(now, workspace_zone)
        compute = workspace.hourly_rate * factor if workspace.state in ledger.COMPUTE_BILLED else ZERO
        storage = (
            workspace.storage_monthly_rate * factor / hours_in_month
            if workspace.volume_billed and workspace.state != S.TERMINATED
            else ZERO
        )
        compute_total += compute
        storage_total += storage
        if compute + storage > 0:
            drivers.append((compute + storage, workspace))
    hourly = compute_total + storage_total
    savings = resting_savings(workspaces, starts, now)
    projected_savings = sum(savings.values(), ZERO) + sum(
        (
            w.hourly_rate * discount_factor(w) * ledger.seconds_between(now, month_end[w.pk]) / HOUR
            for w in workspaces
            if w.state in RESTING
        ),
        ZERO,
    )
    local_month = month_bounds(now, zone)
    drivers.sort(key=lambda item: (-item[0], item[1].pk))
    return {
        "total_current_hourly": money(hourly),
        "total_daily_projection": money(hourly * 24),
        "total_monthly_projection": money(hourly * 24 * days_between(*local_month)),
        "cost_breakdown": {
            "instances": money(compute_total),
            "ebs_storage": money(storage_total),
            "efs_storage": money(ZERO),
        },
        "hibernation_savings": {
            "current_month": money(sum(savings.values(), ZERO)),
            "projected_monthly": money(projected_savings),
        },
        "top_cost_drivers": [
            {
                "resource": workspace.name,
                "workspace_id": workspace.pk,
                "project_id": workspace.project_id,
                "hourly_cost": money(cost),
                "percentage": percent(cost, hourly),
            }
            for cost, workspace in drivers[:TOP]
        ],
        "not_included": [*NOT_INCLUDED, "efs_storage"],
    }


# --- History ---------------------------------------------------------------------------------------------------------

GRANULARITIES = ("daily", "weekly", "monthly")


def bucket_of(day: date, granularity: str) -> date:
    if granularity == "weekly":
        return day - timedelta(days=day.weekday())  # ISO weeks begin on Monday
    if granularity == "monthly":
        return day.replace(day=1)
    return day


def bucket_end(first: date, granularity: str) -> date:
    if granularity == "weekly":
        return first + timedelta(days=6)
    if granularity == "monthly":
        return (first + timedelta(days=32)).replace(day=1) - timedelta(days=1)
    return first


def _group_names(group_by: str, ids: set) -> dict:
    ids = {pk for pk in ids if pk is not None}
    if not ids:
        return {}
    if group_by == "project":
        return dict(Project.objects.filter(pk__in=ids).values_list("pk", "name"))
    if group_by == "workspace":
        return dict(Workspace.objects.filter(pk__in=ids).values_list("pk", "name"))
    return dict(User.objects.filter(pk__in=ids).values_list("pk", "email"))


def _trends(buckets: list[dict], names: dict) -> dict:
    """The second half of the range against the first: direction, change, and the group that moved most."""
    half = len(buckets) // 2
    if half == 0:
        return {"trend_direction": "stable", "percentage_change": None, "primary_driver": None}
    first, second = buckets[:half], buckets[len(buckets) - half :]
    before = sum((b["cost"] for b in first), ZERO)
    after = sum((b["cost"] for b in second), ZERO)
    change = percent(after - before, before)
    if before == after or (change is not None and abs(change) < 5):
        direction = "stable"
    else:
        direction = "increasing" if after > before else "decreasing"
    moved: dict = defaultdict(Decimal)
    for sign, part in ((-1, first), (1, second)):
        for bucket in part:
            for item in bucket["breakdown"]:
                moved[item["id"]] += sign * item["cost"]
    driver = None
    if moved and direction != "stable":
        key = max(moved, key=lambda pk: (moved[pk] if direction == "increasing" else -moved[pk], str(pk)))
        driver = f"{names.get(key, key)} ({money(moved[key]):+f})"
    return {"trend_direction": direction, "percentage_change": change, "primary_driver": driver}


def cost_history(
    *,
    user: User,
    start: date,
    end: date,
    granularity: str = "daily",
    group_by: str = "project",
    project: Project | None = None,
    now: datetime | None = None,
) -> dict:
    """GET /costs/history: the ledger between two local dates (inclusive), summed per day, ISO week or
    month, each bucket split by project, workspace or member; today's bucket includes what is still open.
    Five queries, whatever the range."""
    now = now or timezone.now()
    # The visible projects' ids first: with the ids in the query, the planner reads the date range once
    # (a subquery in the filter made it probe every project's rows through the index, page by page).
    project_ids = [project.pk] if project else list(Project.objects.visible_to(user).values_list("pk", flat=True))
    sums: dict[date, dict] = defaultdict(lambda: defaultdict(Decimal))
    seen: dict[date, set] = defaultdict(set)  # workspaces with a cost, per bucket
    truncated = {"daily": F("day"), "weekly": TruncWeek("day"), "monthly": TruncMonth("day")}[granularity]
    # Summed per workspace (and member, who may differ from today's owner), then grouped here: few, cheap
    # keys let PostgreSQL hash the rows instead of sorting them.
    keys = ("bucket", "workspace_id", "member_id") if group_by == "member" else ("bucket", "workspace_id")
    rows = list(
        CostEntry.objects.filter(project_id__in=project_ids, day__gte=start, day__lte=end)
        .annotate(bucket=truncated)
        .values_list(*keys)
        .annotate(cost=Sum("amount"))
        .order_by()
    )
    project_of = dict(
        Workspace.objects.filter(pk__in={row[1] for row in rows}).values_list("pk", "project_id")
        if group_by == "project"
        else ()
    )
    for first, workspace_id, *member, cost in rows:
        if isinstance(first, datetime):
            first = first.date()
        first = bucket_of(first, granularity)
        group = member[0] if member else project_of.get(workspace_id) if group_by == "project" else workspace_id
        sums[first][group] += cost
        seen[first].add(workspace_id)
    live = workspaces_active_since(Q(project_id__in=project_ids) & ~Q(state=S.TERMINATED), now)
    for workspace in live:
        if open_costs([workspace], now).get(workspace.pk) is None:
            continue
        zone = ledger.zone_of(workspace.organization.time_zone)
        group = {"project": workspace.project_id, "workspace": workspace.pk, "member": workspace.owner_id}[group_by]
        # The open interval may span days the midnight close has not reached yet: each day gets its own part.
        assert workspace.ledger_through is not None  # open_costs skips workspaces without one
        for piece_start, piece_end in ledger.split_by_day(workspace.ledger_through, now, zone):
            day = piece_start.astimezone(zone).date()
            if not start <= day <= end:
                continue
            part = ledger.open_cost(workspace, now=piece_end, since=piece_start).total
            if part:
                sums[bucket_of(day, granularity)][group] += part
                seen[bucket_of(day, granularity)].add(workspace.pk)
    names = _group_names(group_by, {group for groups in sums.values() for group in groups})
    buckets: list[dict[str, Any]] = []
    first = bucket_of(start, granularity)
    while first <= end:
        groups = sums.get(first, {})
        buckets.append(
            {
                "date": first,
                "end_date": bucket_end(first, granularity),
                "cost": sum(groups.values(), ZERO),
                "instances": len(seen.get(first, ())),
                "breakdown": sorted(
                    ({"id": str(pk), "name": names.get(pk, str(pk)), "cost": cost} for pk, cost in groups.items()),
                    key=lambda item: (-item["cost"], item["id"]),
                ),
            }
        )
        first = bucket_end(first, granularity) + timedelta(days=1)
    total = sum((bucket["cost"] for bucket in buckets), ZERO)
    trends = _trends(buckets, {str(pk): name for pk, name in names.items()})
    for bucket in buckets:
        bucket["cost"] = money(bucket["cost"])
        for item in bucket["breakdown"]:
            item["cost"] = money(item["cost"])
    return {
        "period": f"{(end - start).days + 1}_days",
        "start_date": start,
        "end_date": end,
        "granularity": granularity,
        "group_by": group_by,
        "project_id": project.pk if project else None,
        "total_cost": money(total),
        "daily_costs": buckets,
        "cost_trends": trends,
        "not_included": NOT_INCLUDED,
    }
