"""The money e-mails (budget alerts and the daily cost digest), built here and sent by budgets.tasks."""

from typing import Any

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string

from accounts.models import Membership, OrgRole, User
from budgets.models import BudgetAlert
from budgets.services.digests import Digest
from invitations.emails import one_line
from projects.models import ProjectMember, ProjectRole

Kind = BudgetAlert.Kind

SUBJECTS = {
    Kind.THRESHOLD: "Budget alert: {project} passed {threshold} of its allocation",
    Kind.AUTO_HIBERNATE: "Budget: {project}'s workspaces were hibernated at {threshold} of its allocation",
    Kind.PREVENT_LAUNCH: "Budget: {project} reached {threshold}, launches are refused",
    Kind.MEMBER_CAP: "Budget: you reached your cap in {project}",
    Kind.POOL_THRESHOLD: "Budget pool {pool} passed {threshold}",
}


def alert_recipients(alert: BudgetAlert) -> list[str]:
    """Who hears of an alert: the member for their cap; the organization's owners and admins for a pool; the
    project's owners and admins otherwise (and, when workspaces were hibernated or stopped, their owners)."""
    if alert.kind == Kind.MEMBER_CAP:
        emails = list(User.objects.filter(pk=alert.member_id).values_list("email", flat=True))
    elif alert.kind == Kind.POOL_THRESHOLD:
        emails = list(
            Membership.objects.filter(
                organization_id=alert.pool.organization_id, role__in=[OrgRole.OWNER, OrgRole.ADMIN]
            ).values_list("user__email", flat=True)
        )
    else:
        emails = list(
            ProjectMember.objects.current()
            .filter(project_id=alert.project_id, role__in=[ProjectRole.OWNER, ProjectRole.ADMIN])
            .values_list("user__email", flat=True)
        )
        for entry in (alert.details or {}).get("hibernated", []) + (alert.details or {}).get("stopped", []):
            emails.append(entry.get("owner", ""))
    return sorted({email for email in emails if email})


def alert_emails(alert: BudgetAlert) -> list[EmailMultiAlternatives]:
    """One message per recipient (nobody sees the others' addresses)."""
    project = alert.project
    context: dict[str, Any] = {
        "alert": alert,
        "project": project,
        "pool": alert.pool,
        "threshold": f"{float(alert.threshold * 100):g}%",
        "details": alert.details or {},
        "link": f"{settings.CARREL_PUBLIC_URL}/api/v1/projects/{project.pk}/budget" if project else "",
    }
    subject = one_line(
        SUBJECTS[BudgetAlert.Kind(alert.kind)].format(
            project=project.name if project else "", pool=alert.pool.name, threshold=context["threshold"]
        )
    )
    body = render_to_string("budgets/email/alert.txt", context)
    html = render_to_string("budgets/email/alert.html", context)
    messages = []
    for address in alert_recipients(alert):
        message = EmailMultiAlternatives(subject=subject, body=body, to=[address])
        message.attach_alternative(html, "text/html")
        messages.append(message)
    return messages


def digest_email(*, digest: Digest, to: str) -> EmailMultiAlternatives:
    context = {"digest": digest, "project": digest.project, "organization": digest.project.organization}
    message = EmailMultiAlternatives(
        subject=one_line(f"Carrel cost digest for {digest.project.name}: {digest.day:%d %B %Y}"),
        body=render_to_string("budgets/email/digest.txt", context),
        to=[to],
    )
    message.attach_alternative(render_to_string("budgets/email/digest.html", context), "text/html")
    return message
