"""The cloud poller: one batched DescribeInstances per cloud account and region per tick.

Every workspace waiting for the cloud (a launch waiting for `running`, a stop or hibernate waiting for
`stopped`, a start or resume waiting for `running`, a terminate waiting for `terminated`) is looked at by
one tick of its cloud account and region, which describes all of their instances in one call (200 ids a
call: EC2 takes at most 200 values per filter) and advances each workspace through the same service
functions that finished it when every task polled on its own. The tasks that ask the cloud for something
(RunInstances, StopInstances, …) hand the wait over with `cloud_wait` and end; no worker sleeps.

How ticks happen:
- `cloud_wait` ticks at once, in the task that asked, when no other launch or action of the account and
  region is under way (a lone launch or stop finishes without a countdown); during a burst it schedules
  one tick instead, so a hundred launches share a tick every CARREL_LAUNCH_POLL_SECONDS;
- a tick that leaves workspaces waiting schedules the next one (one scheduled tick per account and region,
  kept in the cache), and renews the leases of the launch jobs it waits for;
- beat's `poll_cloud_accounts` (every CARREL_POLL_SWEEP_SECONDS) schedules a tick for every account and
  region with a workspace waiting, should a scheduled tick have been lost with its worker; the launch sweep
  (reconcile.launches_resume_stalled) still resumes a launch whose lease ran out.

At most one tick of an account and region runs at a time (a lock in the cache); every move is a conditional
transition besides, so two ticks could not finish a workspace twice. A tick reads and changes only the
workspaces of its own CloudAccount row: organizations sharing one AWS account and region never see each
other's instances through it.
"""

import logging
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.core.cache import cache
from django.db.models import Q, QuerySet
from django.utils import timezone

from workspaces import cloud, dispatch
from workspaces.models import CloudAccount, ProvisionJob, Workspace
from workspaces.services.access import S
from workspaces.services.provisioning import finish_launch, spot_rate, workspace_launch_failed
from workspaces.services.transitions import record_transition

logger = logging.getLogger("carrel.workspaces")

# Where each waiting state goes once the provider reports the instance in the matching state.
LIFECYCLE_TARGETS: dict[str, tuple[str, str]] = {
    # workspace state: (the provider's state it waits for, the workspace state that follows)
    S.STOPPING: ("stopped", S.STOPPED),
    S.HIBERNATING: ("stopped", S.HIBERNATED),
    S.STARTING: ("running", S.RUNNING),
    S.RESUMING: ("running", S.RUNNING),
    S.TERMINATING: ("terminated", S.TERMINATED),
}
WAITING_STATES = (S.LAUNCHING, *LIFECYCLE_TARGETS)
# A tick holds the lock at most this long: a tick whose worker was killed leaves it to expire, and the
# waits it held are looked at again soon after (a tick that outlives it only risks a second look: every
# move is conditional).
LOCK_SECONDS = 30
# Moves a tick records itself; more are spread over the workers in chunks of this many.
FINISH_INLINE = 8
# A move handed to a finish task is not looked at again for this long (after it, should the task be lost).
HANDED_SECONDS = 30
# Looks one tick takes at most when waits keep being handed over while it runs (then a scheduled tick).
MAX_PASSES = 3


@dataclass
class PollReport:
    account_id: str
    region: str
    locked: bool = False  # another tick held the lock: this one did nothing
    described: int = 0  # instances asked about
    calls: int = 0  # DescribeInstances calls made
    finished: list[str] = field(default_factory=list)  # workspaces moved to their destination
    failed: list[str] = field(default_factory=list)  # launches ended in error
    waiting: list[str] = field(default_factory=list)  # still waiting for the cloud


# --- Keys ------------------------------------------------------------------------------------------


def _lock_key(account_id: str, region: str) -> str:
    return f"poller:lock:{account_id}:{region}"


def _again_key(account_id: str, region: str) -> str:
    """Set by a tick that found the lock taken: the running tick looks once more before it ends."""
    return f"poller:again:{account_id}:{region}"


def region_of(workspace: Workspace) -> str:
    account = workspace.cloud_account
    assert account is not None  # a workspace with an instance has a cloud account
    return workspace.region or account.region


# --- Handing a wait to the poller ------------------------------------------------------------------


def cloud_wait(*, workspace: Workspace) -> PollReport | None:
    """Called by a task once it has asked the cloud for something (RunInstances, StopInstances, …) for
    `workspace`: the poller takes over the wait. Ticks now when nothing else of the account and region is
    under way, else schedules the shared tick. Returns the report of the tick it ran, if any."""
    account_id, region = workspace.cloud_account_id, region_of(workspace)
    assert account_id is not None
    if _others_under_way(workspace, region):
        dispatch.poll_cloud(account_id, region)
        return None
    try:
        report = cloud_poll(account_id=account_id, region=region)
    except cloud.CloudError as error:
        # The scheduled tick (a task, retried with backoff) looks again; the launch stays leased meanwhile.
        logger.warning("Polling %s/%s after an action on %s failed: %s", account_id, region, workspace.pk, error)
        dispatch.poll_cloud(account_id, region)
        return None
    if report.locked or report.waiting:
        dispatch.poll_cloud(account_id, region)
    return report


def _others_under_way(workspace: Workspace, region: str) -> bool:
    """Whether another launch of this account and region has not got its instance yet, or another action
    was asked for within the poll interval: then their tasks are about to hand a wait over too, and one
    scheduled tick serves them all instead of one tick each."""
    recent = timezone.now() - timedelta(seconds=settings.CARREL_LAUNCH_POLL_SECONDS)
    same_account = Workspace.objects.filter(cloud_account_id=workspace.cloud_account_id)
    return (
        _in_region(same_account, workspace.cloud_account, region)
        .filter(
            Q(state=S.LAUNCHING, provider_instance_id="")
            | Q(state__in=list(LIFECYCLE_TARGETS), state_changed_at__gte=recent)
        )
        .exclude(pk=workspace.pk)
        .exists()
    )


def _in_region(queryset: QuerySet[Workspace], account: CloudAccount | None, region: str) -> QuerySet[Workspace]:
    """Workspaces of `region`: a blank region is the account's own."""
    if account is not None and region == account.region:
        return queryset.filter(Q(region=region) | Q(region=""))
    return queryset.filter(region=region)


# --- A tick ----------------------------------------------------------------------------------------


def cloud_poll(*, account_id: str, region: str, now: datetime | None = None) -> PollReport:
    """One tick for one cloud account and region: describe every waiting instance in one call (per 200)
    and move each workspace the provider has moved. Does nothing when another tick holds the lock."""
    report = PollReport(account_id=account_id, region=region)
    lock, token = _lock_key(account_id, region), secrets.token_hex(8)
    again = _again_key(account_id, region)
    if not cache.add(lock, token, timeout=LOCK_SECONDS):
        # The running tick may have read the workspaces before this wait was handed over: it looks once more
        # when it is done (and the caller schedules a tick, should it have finished just now).
        cache.set(again, 1, timeout=LOCK_SECONDS)
        report.locked = True
        return report
    try:
        account = CloudAccount.objects.filter(pk=account_id).first()
        for _ in range(MAX_PASSES):
            cache.delete(again)
            if account is None:
                break
            report.waiting = []
            _tick(account, region, report, now or timezone.now())
            if not cache.get(again):
                break
            now = None  # a further pass is a new look
    finally:
        if cache.get(lock) == token:
            cache.delete(lock)
    return report


def waiting_workspaces(
    account: CloudAccount, region: str, *, now: datetime, ids: list[str] | None = None
) -> list[Workspace]:
    """This account's workspaces of `region` waiting for the cloud, with an instance to look at. An action
    waiting longer than CARREL_TRANSITION_STUCK_SECONDS is the reconciler's (it follows the provider)."""
    stuck_before = now - timedelta(seconds=settings.CARREL_TRANSITION_STUCK_SECONDS)
    queryset = (
        Workspace.objects.filter(cloud_account_id=account.pk, state__in=WAITING_STATES)
        .exclude(provider_instance_id="")
        .exclude(~Q(state=S.LAUNCHING), state_changed_at__lt=stuck_before)
        .select_related("cloud_account", "owner")
        .order_by("pk")
    )
    if ids is not None:
        queryset = queryset.filter(pk__in=ids)
    return list(_in_region(queryset, account, region))


def _latest_launch_jobs(workspace_ids: Iterable[str]) -> dict[str, ProvisionJob]:
    jobs: dict[str, ProvisionJob] = {}
    for job in ProvisionJob.objects.filter(workspace_id__in=list(workspace_ids), kind="launch").order_by(
        "workspace_id", "-created_at"
    ):
        jobs.setdefault(job.workspace_id, job)
    return jobs


def _handed_key(workspace_id: str) -> str:
    """Set while a finish task holds the provider's report of this workspace's move (no tick looks again)."""
    return f"poller:handed:{workspace_id}"


def _tick(account: CloudAccount, region: str, report: PollReport, now: datetime) -> None:
    workspaces = waiting_workspaces(account, region, now=now)
    in_hand = cache.get_many([_handed_key(w.pk) for w in workspaces]) if workspaces else {}
    workspaces = [w for w in workspaces if _handed_key(w.pk) not in in_hand]
    if not workspaces:
        return
    jobs = _latest_launch_jobs(w.pk for w in workspaces if w.state == S.LAUNCHING)
    provider = cloud.AwsProvider(account, region=region)
    ids = sorted({w.provider_instance_id for w in workspaces})
    report.described, report.calls = len(ids), -(-len(ids) // cloud.DESCRIBE_BATCH)
    try:
        described = provider.describe(ids)
    except cloud.CloudError:
        # The provider cannot be asked; launches whose time is up still end (LAUNCH_TIMEOUT).
        for workspace in workspaces:
            job = jobs.get(workspace.pk)
            if workspace.state == S.LAUNCHING and job is not None and _timed_out(job, now):
                _fail_launch(job, workspace, "LAUNCH_TIMEOUT", "the provider could not be asked", report)
        raise
    moved = [w for w in workspaces if _has_moved(w, described.get(w.provider_instance_id))]
    if len(moved) > FINISH_INLINE:
        # Recording a move is a few queries; many at once are spread over the workers (the provider's
        # reports go with them: no second look), so a burst's last launch does not wait for its first.
        cache.set_many({_handed_key(w.pk): 1 for w in moved}, timeout=HANDED_SECONDS)
        for start in range(0, len(moved), FINISH_INLINE):
            chunk = moved[start : start + FINISH_INLINE]
            dispatch.finish_cloud_waits(
                account.pk,
                region,
                [{"workspace_id": w.pk, "info": described[w.provider_instance_id].to_json()} for w in chunk],
            )
        leased = [jobs[w.pk].pk for w in moved if w.pk in jobs]
        workspaces = [w for w in workspaces if w not in moved]
    else:
        leased = []
    leased += _advance_all(provider, workspaces, jobs, described, report, now)
    if leased:
        # Alive: the launch sweep leaves these jobs to the poller while its ticks keep coming.
        until = now + timedelta(seconds=settings.CARREL_LAUNCH_POLL_SECONDS + settings.CARREL_LAUNCH_LEASE_SECONDS)
        ProvisionJob.objects.filter(pk__in=leased).update(lease_expires_at=until, updated_at=now)


def _has_moved(workspace: Workspace, info: cloud.InstanceInfo | None) -> bool:
    """Whether the provider's report moves the workspace somewhere (not: still waiting)."""
    if info is None:
        return False
    if workspace.state == S.LAUNCHING:
        return info.state in ("running", "shutting-down", "terminated")
    return info.state == LIFECYCLE_TARGETS[workspace.state][0]


def _advance_all(
    provider: cloud.AwsProvider,
    workspaces: list[Workspace],
    jobs: dict[str, ProvisionJob],
    described: dict[str, cloud.InstanceInfo],
    report: PollReport,
    now: datetime,
) -> list[str]:
    """Move each workspace as the provider's report says. Returns the launch jobs still waiting."""
    leased: list[str] = []
    for workspace in workspaces:
        info = described.get(workspace.provider_instance_id)
        try:
            if workspace.state == S.LAUNCHING:
                job = jobs.get(workspace.pk)
                if job is not None and job.status in (ProvisionJob.Status.SUCCEEDED, ProvisionJob.Status.FAILED):
                    continue  # a job that ended (a resumed duplicate's) is not waited for
                if _advance_launch(workspace, job, info, report, now) and job is not None:
                    leased.append(job.pk)
            else:
                _advance_action(provider, workspace, info, report)
        except cloud.CloudError as error:
            logger.warning("Advancing %s after the provider's report failed: %s", workspace.pk, error)
            report.waiting.append(workspace.pk)
    return leased


def cloud_waits_finish(*, account_id: str, region: str, reports: list[dict]) -> PollReport:
    """Record the moves a tick found, with the provider's reports it read (no second look): the
    workspaces named, of this account and region only, still waiting for the instance reported."""
    report = PollReport(account_id=account_id, region=region)
    account = CloudAccount.objects.filter(pk=account_id).first()
    if account is None:
        return report
    infos = {entry["workspace_id"]: cloud.InstanceInfo.from_json(entry["info"]) for entry in reports}
    now = timezone.now()
    workspaces = [
        w
        for w in waiting_workspaces(account, region, now=now, ids=list(infos))
        if infos[w.pk].instance_id == w.provider_instance_id
    ]
    jobs = _latest_launch_jobs(w.pk for w in workspaces if w.state == S.LAUNCHING)
    described = {infos[w.pk].instance_id: infos[w.pk] for w in workspaces}
    _advance_all(cloud.AwsProvider(account, region=region), workspaces, jobs, described, report, now)
    cache.delete_many([_handed_key(workspace_id) for workspace_id in infos])
    return report


def _timed_out(job: ProvisionJob, now: datetime) -> bool:
    return now - job.created_at > timedelta(seconds=settings.CARREL_LAUNCH_TIMEOUT_SECONDS)


def _fail_launch(job: ProvisionJob, workspace: Workspace, code: str, message: str, report: PollReport) -> None:
    workspace_launch_failed(job_id=job.pk, code=code, message=message)
    report.failed.append(workspace.pk)


def _advance_launch(
    workspace: Workspace,
    job: ProvisionJob | None,
    info: cloud.InstanceInfo | None,
    report: PollReport,
    now: datetime,
) -> bool:
    """Finish, fail or keep waiting for one launch. True when it is still waiting."""
    if job is None:
        # Not a launch this code started (no job): the launch sweep and the reconciler own it.
        return False
    if info is not None and info.state == "running":
        finish_launch(job, workspace, info)
        report.finished.append(workspace.pk)
        return False
    if info is not None and info.state in ("shutting-down", "terminated"):
        message = info.state_reason or f"{info.instance_id} is {info.state}"
        _fail_launch(job, workspace, "InstanceTerminated", message, report)
        return False
    if _timed_out(job, now):
        # Not visible (EC2 is eventually consistent: a new instance may not be listed at once), or pending.
        seen = info.state if info is not None else "not visible yet"
        message = f"{workspace.provider_instance_id} is {seen}, waiting for ['running']"
        _fail_launch(job, workspace, "LAUNCH_TIMEOUT", message, report)
        return False
    report.waiting.append(workspace.pk)
    return True


def _advance_action(
    provider: cloud.AwsProvider, workspace: Workspace, info: cloud.InstanceInfo | None, report: PollReport
) -> None:
    wanted, destination = LIFECYCLE_TARGETS[workspace.state]
    if info is None or info.state != wanted:
        if info is not None and info.state in ("shutting-down", "terminated") and wanted != "terminated":
            # Gone while stopping or starting: nothing to wait for; the reconciler records it.
            return
        report.waiting.append(workspace.pk)
        return
    during = workspace.state
    if destination == S.TERMINATED:
        moved = record_transition(
            workspace=workspace,
            to_state=S.TERMINATED,
            expected_from=[S.TERMINATING],
            reason="the provider reports terminated",
            public_ip=None,
            private_ip=None,
        )
        if moved and workspace.security_group_id:
            _delete_security_group(provider, workspace)
    elif destination == S.RUNNING:
        moved = record_transition(
            workspace=workspace,
            to_state=S.RUNNING,
            expected_from=[during],
            reason="the provider reports running",
            cloud_launch_time=info.launch_time,
            **spot_rate(provider, workspace, info),
            public_ip=info.public_ip,
            private_ip=info.private_ip,
        )
    else:
        moved = record_transition(
            workspace=workspace,
            to_state=destination,
            expected_from=[during],
            reason="the provider reports stopped",
            cloud_at=info.transition_time,
            public_ip=None,
        )
    if moved:
        report.finished.append(workspace.pk)


def _delete_security_group(provider: cloud.AwsProvider, workspace: Workspace) -> None:
    """Delete a terminated workspace's group; while another instance (a duplicate found by its tag) still
    holds it, or the call fails, the release task tries again after a countdown."""
    try:
        provider.delete_security_group(workspace.security_group_id)
    except cloud.CloudError as error:
        logger.info("Security group %s of %s not deleted yet: %s", workspace.security_group_id, workspace.pk, error)
        dispatch.release_security_group(workspace.pk)


# --- The beat sweep --------------------------------------------------------------------------------


def poll_targets(*, now: datetime | None = None) -> list[tuple[str, str]]:
    """(cloud account, region) pairs with a workspace waiting for the cloud: one query."""
    now = now or timezone.now()
    stuck_before = now - timedelta(seconds=settings.CARREL_TRANSITION_STUCK_SECONDS)
    rows = (
        Workspace.objects.filter(state__in=WAITING_STATES, cloud_account__isnull=False)
        .exclude(provider_instance_id="")
        .exclude(~Q(state=S.LAUNCHING), state_changed_at__lt=stuck_before)
        .values_list("cloud_account_id", "region", "cloud_account__region")
        .distinct()
    )
    return sorted({(account_id, region or account_region) for account_id, region, account_region in rows})


def cloud_poll_schedule_all(*, now: datetime | None = None) -> list[tuple[str, str]]:
    """Schedule a tick for every account and region with something waiting (none where one is scheduled)."""
    targets = poll_targets(now=now)
    for account_id, region in targets:
        dispatch.poll_cloud(account_id, region, countdown=0)
    return targets
