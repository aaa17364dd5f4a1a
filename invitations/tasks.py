import logging

from celery import Task, shared_task
from django.conf import settings
from django.utils import timezone

from invitations import emails, services
from invitations.models import DeliveryStatus, Invitation, InvitationStatus

logger = logging.getLogger("carrel.invitations")


def backoff(retries: int) -> int:
    delay: int = 30 * 2**retries  # int ** int is typed Any (a negative exponent gives a float)
    return min(delay, 1800)


@shared_task(bind=True, acks_late=True, max_retries=settings.CARREL_INVITATION_SEND_RETRIES, ignore_result=True)
def send_invitation_email(self: Task, invitation_id: str) -> None:
    """Send (or resend) an invitation's e-mail. The link is derived here; no token travels in the message."""
    invitation = (
        Invitation.objects.select_related("project", "project__organization", "invited_by")
        .filter(pk=invitation_id)
        .first()
    )
    if invitation is None or invitation.status != InvitationStatus.PENDING:
        return
    email = emails.invitation_email(invitation=invitation, link=services.invitation_link(invitation))
    attempts = invitation.delivery_attempts + 1
    try:
        email.send()
    except Exception as error:
        final = self.max_retries is not None and self.request.retries >= self.max_retries
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
