"""The idle warning e-mail, built here and sent by idle.tasks.send_idle_warning."""

from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.urls import reverse

from idle.decision import quiet_since
from idle.models import IdleAction, WorkspaceIdle
from idle.services.snooze import SNOOZE_LINK_MAX_AGE, snooze_link_token
from invitations.emails import one_line


def action_at(state: WorkspaceIdle) -> datetime | None:
    """When the action comes if nothing changes: the window's end, and never sooner than `warning_minutes` after
    the warning (idle.decision.judge)."""
    since = quiet_since(state)
    if since is None or state.warned_at is None:
        return None
    return max(
        since + timedelta(minutes=state.idle_threshold_minutes),
        state.warned_at + timedelta(minutes=state.warning_minutes),
    )


def utc(moment: datetime | None) -> str:
    """A time as e-mails and the snooze page say it, whatever the server's time zone: "5 December 2026, 14:05 UTC"."""
    return f"{moment.astimezone(UTC):%-d %B %Y, %H:%M} UTC" if moment else ""


def what_happens(state: WorkspaceIdle) -> str:
    workspace = state.workspace
    if state.action == IdleAction.HIBERNATE and workspace.hibernation_capable:
        return "hibernated (its memory and disk are kept; resuming picks up where you left off)"
    if state.action == IdleAction.HIBERNATE:
        return (
            f"stopped (its disk is kept, but not what is in memory): its instance type {workspace.instance_type} "
            "was not launched with hibernation, so it cannot hibernate"
        )
    return "stopped (its disk is kept, but not what is in memory), as its idle policy says"


def idle_warning_email(*, state: WorkspaceIdle) -> EmailMultiAlternatives:
    """The warning for the warning in force on `state` (with its workspace, owner and project loaded), to the
    workspace's owner: what will happen and when, a one-click snooze link, and the workspace's page."""
    workspace = state.workspace
    base = settings.CARREL_PUBLIC_URL
    since = quiet_since(state)
    context: dict[str, Any] = {
        "workspace": workspace,
        "workspace_name": one_line(workspace.name, max_length=63),
        "project": workspace.project,
        "state": state,
        "idle_minutes": int((state.warned_at - since).total_seconds() // 60) if since and state.warned_at else 0,
        "action_at": utc(action_at(state)),
        "what_happens": what_happens(state),
        "snooze_link": base + reverse("idle-snooze-link", args=[snooze_link_token(state)]),
        "snooze_hours": 1,
        "link_hours": int(SNOOZE_LINK_MAX_AGE.total_seconds() // 3600),
        "workspace_link": base + reverse("console:workspace", args=[workspace.pk]),
        "reasons": state.active_reasons,
    }
    verb = "hibernate" if state.action == IdleAction.HIBERNATE and workspace.hibernation_capable else "stop"
    email = EmailMultiAlternatives(
        subject=one_line(f"Workspace {context['workspace_name']} is idle and will {verb} soon"),
        body=render_to_string("idle/warning_email.txt", context),
        to=[workspace.owner.email],
    )
    email.attach_alternative(render_to_string("idle/warning_email.html", context), "text/html")
    return email
