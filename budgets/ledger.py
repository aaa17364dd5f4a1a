"""The cost ledger: the one service that turns a workspace's state transitions into priced CostEntry rows.

AWS's billing rules, as followed here (https://aws.amazon.com/ec2/pricing/on-demand/ and the EC2 user guide,
"Instance state changes and billing"):
- A Linux instance is billed per second, with a minimum of 60 seconds each time it starts (a "run").
- Billed from pending through running; while stopping only when it is hibernating (AWS bills the time it
  takes to write RAM to the volume); not while stopped, hibernated, shutting down or terminated.
- A launch's billing starts at the instance's LaunchTime as the cloud reports it (not when Carrel was asked).
- EBS volumes are billed per GB-second from creation to deletion, whatever the instance's state, as a share
  of a GB-month: GB × seconds / seconds in that calendar month (UTC), as AWS prorates.

Intervals are closed (written as rows) when the transition that ends them is recorded, and at midnight in the
organization's time zone by a periodic task, so an entry never crosses a day. What has not been closed yet
(from the workspace's `ledger_through` until now, in its current state) is priced on read by `open_cost`.
A workspace's ledger fields change only under its row lock, in the transaction that writes the rows:
re-running a close writes nothing new, and a worker killed in the middle leaves nothing half-written.
"""

import calendar
import zoneinfo
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.db import connection, transaction
from django.db.models import F, Value
from django.db.models.functions import Greatest
from django.utils import timezone

from budgets.models import Allocation, CostDay, CostEntry, Reservation
from workspaces.models import StateTransition, Workspace, WorkspaceState

S = WorkspaceState
HOUR = Decimal(3600)
MINIMUM_RUN_SECONDS = Decimal(60)
AMOUNT_PLACES = Decimal("0.00000001")
QUANTITY_PLACES = Decimal("0.000000000001")
HUNDRED = Decimal(100)

# Compute is billed in these states (LAUNCHING too, but only from the instance's launch: see _compute_start).
COMPUTE_BILLED = frozenset({S.RUNNING, S.STARTING, S.RESUMING, S.HIBERNATING})
# A run is under way in these states; leaving them for any other ends it (the 60-second minimum applies).
IN_RUN = COMPUTE_BILLED | {S.LAUNCHING}
# The daily close leaves these alone: nothing is billed yet, and the launch time is not known yet.
NOT_CLOSED_DAILY = frozenset({S.PENDING, S.LAUNCHING, S.TERMINATED})


def seconds_between(start: datetime, end: datetime) -> Decimal:
    delta = end - start
    return Decimal(delta.days * 86400 + delta.seconds) + Decimal(delta.microseconds) / Decimal(1_000_000)


def zone_of(name: str) -> zoneinfo.ZoneInfo:
    try:
        return zoneinfo.ZoneInfo(name or "UTC")
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return zoneinfo.ZoneInfo("UTC")


def local_midnight_after(moment: datetime, zone: zoneinfo.ZoneInfo) -> datetime:
    """The first midnight in `zone` strictly after `moment` (as an aware UTC datetime)."""
    local = moment.astimezone(zone)
    next_day = local.date() + timedelta(days=1)
    return datetime.combine(next_day, time(0), tzinfo=zone).astimezone(UTC)


def local_midnight_at_or_before(moment: datetime, zone: zoneinfo.ZoneInfo) -> datetime:
    local = moment.astimezone(zone)
    return datetime.combine(local.date(), time(0), tzinfo=zone).astimezone(UTC)


def split_by_day(start: datetime, end: datetime, zone: zoneinfo.ZoneInfo) -> list[tuple[datetime, datetime]]:
    """[start, end] cut at each midnight in `zone`. A zero-length interval stays one piece."""
    pieces = []
    cursor = start
    while True:
        midnight = local_midnight_after(cursor, zone)
        if midnight >= end:
            pieces.append((cursor, end))
            return pieces
        pieces.append((cursor, midnight))
        cursor = midnight


def seconds_in_month(moment: datetime) -> Decimal:
    utc = moment.astimezone(UTC)
    return Decimal(calendar.monthrange(utc.year, utc.month)[1] * 86400)


def month_fraction(start: datetime, end: datetime) -> Decimal:
    """How many months [start, end] is, each calendar month (UTC) counted by its own length, as AWS prorates
    GB-months."""
    total = Decimal(0)
    cursor = start.astimezone(UTC)
    end = end.astimezone(UTC)
    while cursor < end:
        first_of_next = (cursor.replace(day=1, hour=0, minute=0, second=0, microsecond=0) + timedelta(days=32)).replace(
            day=1
        )
        piece_end = min(end, first_of_next)
        total += seconds_between(cursor, piece_end) / seconds_in_month(cursor)
        cursor = piece_end
    return total


@dataclass
class _Writer:
    """The rows one close writes for one workspace, and their total (to lower its reservation)."""

    workspace: Workspace
    zone: zoneinfo.ZoneInfo
    discount: Decimal
    allocation_id: str | None
    transition: StateTransition | None
    rows: list[CostEntry] = field(default_factory=list)

    def net(self, gross: Decimal) -> Decimal:
        return (gross * (HUNDRED - self.discount) / HUNDRED).quantize(AMOUNT_PLACES, rounding=ROUND_HALF_UP)

    def add(
        self, *, kind: str, item: str, start: datetime, end: datetime, quantity: Decimal, unit: str, rate: Decimal
    ) -> CostEntry:
        gross = quantity * rate / HOUR if unit == "seconds" else quantity * rate
        row = CostEntry(
            organization_id=self.workspace.organization_id,
            workspace_id=self.workspace.pk,
            project_id=self.workspace.project_id,
            allocation_id=self.allocation_id,
            member_id=self.workspace.owner_id,
            kind=kind,
            item=item,
            start=start,
            end=end,
            day=start.astimezone(self.zone).date(),
            quantity=quantity.quantize(QUANTITY_PLACES, rounding=ROUND_HALF_UP),
            unit=unit,
            rate=rate,
            discount_percent=self.discount,
            amount=self.net(gross),
            transition=self.transition,
        )
        self.rows.append(row)
        return row

    def compute(self, start: datetime, end: datetime, *, rate: Decimal) -> list[CostEntry]:
        return [
            self.add(
                kind=CostEntry.Kind.COMPUTE,
                item=self.workspace.instance_type,
                start=a,
                end=b,
                quantity=seconds_between(a, b),
                unit="seconds",
                rate=rate,
            )
            for a, b in split_by_day(start, end, self.zone)
            if b > a
        ]

    def storage(self, start: datetime, end: datetime) -> None:
        if end <= start:
            return
        for a, b in split_by_day(start, end, self.zone):
            fraction = month_fraction(a, b)
            for line in self.workspace.storage_lines or []:
                self.add(
                    kind=CostEntry.Kind.STORAGE,
                    item=line["item"],
                    start=a,
                    end=b,
                    quantity=Decimal(line["units"]) * fraction,
                    unit=line["unit"],
                    rate=Decimal(line["rate"]),
                )

    def bump_to_minimum(self, entry: CostEntry, run_seconds: Decimal) -> None:
        """Bill the 60-second minimum of a run that ended sooner, on its last compute row."""
        missing = MINIMUM_RUN_SECONDS - run_seconds
        if missing <= 0:
            return
        entry.quantity = (entry.quantity + missing).quantize(QUANTITY_PLACES, rounding=ROUND_HALF_UP)
        entry.amount = self.net(entry.quantity * entry.rate / HOUR)

    def total(self) -> Decimal:
        return sum((row.amount for row in self.rows), Decimal(0))


def _writer(workspace: Workspace, transition: StateTransition | None) -> _Writer:
    organization = workspace.organization
    allocation_id = Allocation.objects.filter(project_id=workspace.project_id).values_list("pk", flat=True).first()
    return _Writer(
        workspace=workspace,
        zone=zone_of(organization.time_zone),
        discount=organization.discount_percent or Decimal(0),
        allocation_id=allocation_id,
        transition=transition,
    )


def plausible(cloud_time: datetime | None, *, after: datetime | None, before: datetime) -> datetime | None:
    """A time the cloud reported, if it can be right: not after Carrel saw the change and not before the
    interval began (clocks drift; a time outside that is the cloud's clock, and Carrel keeps its own)."""
    if cloud_time is None:
        return None
    if timezone.is_naive(cloud_time):
        cloud_time = timezone.make_aware(cloud_time, UTC)
    if cloud_time > before or (after is not None and cloud_time < after):
        return None
    return cloud_time


def close_for_transition(
    *,
    workspace: Workspace,
    from_state: str,
    to_state: str,
    at: datetime,
    transition: StateTransition,
    launch_time: datetime | None = None,
    new_rate: Decimal | None = None,
) -> dict[str, Any]:
    """Write the interval [ledger_through, at] that `transition` (from_state → to_state, at `at`) ends.

    Call under the workspace's row lock, with `workspace` as locked (its ledger fields fresh). `new_rate` is
    the rate the transition sets: when it reports a start as running (a spot instance's price is known only
    then), the run's pending part is billed at it too. Returns the ledger fields to store on the workspace
    along with its new state."""
    writer = _writer(workspace, transition)
    cursor = workspace.ledger_through
    run_started = workspace.run_started_at
    run_seconds = workspace.run_billed_seconds or Decimal(0)
    volume = workspace.volume_billed
    if cursor is not None:
        compute_start: datetime | None = None
        if from_state in COMPUTE_BILLED:
            compute_start = cursor
        elif from_state == S.LAUNCHING and (to_state == S.RUNNING or workspace.provider_instance_id):
            # Billing begins when the instance was launched (pending), which the cloud reports.
            compute_start = plausible(launch_time, after=cursor, before=at) or cursor
            run_started = compute_start
        elif from_state not in IN_RUN and to_state in COMPUTE_BILLED:
            # Started outside Carrel (the reconciler noticed): billed from the start the cloud reports.
            compute_start = plausible(launch_time, after=cursor, before=at)
            if compute_start is not None:
                run_started, run_seconds = compute_start, Decimal(0)
        if volume:
            writer.storage(cursor, at)
        elif compute_start is not None and from_state == S.LAUNCHING:
            writer.storage(compute_start, at)  # the volume was created with the instance
            volume = True
        rate = workspace.hourly_rate
        if new_rate is not None and to_state == S.RUNNING and from_state in IN_RUN - {S.RUNNING}:
            rate = new_rate
        entries = writer.compute(compute_start, at, rate=rate) if compute_start else []
        run_seconds += sum((entry.quantity for entry in entries), Decimal(0))
        if compute_start is not None and to_state not in IN_RUN:
            if not entries and run_seconds < MINIMUM_RUN_SECONDS:
                entries = [
                    writer.add(
                        kind=CostEntry.Kind.COMPUTE,
                        item=workspace.instance_type,
                        start=at,
                        end=at,
                        quantity=Decimal(0),
                        unit="seconds",
                        rate=workspace.hourly_rate,
                    )
                ]
            if entries:
                writer.bump_to_minimum(entries[-1], run_seconds)
    if to_state in IN_RUN and from_state not in IN_RUN and run_started is workspace.run_started_at:
        run_started, run_seconds = at, Decimal(0)
    run_ended = from_state in IN_RUN and to_state not in IN_RUN
    if to_state not in IN_RUN:
        run_started, run_seconds = None, Decimal(0)
    if to_state == S.TERMINATED or (from_state == S.LAUNCHING and to_state == S.ERROR):
        volume = False
    elif not volume and to_state in COMPUTE_BILLED and workspace.provider_instance_id:
        volume = True  # an instance found running after all (e.g. a failed launch's cleanup did not reach it)
    _save(writer, run_ended=run_ended)
    return {
        "ledger_through": at,
        "run_started_at": run_started,
        "run_billed_seconds": run_seconds,
        "volume_billed": volume,
    }


def _save(writer: _Writer, *, run_ended: bool) -> None:
    """Write the rows, add them to the daily rollup, and let them replace the cost held for the workspace
    (released when its run ends)."""
    CostEntry.objects.bulk_create(writer.rows)
    roll_up(writer.rows)
    held = Reservation.objects.filter(workspace_id=writer.workspace.pk, released_at__isnull=True)
    if run_ended:
        held.update(remaining=Decimal(0), released_at=timezone.now())
    elif writer.rows:
        held.update(remaining=Greatest(F("remaining") - Value(writer.total()), Value(Decimal(0))))


def roll_up(rows: list[CostEntry]) -> None:
    """Add the rows to the running totals: CostDay (project, day, kind) with one upsert that increments in SQL,
    so concurrent writers never lose an addition (keys in a fixed order, so two writers cannot deadlock on them),
    and each workspace's `cost_closed`."""
    by_workspace: dict[str, Decimal] = {}
    for row in rows:
        by_workspace[row.workspace_id] = by_workspace.get(row.workspace_id, Decimal(0)) + row.amount
    for workspace_id, amount in sorted(by_workspace.items()):
        Workspace.objects.filter(pk=workspace_id).update(cost_closed=F("cost_closed") + amount)
    totals: dict[tuple[str, date, str], Decimal] = {}
    for row in rows:
        key = (row.project_id, row.day, row.kind)
        totals[key] = totals.get(key, Decimal(0)) + row.amount
    if not totals:
        return
    table = connection.ops.quote_name(CostDay._meta.db_table)
    values = ", ".join(["(%s, %s, %s, %s)"] * len(totals))
    params: list[Any] = []
    for (project_id, day, kind), amount in sorted(totals.items()):
        params += [project_id, day, kind, amount]
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (project_id, day, kind, amount) VALUES {values} "  # noqa: S608 (no user input)
            f"ON CONFLICT (project_id, day, kind) DO UPDATE SET amount = {table}.amount + EXCLUDED.amount",
            params,
        )


def close_day(*, workspace_id: str, now: datetime | None = None) -> int:
    """Close the workspace's ledger up to the last midnight (organization's time zone) before `now`.
    Returns the number of rows written; 0 when it is closed already (re-running writes nothing)."""
    now = now or timezone.now()
    with transaction.atomic():
        workspace = (
            Workspace.objects.select_for_update(of=("self",))
            .select_related("organization")
            .filter(pk=workspace_id)
            .first()
        )
        if workspace is None or workspace.ledger_through is None or workspace.state in NOT_CLOSED_DAILY:
            return 0
        midnight = local_midnight_at_or_before(now, zone_of(workspace.organization.time_zone))
        if workspace.ledger_through >= midnight:
            return 0
        writer = _writer(workspace, None)
        cursor = workspace.ledger_through
        if workspace.volume_billed:
            writer.storage(cursor, midnight)
        run_seconds = workspace.run_billed_seconds or Decimal(0)
        if workspace.state in COMPUTE_BILLED:
            entries = writer.compute(cursor, midnight, rate=workspace.hourly_rate)
            run_seconds += sum((entry.quantity for entry in entries), Decimal(0))
        _save(writer, run_ended=False)
        Workspace.objects.filter(pk=workspace.pk).update(ledger_through=midnight, run_billed_seconds=run_seconds)
        return len(writer.rows)


def workspaces_to_close(now: datetime | None = None) -> list[str]:
    """Workspaces with an interval open since before the last midnight of their organization's time zone:
    one query per time zone in use."""
    from accounts.models import Organization

    now = now or timezone.now()
    due: list[str] = []
    for zone_name in Organization.objects.values_list("time_zone", flat=True).distinct().order_by():
        midnight = local_midnight_at_or_before(now, zone_of(zone_name))
        due.extend(
            Workspace.objects.exclude(state__in=NOT_CLOSED_DAILY)
            .filter(organization__time_zone=zone_name, ledger_through__lt=midnight)
            .order_by("pk")
            .values_list("pk", flat=True)
        )
    return due


@dataclass(frozen=True)
class OpenCost:
    compute: Decimal
    storage: Decimal

    @property
    def total(self) -> Decimal:
        return self.compute + self.storage


def _open_from(workspace: Workspace, since: datetime | None) -> datetime | None:
    """Where the open interval starts, or starts counting for a period that began at `since`."""
    cursor = workspace.ledger_through
    if cursor is not None and since is not None and since > cursor:
        return since
    return cursor


def open_compute_seconds(workspace: Workspace, *, now: datetime, since: datetime | None = None) -> Decimal:
    """Compute seconds billed since the ledger was last closed (or since `since`, a period's start, if later),
    the run's 60-second minimum included."""
    cursor = _open_from(workspace, since)
    if cursor is None or now <= cursor or workspace.state not in COMPUTE_BILLED:
        return Decimal(0)
    seconds = seconds_between(cursor, now)
    if cursor != workspace.ledger_through:
        return seconds  # the run began before the period: its minimum is not this period's
    return max(seconds, MINIMUM_RUN_SECONDS - (workspace.run_billed_seconds or Decimal(0)))


def open_cost(
    workspace: Workspace,
    *,
    now: datetime | None = None,
    discount: Decimal | None = None,
    since: datetime | None = None,
) -> OpenCost:
    """What the workspace has cost since its ledger was last closed, priced now from fields on its row
    (no query): compute while billed (with the run's 60-second minimum), storage while the volume exists."""
    now = now or timezone.now()
    cursor = _open_from(workspace, since)
    if cursor is None or now <= cursor:
        return OpenCost(Decimal(0), Decimal(0))
    if discount is None:
        discount = workspace.organization.discount_percent or Decimal(0)
    factor = (HUNDRED - discount) / HUNDRED
    compute = open_compute_seconds(workspace, now=now, since=since) * workspace.hourly_rate / HOUR * factor
    storage = Decimal(0)
    if workspace.volume_billed:
        storage = workspace.storage_monthly_rate * month_fraction(cursor, now) * factor
    return OpenCost(compute, storage)
