"""Budget enforcement: reservations at launch and start, the thresholds (once per period), the daily digest."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine
from django.core import mail

from audit.models import AuditEvent
from budgets import tasks
from budgets.models import Allocation, BudgetAlert, BudgetPool, CostEntry, MemberCap, Reservation
from budgets.services import digests, enforcement, reservations
from platform_site.errors import PermissionDenied, ValidationFailed
from projects.models import ProjectMember, ProjectRole
from tests.conftest import add_org_member, assert_error, bearer_client, make_user
from tests.support import record_cost
from workspaces import services
from workspaces.models import Workspace

LAUNCH = {"name": "box", "template": "Python Machine Learning", "size": "S"}  # c5.xlarge, 0.17 USD/h


def make_pool(org, *, total="10000", period=BudgetPool.Period.PROJECT, **fields) -> BudgetPool:
    return BudgetPool.objects.create(
        organization=org,
        name=fields.pop("name", "Grant"),
        total_amount=Decimal(total),
        period=period,
        start_date=fields.pop("start_date", datetime(2020, 1, 1, tzinfo=UTC)),
        end_date=fields.pop("end_date", datetime(2040, 1, 1, tzinfo=UTC)),
        **fields,
    )


def fund(project, amount, *, pool=None, **thresholds) -> Allocation:
    pool = pool or make_pool(project.organization)
    return Allocation.objects.create(pool=pool, project=project, amount=Decimal(amount), **thresholds)


def estimate_of(workspace: Workspace, hours: str = "8") -> Decimal:
    """What a launch of this workspace reserves (8 hours of compute and storage)."""
    return Reservation.objects.get(workspace=workspace).amount


def spend(project, amount, *, owner, at=None, name="past") -> CostEntry:
    """A closed ledger row of `amount` on a stopped workspace of `owner` (what a past run cost)."""
    at = at or datetime.now(UTC) - timedelta(hours=1)
    workspace, _ = Workspace.objects.get_or_create(
        organization=project.organization,
        project=project,
        name=f"{name}-{project.pk[-6:]}-{owner.pk}",
        defaults={"owner": owner, "state": "stopped"},
    )
    return record_cost(
        organization=project.organization,
        workspace=workspace,
        project=project,
        member=owner,
        kind="compute",
        item="c5.xlarge",
        start=at,
        end=at + timedelta(seconds=1),
        day=at.date(),
        quantity=Decimal(1),
        unit="seconds",
        rate=Decimal("0.17"),
        amount=Decimal(amount),
    )


# --- Reservations at launch and start -------------------------------------------------------------


def test_it_reserves_the_estimated_cost_of_a_launch(owner, project, account, settings):
    allocation = fund(project, "100")
    result = services.workspace_launch(actor=owner, project=project, **LAUNCH)
    reservation = Reservation.objects.get(workspace=result.workspace)
    workspace = result.workspace
    # 8 hours (CARREL_BUDGET_RESERVATION_HOURS) of compute and of the volume's storage.
    hours = Decimal(settings.CARREL_BUDGET_RESERVATION_HOURS)
    assert reservation.amount > workspace.hourly_rate * hours
    assert reservation.amount < workspace.hourly_rate * hours + workspace.storage_monthly_rate * Decimal("0.02")
    assert (reservation.allocation, reservation.user, reservation.remaining) == (allocation, owner, reservation.amount)
    audit = AuditEvent.objects.get(action="workspace.launch", target_id=workspace.pk)
    assert audit.metadata["reserved"] == str(reservation.amount)


def test_it_reserves_the_configured_horizon(owner, project, account, settings):
    fund(project, "100")
    settings.CARREL_BUDGET_RESERVATION_HOURS = 2
    workspace = services.workspace_launch(actor=owner, project=project, **LAUNCH).workspace
    assert Decimal("0.34") < estimate_of(workspace) < Decimal("0.35")  # 2 h of c5.xlarge and a little storage


def test_a_project_without_an_allocation_is_not_limited(owner, project, account):
    result = services.workspace_launch(actor=owner, project=project, **LAUNCH)
    assert result.workspace.state == "launching"
    assert not Reservation.objects.exists()


def test_it_refuses_a_launch_past_the_limit_with_the_numbers(owner, owner_client, project, account):
    fund(project, "10", prevent_launch_threshold=Decimal("0.9"))
    spend(project, "7.70", owner=owner)
    response = owner_client.post("/api/v1/instances/launch", {**LAUNCH, "project": project.pk}, format="json")
    error = assert_error(response, 403, "BUDGET_EXCEEDED")
    assert error["allocated"] == 10 and error["limit"] == 9 and error["threshold"] == 0.9
    assert Decimal(str(error["spent"])) == Decimal("7.7") and error["reserved"] == 0
    assert Decimal("1.36") < Decimal(str(error["estimate"])) < Decimal("1.4")
    assert "Stop or terminate" in error["remediation"]
    assert not Workspace.objects.filter(name="box").exists() and not Reservation.objects.exists()


def test_held_reservations_count_against_the_allocation(owner, project, account):
    fund(project, "3")  # no prevent_launch_threshold: launches stop at 100%; one launch holds about 1.37
    services.workspace_launch(actor=owner, project=project, **{**LAUNCH, "name": "one"})
    services.workspace_launch(actor=owner, project=project, **{**LAUNCH, "name": "two"})
    with pytest.raises(PermissionDenied) as refused:
        services.workspace_launch(actor=owner, project=project, **{**LAUNCH, "name": "three"})
    assert refused.value.code == "BUDGET_EXCEEDED"
    assert refused.value.extra["reserved"] == sum(r.amount for r in Reservation.objects.all()).quantize(
        Decimal("0.0001")
    )


def test_the_budget_field_must_name_the_projects_pool(owner, project, account):
    allocation = fund(project, "100")
    for budget in (allocation.pool_id, allocation.pool.name):
        services.workspace_launch(actor=owner, project=project, budget=budget, **{**LAUNCH, "name": f"b{len(budget)}"})
    with pytest.raises(ValidationFailed) as refused:
        services.workspace_launch(actor=owner, project=project, budget="Someone else's grant", **LAUNCH)
    assert "budget" in refused.value.fields


def test_the_budget_field_is_refused_for_a_project_without_allocation(owner, project, account):
    with pytest.raises(ValidationFailed) as refused:
        services.workspace_launch(actor=owner, project=project, budget="Grant", **LAUNCH)
    assert "budget" in refused.value.fields


def test_a_members_cap_refuses_their_launch_not_the_others(owner, project, account):
    student = make_user("student@lab-a.example")
    add_org_member(project.organization, student)
    ProjectMember.objects.create(project=project, user=student, role=ProjectRole.MEMBER)
    allocation = fund(project, "100")
    MemberCap.objects.create(allocation=allocation, user=student, amount=Decimal("2"))
    spend(project, "1", owner=student)
    response = bearer_client(student).post("/api/v1/instances/launch", {**LAUNCH, "project": project.pk}, format="json")
    error = assert_error(response, 403, "MEMBER_CAP_EXCEEDED")
    assert error["cap"] == 2 and error["spent"] == 1
    services.workspace_launch(actor=owner, project=project, **LAUNCH)  # the owner has no cap


def test_start_and_resume_reserve_and_are_refused_past_the_limit(owner, owner_client, project, account, eager_tasks):
    allocation = fund(project, "100")
    launched = services.workspace_launch(actor=owner, project=project, **LAUNCH)
    services.workspace_provision(job_id=launched.job.pk)
    workspace = Workspace.objects.get(pk=launched.workspace.pk)
    services.workspace_act(actor=owner, workspace=workspace, action="stop")
    services.workspace_drive(workspace_id=workspace.pk, action="stop")
    assert not Reservation.objects.filter(released_at__isnull=True).exists()  # the run ended: released

    allocation.amount = Decimal("1")
    allocation.save()
    response = owner_client.post(f"/api/v1/instances/{workspace.pk}/start", format="json")
    assert_error(response, 403, "BUDGET_EXCEEDED")
    assert Workspace.objects.get(pk=workspace.pk).state == "stopped"

    allocation.amount = Decimal("100")
    allocation.save()
    workspace = Workspace.objects.get(pk=workspace.pk)
    services.workspace_act(actor=owner, workspace=workspace, action="start")
    held = Reservation.objects.get(workspace=workspace, released_at__isnull=True)
    assert held.reason == "start" and held.user == owner
    audit = AuditEvent.objects.get(action="workspace.start", target_id=workspace.pk)
    assert audit.metadata["reserved"] == str(held.amount)


def test_a_start_reserves_the_remaining_ttl(owner, project, account):
    fund(project, "100")
    launched = services.workspace_launch(actor=owner, project=project, **LAUNCH)
    services.workspace_provision(job_id=launched.job.pk)
    workspace = Workspace.objects.get(pk=launched.workspace.pk)
    services.workspace_act(actor=owner, workspace=workspace, action="stop")
    services.workspace_drive(workspace_id=workspace.pk, action="stop")
    Workspace.objects.filter(pk=workspace.pk).update(expires_at=datetime.now(UTC) + timedelta(hours=1))
    workspace = Workspace.objects.get(pk=workspace.pk)
    services.workspace_act(actor=owner, workspace=workspace, action="start")
    held = Reservation.objects.get(workspace=workspace, released_at__isnull=True)
    assert Decimal("0.16") < held.amount < Decimal("0.18")  # one hour of c5.xlarge and its storage


def test_reservations_shrink_as_real_cost_replaces_them_and_are_released_when_the_run_ends(owner, project, account):
    start = datetime(2027, 3, 2, 9, 0, tzinfo=UTC)
    fund(project, "100")
    with time_machine.travel(start, tick=False) as clock:
        launched = services.workspace_launch(actor=owner, project=project, **LAUNCH)
        services.workspace_provision(job_id=launched.job.pk)
        reservation = Reservation.objects.get(workspace=launched.workspace)
        held_at_launch = reservation.remaining
        workspace = Workspace.objects.select_related("organization").get(pk=launched.workspace.pk)
        clock.shift(timedelta(hours=2))
        # Open cost replaces the reservation on read: committed stays what was reserved, not twice the run.
        allocation = Allocation.objects.select_related("pool", "project__organization").get(project=project)
        state = reservations.committed(allocation=allocation, member_id=owner.pk, now=datetime.now(UTC))
        assert state.spent + state.reserved == pytest.approx(held_at_launch, abs=Decimal("0.000001"))
        assert state.spent > Decimal("0.34")

        # Written cost lowers what is held (the daily close at the organization's midnight).
        clock.shift(timedelta(hours=20))
        from budgets import ledger

        assert ledger.close_day(workspace_id=workspace.pk) > 0
        reservation.refresh_from_db()
        written = sum(row.amount for row in CostEntry.objects.filter(workspace=workspace))
        assert reservation.remaining == max(held_at_launch - written, Decimal(0))
        assert reservation.released_at is None

        services.workspace_act(actor=owner, workspace=Workspace.objects.get(pk=workspace.pk), action="stop")
        reservation.refresh_from_db()
        assert reservation.remaining == 0 and reservation.released_at is not None


# --- Thresholds -----------------------------------------------------------------------------------


@pytest.fixture
def admin_of_project(project):
    admin = make_user("pi-admin@lab-a.example")
    add_org_member(project.organization, admin)
    ProjectMember.objects.create(project=project, user=admin, role=ProjectRole.ADMIN)
    return admin


def run_thresholds(capture, now=None):
    with capture(execute=True):
        return enforcement.apply_thresholds(now=now)


def test_each_alert_threshold_fires_once_per_period(
    owner, project, admin_of_project, eager_tasks, django_capture_on_commit_callbacks
):
    allocation = fund(project, "100", alert_thresholds=["0.5", "0.8", "0.9"])
    spend(project, "60", owner=owner)
    fired = run_thresholds(django_capture_on_commit_callbacks)
    assert [(a.kind, a.threshold) for a in fired] == [("threshold", Decimal("0.5"))]
    assert sorted(m.to[0] for m in mail.outbox) == sorted([admin_of_project.email, owner.email])
    assert "passed 50%" in mail.outbox[0].subject and "60.0000 USD of 100.0000 USD" in mail.outbox[0].body
    assert run_thresholds(django_capture_on_commit_callbacks) == []  # the same period: nothing again
    assert len(mail.outbox) == 2

    spend(project, "25", owner=owner, name="more")
    fired = run_thresholds(django_capture_on_commit_callbacks)
    assert [(a.kind, a.threshold) for a in fired] == [("threshold", Decimal("0.8"))]
    assert run_thresholds(django_capture_on_commit_callbacks) == []
    assert BudgetAlert.objects.filter(allocation=allocation, kind="threshold").count() == 2
    assert len(mail.outbox) == 4
    assert AuditEvent.objects.filter(action="budget.alert", actor_label="system").count() == 2
    assert all(alert.notified_at for alert in BudgetAlert.objects.all())


def test_a_monthly_allocation_fires_again_the_next_month(
    owner, project, eager_tasks, django_capture_on_commit_callbacks
):
    pool = make_pool(project.organization, period=BudgetPool.Period.MONTHLY)
    fund(project, "10", pool=pool, alert_thresholds=["0.5"], prevent_launch_threshold=Decimal("0.9"))
    march = datetime(2027, 3, 15, 12, tzinfo=UTC)
    with time_machine.travel(march, tick=False):
        spend(project, "9.5", owner=owner)
        first = run_thresholds(django_capture_on_commit_callbacks)
        assert sorted(a.kind for a in first) == ["prevent_launch", "threshold"]
        assert run_thresholds(django_capture_on_commit_callbacks) == []
    prevent = BudgetAlert.objects.get(kind="prevent_launch")
    assert "launches and starts are refused" in prevent.message
    # The org's time zone is UTC: March's period starts at its first midnight.
    assert prevent.period_start == datetime(2027, 3, 1, tzinfo=UTC)
    with time_machine.travel(datetime(2027, 4, 2, 12, tzinfo=UTC), tick=False):
        assert run_thresholds(django_capture_on_commit_callbacks) == []  # April has spent nothing yet
        spend(project, "5", owner=owner, name="april")
        again = run_thresholds(django_capture_on_commit_callbacks)
        assert [(a.kind, a.period_start) for a in again] == [("threshold", datetime(2027, 4, 1, tzinfo=UTC))]
    assert AuditEvent.objects.filter(action="budget.prevent_launch").count() == 1
    assert AuditEvent.objects.filter(action="budget.alert").count() == 2
    assert len(mail.outbox) == 3


def test_the_month_is_the_organizations(owner, org, project, eager_tasks, django_capture_on_commit_callbacks):
    org.time_zone = "America/New_York"
    org.save()
    pool = make_pool(org, period=BudgetPool.Period.MONTHLY)
    fund(project, "10", pool=pool, alert_thresholds=["0.5"])
    # 1 April 02:00 UTC is still 31 March in New York: March's spend.
    with time_machine.travel(datetime(2027, 4, 1, 2, tzinfo=UTC), tick=False):
        spend(project, "6", owner=owner, at=datetime(2027, 3, 31, 12, tzinfo=UTC))
        fired = run_thresholds(django_capture_on_commit_callbacks)
    assert [a.period_start for a in fired] == [datetime(2027, 3, 1, 5, tzinfo=UTC)]  # midnight EST


def test_auto_hibernate_hibernates_and_stops_what_cannot_hibernate(
    owner, project, account, eager_tasks, django_capture_on_commit_callbacks, ec2
):
    allocation = fund(project, "100", auto_hibernate_threshold=Decimal("0.9"))
    boxes = []
    for name in ("able", "unable"):
        with django_capture_on_commit_callbacks(execute=True):
            launched = services.workspace_launch(actor=owner, project=project, **{**LAUNCH, "name": name})
        boxes.append(Workspace.objects.get(pk=launched.workspace.pk))
    assert {w.state for w in boxes} == {"running"}
    Workspace.objects.filter(name="unable").update(hibernation_capable=False)
    spend(project, "95", owner=owner)
    fired = run_thresholds(django_capture_on_commit_callbacks)
    assert [a.kind for a in fired] == ["auto_hibernate"]
    states = dict(Workspace.objects.filter(name__in=["able", "unable"]).values_list("name", "state"))
    assert states == {"able": "hibernated", "unable": "stopped"}
    alert = fired[0]
    alert.refresh_from_db()
    assert [e["name"] for e in alert.details["hibernated"]] == ["able"]
    assert [e["name"] for e in alert.details["stopped"]] == ["unable"]
    assert "cannot hibernate" in alert.message and "unable" in alert.message
    assert "c5.xlarge was not launched with hibernation configured" in alert.details["stopped"][0]["why"]
    assert AuditEvent.objects.filter(action="budget.auto_hibernate", actor_label="system").count() == 1
    assert AuditEvent.objects.filter(action="workspace.hibernate", actor_label="system").count() == 1
    assert AuditEvent.objects.filter(action="workspace.stop", actor_label="system").count() == 1
    assert [m.to for m in mail.outbox] == [[owner.email]]
    assert "unable" in mail.outbox[0].body
    assert run_thresholds(django_capture_on_commit_callbacks) == []
    assert allocation.alerts.count() == 1


def test_a_member_cap_alert_goes_to_the_member(owner, project, eager_tasks, django_capture_on_commit_callbacks):
    student = make_user("student@lab-a.example")
    add_org_member(project.organization, student)
    allocation = fund(project, "100")
    MemberCap.objects.create(allocation=allocation, user=student, amount=Decimal("5"))
    spend(project, "4", owner=student)
    assert run_thresholds(django_capture_on_commit_callbacks) == []
    spend(project, "1", owner=student, name="more")
    fired = run_thresholds(django_capture_on_commit_callbacks)
    assert [(a.kind, a.member) for a in fired] == [("member_cap", student)]
    assert [m.to for m in mail.outbox] == [[student.email]]
    assert run_thresholds(django_capture_on_commit_callbacks) == []
    assert AuditEvent.objects.filter(action="budget.member_cap").count() == 1


def test_a_pool_threshold_alert_goes_to_the_organizations_owners_and_admins(
    owner, org, project, eager_tasks, django_capture_on_commit_callbacks
):
    treasurer = make_user("treasurer@lab-a.example")
    add_org_member(org, treasurer, role="admin")
    pool = make_pool(org, total="100", alert_threshold=Decimal("0.8"))
    fund(project, "90", pool=pool)
    spend(project, "81", owner=owner)
    fired = run_thresholds(django_capture_on_commit_callbacks)
    assert [(a.kind, a.allocation, a.pool) for a in fired] == [("pool_threshold", None, pool)]
    assert sorted(m.to[0] for m in mail.outbox) == sorted([owner.email, treasurer.email])
    assert run_thresholds(django_capture_on_commit_callbacks) == []
    assert AuditEvent.objects.filter(action="budget.pool_threshold").count() == 1


def test_the_task_reads_every_allocation_in_a_fixed_number_of_queries(
    owner, org, django_assert_max_num_queries, eager_tasks
):
    from tests.conftest import make_project

    pool = make_pool(org)
    for index in range(12):
        project = make_project(org, f"P{index}", owner)
        fund(project, "100", pool=pool, alert_thresholds=["0.5", "0.9"])
        spend(project, "60", owner=owner)
    assert tasks.apply_budget_thresholds() == 12  # each project's 50% alert
    # The steady state, every five minutes: crossed thresholds already fired, nothing to do, a fixed cost.
    with django_assert_max_num_queries(6):
        assert tasks.apply_budget_thresholds() == 0


# --- The daily digest -----------------------------------------------------------------------------


def test_owners_and_admins_turn_the_digest_on_for_themselves(owner, project, admin_of_project):
    response = bearer_client(admin_of_project).put(
        f"/api/v1/projects/{project.pk}/cost-digest", {"enabled": True}, format="json"
    )
    assert response.status_code == 200, response.content
    assert response.json() == {"project_id": project.pk, "enabled": True, "last_sent_on": None}
    assert ProjectMember.objects.get(user=admin_of_project).cost_digest
    assert not ProjectMember.objects.get(user=owner).cost_digest
    assert AuditEvent.objects.filter(action="project.cost_digest", actor=admin_of_project).count() == 1


def test_members_cannot_turn_the_digest_on(project):
    student = make_user("student@lab-a.example")
    add_org_member(project.organization, student)
    ProjectMember.objects.create(project=project, user=student, role=ProjectRole.MEMBER)
    response = bearer_client(student).put(
        f"/api/v1/projects/{project.pk}/cost-digest", {"enabled": True}, format="json"
    )
    assert_error(response, 403, "PERMISSION_DENIED")


def test_the_digest_is_sent_once_a_day_after_seven(
    owner, org, project, eager_tasks, django_capture_on_commit_callbacks
):
    org.time_zone = "Europe/Paris"
    org.save()
    fund(project, "100")
    digests.cost_digest_set(actor=owner, project=project, enabled=True)
    spend(project, "2.5", owner=owner, at=datetime(2027, 6, 9, 12, tzinfo=UTC), name="yesterday")
    spend(project, "1.25", owner=owner, at=datetime(2027, 6, 2, 12, tzinfo=UTC), name="earlier")

    def run(moment):
        with time_machine.travel(moment, tick=False), django_capture_on_commit_callbacks(execute=True):
            return tasks.send_cost_digests()

    assert run(datetime(2027, 6, 10, 4, 30, tzinfo=UTC)) == 0  # 06:30 in Paris: too early
    assert run(datetime(2027, 6, 10, 5, 5, tzinfo=UTC)) == 1  # 07:05
    assert run(datetime(2027, 6, 10, 6, 5, tzinfo=UTC)) == 0  # the next hour: already sent today
    assert run(datetime(2027, 6, 10, 21, 55, tzinfo=UTC)) == 0  # 23:55 the same day
    assert len(mail.outbox) == 1
    body = mail.outbox[0].body
    assert mail.outbox[0].to == [owner.email] and "9 June 2027" in mail.outbox[0].subject
    assert "Spent that day:        2.5000 USD" in body
    assert "Month to date:         3.7500 USD" in body
    assert "96.2500 USD remaining" in body
    assert "yesterday-" in body and "earlier-" in body
    assert ProjectMember.objects.get(user=owner).cost_digest_sent_on.isoformat() == "2027-06-10"
    assert run(datetime(2027, 6, 10, 22, 5, tzinfo=UTC)) == 0  # 00:05 in Paris: a new day, before 07:00
    assert run(datetime(2027, 6, 11, 5, 5, tzinfo=UTC)) == 1
    assert len(mail.outbox) == 2


def test_no_digest_for_those_who_did_not_ask(owner, project, eager_tasks, django_capture_on_commit_callbacks):
    with (
        time_machine.travel(datetime(2027, 6, 10, 12, tzinfo=UTC), tick=False),
        django_capture_on_commit_callbacks(execute=True),
    ):
        assert tasks.send_cost_digests() == 0
    assert mail.outbox == []


def test_every_kind_fires_once_per_period_and_again_the_next(
    owner, org, project, eager_tasks, django_capture_on_commit_callbacks
):
    pool = make_pool(org, total="10", period=BudgetPool.Period.MONTHLY, alert_threshold=Decimal("0.8"))
    allocation = fund(
        project,
        "10",
        pool=pool,
        alert_thresholds=["0.5"],
        auto_hibernate_threshold=Decimal("0.8"),
        prevent_launch_threshold=Decimal("0.9"),
    )
    MemberCap.objects.create(allocation=allocation, user=owner, amount=Decimal("5"))
    kinds = ["auto_hibernate", "member_cap", "pool_threshold", "prevent_launch", "threshold"]
    for month, name in ((5, "may"), (6, "june")):
        with time_machine.travel(datetime(2027, month, 10, 12, tzinfo=UTC), tick=False):
            spend(project, "9.5", owner=owner, name=name)
            fired = run_thresholds(django_capture_on_commit_callbacks)
            assert sorted(a.kind for a in fired) == kinds
            assert {a.period_start for a in fired} == {datetime(2027, month, 1, tzinfo=UTC)}
            assert run_thresholds(django_capture_on_commit_callbacks) == []
            assert run_thresholds(django_capture_on_commit_callbacks) == []
    assert BudgetAlert.objects.count() == 10
    for action in ("alert", "auto_hibernate", "prevent_launch", "member_cap", "pool_threshold"):
        assert AuditEvent.objects.filter(action=f"budget.{action}", actor_label="system").count() == 2, action
    assert len(mail.outbox) == 10 and {m.to[0] for m in mail.outbox} == {owner.email}
    assert "No workspace was running." in BudgetAlert.objects.filter(kind="auto_hibernate").first().message


def test_it_refuses_a_launch_naming_another_pool_through_the_api(owner_client, project, account):
    now = datetime.now(UTC)
    pool = BudgetPool.objects.create(
        organization=project.organization,
        name="Grant API",
        total_amount=Decimal("1000"),
        start_date=now - timedelta(days=1),
        end_date=now + timedelta(days=30),
    )
    Allocation.objects.create(pool=pool, project=project, amount=Decimal("500"))
    body = {"name": "api-box", "template": "Python Machine Learning", "size": "S", "project": project.id}
    error = assert_error(
        owner_client.post("/api/v1/instances/launch", {**body, "budget": "some-other-grant"}, format="json"), 400
    )
    assert "budget" in error.get("fields", {})
    dry = owner_client.post("/api/v1/instances/launch", {**body, "budget": pool.name, "dry_run": True}, format="json")
    assert dry.status_code == 200, dry.content
