import logging
import unicodedata

from celery import shared_task
from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.utils import timezone

from invitations import services
from invitations.models import DeliveryStatus, Invitation, InvitationStatus
from platform_site.text import BIDI_CONTROLS

logger = logging.getLogger("carrel.invitations")


SUBJECT_MAX_LENGTH = 200


def backoff(retries: int) -> int:
    return min(30 * 2**retries, 1800)


def one_line(value: str, *, max_length: int = SUBJECT_MAX_LENGTH) -> str:
    """`value` fit for an e-mail header: whitespace (line breaks included) collapsed to single spaces, control and
    bidirectional-override characters dropped, and long text shortened. Names are validated when saved; this
    holds for rows that predate the validation or were written around it."""
    kept = []
    for char in value:
        if char.isspace():
            kept.append(" ")
        elif unicodedata.category(char) not in ("Cc", "Cs") and char not in BIDI_CONTROLS:
            kept.append(char)
    text = " ".join("".join(kept).split())
    return text if len(text) <= max_length else text[: max_length - 1].rstrip() + "…"


@shared_task(bind=True, acks_late=True, max_retries=settings.CARREL_INVITATION_SEND_RETRIES, ignore_result=True)
def send_invitation_email(self, invitation_id: str) -> None:
    """Send (or resend) an invitation's e-mail. The link is derived here; no token travels in the message."""
    invitation = (
        Invitation.objects.select_related("project", "project__organization", "invited_by")
        .filter(pk=invitation_id)
        .first()
    )
    if invitation is None or invitation.status != InvitationStatus.PENDING:
        return
    inviter = invitation.invited_by
    context = {
        "invitation": invitation,
        "project": invitation.project,
        "organization": invitation.project.organization,
        "inviter_name": one_line(inviter.display_name, max_length=80) if inviter else "A Carrel administrator",
        "inviter_email": inviter.email if inviter else "",
        "link": services.invitation_link(invitation),
        "expires_at": invitation.expires_at,
    }
    # Headers never hold line breaks (Django refuses them, and the e-mail would never go out): one line each.
    project_name = one_line(invitation.project.name, max_length=100)
    subject = one_line(f"{context['inviter_name']} invited you to {project_name} on Carrel")
    email = EmailMultiAlternatives(
        subject=subject,
        body=render_to_string("invitations/email.txt", context),
        to=[invitation.email],
        reply_to=[context["inviter_email"]] if context["inviter_email"] else None,
    )
    email.attach_alternative(render_to_string("invitations/email.html", context), "text/html")
    attempts = invitation.delivery_attempts + 1
    try:
        email.send()
    except Exception as error:
        final = self.request.retries >= self.max_retries
        Invitation.objects.filter(pk=invitation.pk).update(
            delivery_attempts=attempts,
            delivery_status=DeliveryStatus.FAILED if final else DeliveryStatus.RETRYING,
            delivery_error=f"{type(error).__name__}: {error}"[:2000],
        )
        logger.warning("Invitation %s e-mail failed (attempt %d): %s", invitation.pk, attempts, type(error).__name__)
        if final:
            return
        raise self.retry(exc=error, countdown=backoff(self.request.retries)) from error
    Invitation.objects.filter(pk=invitation.pk).update(
        delivery_attempts=attempts, delivery_status=DeliveryStatus.SENT, delivery_error="", delivered_at=timezone.now()
    )
    logger.info("Invitation %s e-mailed", invitation.pk)


@shared_task(ignore_result=True)
def expire_invitations_and_memberships() -> None:
    expired = services.invitations_expire()
    ended = services.memberships_expire()
    if expired or ended:
        logger.info("Expired %d invitation(s), ended %d membership(s)", expired, ended)
