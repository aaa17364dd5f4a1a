from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from platform_site.ids import new_audit_event_id
from platform_site.sql import among
from platform_site.tenancy import ScopedQuerySet


class AuditEventQuerySet(ScopedQuerySet):
    def visible_to(self, user) -> "AuditEventQuerySet":
        """Org owners and admins read their organization's trail; everyone reads their own personal events."""
        trails, personal = self._visible_conditions(user)
        return self.filter(trails | personal)

    def visible_parts(self, user) -> tuple["AuditEventQuerySet", "AuditEventQuerySet"]:
        """visible_to as two disjoint parts (the trails of the organizations the user administers; their personal
        events), so that an exact count reads each from an index instead of scanning the table for the OR."""
        trails, personal = self._visible_conditions(user)
        return self.filter(trails), self.filter(personal)

    @staticmethod
    def _visible_conditions(user) -> tuple[Q, Q]:
        from accounts.models import Membership, OrgRole

        administered = Membership.objects.filter(user=user, role__in=[OrgRole.OWNER, OrgRole.ADMIN]).values(
            "organization_id"
        )
        # The organizations' ids first (a handful), then each one's range of the organization index.
        return among("organization_id", administered), Q(organization__isnull=True, actor=user)


class AuditEvent(models.Model):
    """Who did what to which object, in which organization, from where, when. Append-only."""

    id = models.CharField(primary_key=True, max_length=32, default=new_audit_event_id, editable=False)
    organization = models.ForeignKey(
        "accounts.Organization", null=True, blank=True, on_delete=models.SET_NULL, related_name="audit_events"
    )
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="audit_events"
    )
    actor_label = models.CharField(max_length=254, help_text="The actor's e-mail when the event was recorded.")
    action = models.CharField(max_length=64, db_index=True)
    target_type = models.CharField(max_length=64)
    target_id = models.CharField(max_length=64)
    target_label = models.CharField(max_length=254, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    request_id = models.CharField(max_length=64, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["organization", "-created_at"]),
            # The list's order: its pages are read from this index instead of sorting the whole trail.
            models.Index(fields=["-created_at", "-id"], name="audit_event_newest_first"),
        ]

    def __str__(self) -> str:
        return f"{self.actor_label} {self.action} {self.target_type}:{self.target_id}"
