from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from platform_site.tenancy import ScopedQuerySet


class TemplateQuerySet(ScopedQuerySet):
    def visible_to(self, user) -> "TemplateQuerySet":
        """The shipped catalog, plus the private templates of the user's organizations."""
        from accounts.models import Membership

        mine = Membership.objects.filter(user=user).values("organization_id")
        return self.filter(Q(organization__isnull=True) | Q(organization_id__in=mine))


class WorkspaceTemplate(models.Model):
    """A template definition as written (YAML mapping); inheritance is resolved on read.

    Catalog templates (organization empty) ship as YAML in templates/catalog and are loaded by
    `manage.py load_templates`; organizations add private ones through the API or the admin.
    """

    class Source(models.TextChoices):
        CATALOG = "catalog", "Shipped catalog"
        ORGANIZATION = "organization", "Organization"

    organization = models.ForeignKey(
        "accounts.Organization", null=True, blank=True, on_delete=models.CASCADE, related_name="templates"
    )
    name = models.CharField(max_length=120)
    slug = models.SlugField(max_length=80)
    description = models.TextField(blank=True)
    definition = models.JSONField(help_text="The template as written, before inheritance.")
    source = models.CharField(max_length=16, choices=Source.choices, default=Source.ORGANIZATION)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    objects = TemplateQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["slug"], condition=Q(organization__isnull=True), name="template_unique_catalog_slug"
            ),
            models.UniqueConstraint(
                fields=["name"], condition=Q(organization__isnull=True), name="template_unique_catalog_name"
            ),
            models.UniqueConstraint(fields=["organization", "slug"], name="template_unique_org_slug"),
            models.UniqueConstraint(fields=["organization", "name"], name="template_unique_org_name"),
        ]

    def __str__(self) -> str:
        return self.name
