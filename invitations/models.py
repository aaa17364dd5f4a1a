from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from platform_site.ids import make_id
from platform_site.tenancy import ScopedQuerySet


def new_invitation_id() -> str:
    return make_id("inv")


class InvitationStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    ACCEPTED = "accepted", "Accepted"
    DECLINED = "declined", "Declined"
    EXPIRED = "expired", "Expired"
    REVOKED = "revoked", "Revoked"


class DeliveryStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    SENT = "sent", "Sent"
    RETRYING = "retrying", "Retrying"
    FAILED = "failed", "Failed"


class InvitationQuerySet(ScopedQuerySet):
    def visible_to(self, user) -> "InvitationQuerySet":
        """Invitations of projects the user owns or administers, and invitations to the user's verified e-mails."""
        from allauth.account.models import EmailAddress

        from accounts.models import Membership, OrgRole
        from projects.models import ProjectMember, ProjectRole

        admin_orgs = Membership.objects.filter(user=user, role__in=[OrgRole.OWNER, OrgRole.ADMIN]).values(
            "organization_id"
        )
        admin_projects = (
            ProjectMember.objects.current()
            .filter(user=user, role__in=[ProjectRole.OWNER, ProjectRole.ADMIN])
            .values("project_id")
        )
        verified = EmailAddress.objects.filter(user=user, verified=True).values("email")
        return self.filter(project__deleted_at__isnull=True).filter(
            Q(project__organization_id__in=admin_orgs) | Q(project_id__in=admin_projects) | Q(email__in=verified)
        )

    def addressed_to(self, user) -> "InvitationQuerySet":
        from allauth.account.models import EmailAddress

        return self.filter(
            project__deleted_at__isnull=True,
            email__in=EmailAddress.objects.filter(user=user, verified=True).values("email"),
        )


class Invitation(models.Model):
    """An e-mailed invitation to join a project at a role.

    The link's token is never stored: it is an HMAC of `token_salt` under the server's secret key,
    so the database (and the broker, and the logs) hold only the salt and the token's SHA-256.
    A resend draws a new salt, which invalidates the previous link.
    """

    id = models.CharField(primary_key=True, max_length=32, default=new_invitation_id, editable=False)
    organization = models.ForeignKey("accounts.Organization", on_delete=models.CASCADE, related_name="invitations")
    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="invitations")
    email = models.EmailField()
    role = models.CharField(max_length=16)
    message = models.TextField(blank=True)
    invited_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    status = models.CharField(max_length=16, choices=InvitationStatus.choices, default=InvitationStatus.PENDING)
    token_salt = models.CharField(max_length=64)
    token_hash = models.CharField(max_length=64, unique=True)
    invited_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    access_expires_at = models.DateTimeField(
        null=True, blank=True, help_text="The membership this invitation grants ends then."
    )
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    declined_at = models.DateTimeField(null=True, blank=True)
    decline_reason = models.TextField(blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    resend_count = models.PositiveIntegerField(default=0)
    last_resent = models.DateTimeField(null=True, blank=True)
    delivery_status = models.CharField(max_length=16, choices=DeliveryStatus.choices, default=DeliveryStatus.QUEUED)
    delivery_attempts = models.PositiveIntegerField(default=0)
    delivery_error = models.TextField(blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    objects = InvitationQuerySet.as_manager()

    class Meta:
        ordering = ["-invited_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["project", "email"], condition=Q(status="pending"), name="invitation_one_pending_per_email"
            ),
        ]
        indexes = [
            models.Index(fields=["status", "expires_at"]),
            models.Index(fields=["email", "status"]),
            # The daily sending limits count recent invitations by inviter and by organization.
            models.Index(fields=["invited_by", "invited_at"], name="invitation_by_inviter_time"),
            models.Index(fields=["organization", "invited_at"], name="invitation_by_org_time"),
        ]

    def __str__(self) -> str:
        return f"{self.email} → {self.project} ({self.status})"

    @property
    def is_past_expiry(self) -> bool:
        return self.expires_at <= timezone.now()


class InvitationResend(models.Model):
    """One resend of an invitation (a new link, another e-mail).

    The daily sending limits count invitations created (the Invitation rows) plus these: an Invitation row keeps
    only its last resend, so without them the same invitation could be mailed again and again.
    """

    invitation = models.ForeignKey(Invitation, on_delete=models.CASCADE, related_name="resends")
    organization = models.ForeignKey("accounts.Organization", on_delete=models.CASCADE, related_name="+")
    resent_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    resent_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-resent_at", "id"]
        indexes = [
            models.Index(fields=["resent_by", "resent_at"], name="resend_by_inviter_time"),
            models.Index(fields=["organization", "resent_at"], name="resend_by_org_time"),
        ]

    def __str__(self) -> str:
        return f"{self.invitation_id} resent at {self.resent_at:%Y-%m-%d %H:%M}"
