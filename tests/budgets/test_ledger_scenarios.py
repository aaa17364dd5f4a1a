"""The ledger against hand computations: one workspace's life on the moto server with a controlled clock.

Every figure below is computed by hand from AWS's rules (per second, 60 s minimum per start, hibernation's
stopping billed, storage per GB-second across stopped time, the new type's rate after a resize)."""

from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

import pytest
import time_machine

from budgets import ledger
from budgets.models import CostEntry, Reservation
from budgets.selectors import workspace_costs
from workspaces import services
from workspaces.models import StateTransition, Workspace

CENT = Decimal("0.01")
MARCH_SECONDS = Decimal(31 * 86400)


def cents(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def ledger_total(workspace: Workspace, kind: str | None = None) -> Decimal:
    rows = CostEntry.objects.filter(workspace=workspace)
    if kind:
        rows = rows.filter(kind=kind)
    return sum((row.amount for row in rows), Decimal(0))


class Clock:
    def __init__(self, traveller, start: datetime) -> None:
        self.traveller, self.now = traveller, start

    def advance(self, seconds: float) -> datetime:
        self.traveller.shift(timedelta(seconds=seconds))
        self.now += timedelta(seconds=seconds)
        return self.now


@pytest.fixture
def clock():
    start = datetime(2027, 3, 2, 9, 0, 0, tzinfo=UTC)
    with time_machine.travel(start, tick=False) as traveller:
        yield Clock(traveller, start)


def drive(workspace: Workspace, action: str) -> Workspace:
    services.workspace_drive(workspace_id=workspace.pk, action=action)
    return Workspace.objects.get(pk=workspace.pk)


def act(owner, workspace: Workspace, action: str) -> Workspace:
    services.workspace_act(actor=owner, workspace=workspace, action=action)
    return Workspace.objects.get(pk=workspace.pk)


def test_it_bills_a_workspaces_life_to_the_cent(clock, owner, project, account):
    # t0: the launch is asked for; 20 s later the provider reports it running.
    launched = services.workspace_launch(
        actor=owner,
        project=project,
        name="scenario",
        template="Python Machine Learning",
        size="S",
        storage={"ebs_volume_size": 100, "ebs_volume_type": "gp3"},
    )
    workspace = launched.workspace
    assert (workspace.instance_type, workspace.root_volume_gb, workspace.hourly_rate) == (
        "c5.xlarge",
        100,
        Decimal("0.1700"),
    )
    clock.advance(20)
    services.workspace_provision(job_id=launched.job.pk)
    workspace = Workspace.objects.get(pk=workspace.pk)
    assert workspace.state == "running"

    clock.advance(2 * 3600)  # two hours running
    workspace = act(owner, workspace, "hibernate")
    clock.advance(40)  # RAM written to the volume: billed (AWS bills a hibernating instance while stopping)
    workspace = drive(workspace, "hibernate")
    assert workspace.state == "hibernated"
    clock.advance(3600)  # an hour hibernated: storage only
    workspace = act(owner, workspace, "resume")
    clock.advance(10)
    workspace = drive(workspace, "resume")
    assert workspace.state == "running"
    clock.advance(20)  # a 30-second run in all (10 s resuming + 20 s running): billed as 60 s
    workspace = act(owner, workspace, "stop")
    clock.advance(15)  # stopping without hibernation: not billed
    workspace = drive(workspace, "stop")
    assert workspace.state == "stopped"
    clock.advance(600)
    result = services.workspace_update(actor=owner, workspace=workspace, instance_type="c5.2xlarge")
    assert result.resize_job is not None
    clock.advance(5)
    services.workspace_resize_apply(job_id=result.resize_job.pk)
    workspace = Workspace.objects.get(pk=workspace.pk)
    assert (workspace.state, workspace.instance_type) == ("stopped", "c5.2xlarge")
    assert workspace.hourly_rate == Decimal("0.34")
    clock.advance(1800)
    workspace = act(owner, workspace, "start")
    clock.advance(20)
    workspace = drive(workspace, "start")
    assert workspace.state == "running"
    clock.advance(3600)
    services.workspace_act(actor=owner, workspace=workspace, action="terminate")
    clock.advance(30)  # shutting down: not billed for compute; the volume lives until terminated
    workspace = drive(Workspace.objects.get(pk=workspace.pk), "terminate")
    assert workspace.state == "terminated"

    # By hand. Compute: run 1 from the launch request (the moto server's LaunchTime is its own wall clock, not
    # this test's, so the ledger keeps Carrel's observation) through 20 s pending, 2 h running and 40 s
    # hibernating; run 2, 30 s, billed as the 60 s minimum; run 3 after the resize at c5.2xlarge's rate.
    run_1 = Decimal(20 + 7200 + 40)
    run_2 = Decimal(60)
    run_3 = Decimal(20 + 3600)
    compute = (run_1 + run_2) * Decimal("0.17") / 3600 + run_3 * Decimal("0.34") / 3600
    # Storage: 100 GB of gp3 at $0.08 per GB-month from the launch to the termination, stopped time included,
    # prorated over March's 31 days as AWS does.
    lifetime = Decimal(20 + 7200 + 40 + 3600 + 10 + 20 + 15 + 600 + 5 + 1800 + 20 + 3600 + 30)
    storage = Decimal(100) * Decimal("0.08") * lifetime / MARCH_SECONDS
    assert cents(ledger_total(workspace, "compute")) == cents(compute) == Decimal("0.69")
    assert cents(ledger_total(workspace, "storage")) == cents(storage) == Decimal("0.05")
    assert cents(ledger_total(workspace)) == cents(compute + storage)
    # Exact to the ledger's 8 places, not only to the cent.
    assert abs(ledger_total(workspace, "compute") - compute) < Decimal("0.00000005") * 6
    seconds = {
        row.item: row.quantity for row in CostEntry.objects.filter(workspace=workspace, kind="compute").order_by()
    }
    assert set(seconds) == {"c5.xlarge", "c5.2xlarge"}
    compute_rows = list(CostEntry.objects.filter(workspace=workspace, kind="compute").order_by("start"))
    assert [row.quantity for row in compute_rows] == [
        Decimal(20),  # launching, closed when running was reported
        Decimal(7200),
        Decimal(40),  # hibernating
        Decimal(10),  # resuming
        Decimal(50),  # 20 s running + the minimum's 30 s, on the run's last row
        Decimal(20),  # starting, at the new type's rate
        Decimal(3600),
    ]
    assert {row.rate for row in compute_rows[-2:]} == {Decimal("0.34")}
    # Closed: nothing is open any more, and what the API reads equals the ledger.
    workspace = Workspace.objects.select_related("organization").get(pk=workspace.pk)
    assert ledger.open_cost(workspace).total == 0
    assert workspace_costs([workspace])[workspace.pk] == ledger_total(workspace)
    # Every row was written by a transition's recording, which keeps when Carrel saw it.
    assert not CostEntry.objects.filter(workspace=workspace, transition__isnull=True).exists()
    assert StateTransition.objects.filter(workspace=workspace, effective_at__isnull=True).count() == 0


def test_it_prices_the_open_interval_on_read_and_writes_it_when_closed(clock, owner, project, account):
    launched = services.workspace_launch(
        actor=owner, project=project, name="open-box", template="Python Machine Learning", size="S"
    )
    clock.advance(10)
    services.workspace_provision(job_id=launched.job.pk)
    clock.advance(3600)
    workspace = Workspace.objects.select_related("organization").get(pk=launched.workspace.pk)
    closed = ledger_total(workspace)
    open_part = ledger.open_cost(workspace)
    assert open_part.compute == Decimal(3600) * Decimal("0.17") / 3600
    assert workspace_costs([workspace])[workspace.pk] == closed + open_part.total
    act(owner, workspace, "stop")
    assert cents(ledger_total(workspace, "compute")) == cents(Decimal(3610) * Decimal("0.17") / 3600)
    assert not Reservation.objects.filter(workspace=workspace, released_at__isnull=True).exists()


def test_it_applies_the_organizations_negotiated_discount(clock, owner, project, account, org):
    org.discount_percent = Decimal("12.5")
    org.save()
    launched = services.workspace_launch(
        actor=owner, project=project, name="discounted", template="Python Machine Learning", size="S"
    )
    services.workspace_provision(job_id=launched.job.pk)
    clock.advance(3600)
    workspace = act(owner, Workspace.objects.get(pk=launched.workspace.pk), "stop")
    compute_rows = CostEntry.objects.filter(workspace=workspace, kind="compute")
    assert sum(row.amount for row in compute_rows) == Decimal("0.17") * Decimal("0.875")
    assert {row.discount_percent for row in compute_rows} == {Decimal("12.5")}


def test_a_spot_workspace_is_billed_at_the_spot_price_ec2_quotes_when_it_starts(clock, owner, project, account):
    launched = services.workspace_launch(
        actor=owner, project=project, name="spot-box", template="Python Machine Learning", size="S", spot=True
    )
    assert launched.workspace.hourly_rate == Decimal("0.1700")  # on-demand until the price is known: an upper bound
    services.workspace_provision(job_id=launched.job.pk)
    workspace = Workspace.objects.select_related("cloud_account").get(pk=launched.workspace.pk)
    quoted = services.provider_for(workspace).spot_price("c5.xlarge", None)
    assert quoted is not None
    zone_price = workspace.hourly_rate
    assert zone_price != Decimal("0.1700")
    running = workspace.transitions.get(to_state="running")
    assert running.hourly_rate == zone_price  # recorded on the transition
    clock.advance(3600)
    workspace = act(owner, workspace, "stop")
    assert {row.rate for row in CostEntry.objects.filter(workspace=workspace, kind="compute")} == {zone_price}


def test_it_prices_provisioned_iops_and_throughput_above_gp3s_baseline(owner_client, project, account):
    from tests.conftest import assert_error

    body = {"name": "fast-disk", "template": "Python Machine Learning", "size": "S", "project": project.id}
    storage = {"ebs_volume_size": 100, "ebs_volume_type": "gp3", "iops": 4000, "throughput": 250}
    response = owner_client.post("/api/v1/instances/launch", {**body, "storage": storage}, format="json")
    assert response.status_code == 202, response.content
    workspace = Workspace.objects.get(name="fast-disk")
    assert workspace.storage_lines == [
        {"item": "gp3 storage", "units": "100", "unit": "GB-month", "rate": "0.08"},
        {"item": "gp3 iops", "units": "1000", "unit": "IOPS-month", "rate": "0.005"},
        {"item": "gp3 throughput", "units": "125", "unit": "MBps-month", "rate": "0.04"},
    ]
    assert workspace.storage_monthly_rate == Decimal("8") + Decimal("5") + Decimal("5")
    for bad, field in (
        ({"ebs_volume_type": "gp2", "iops": 4000}, "iops"),
        ({"ebs_volume_type": "io2"}, "iops"),
        ({"ebs_volume_type": "gp3", "iops": 20000}, "iops"),
        ({"ebs_volume_type": "io2", "iops": 5000, "throughput": 300}, "throughput"),
    ):
        error = assert_error(
            owner_client.post("/api/v1/instances/launch", {**body, "name": "bad", "storage": bad}, format="json"), 400
        )
        assert field in str(error.get("fields")), (bad, error)
