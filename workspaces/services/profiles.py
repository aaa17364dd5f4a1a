"""Cloud accounts (the seeds' profiles): which account a launch uses, and the provider for it."""

import logging

from django.db import transaction

from accounts.models import Organization, User
from audit.services import audit_record
from projects.models import Project
from workspaces import cloud
from workspaces.models import (
    CloudAccount,
    Workspace,
    WorkspacePreference,
)

logger = logging.getLogger("carrel.workspaces")

# --- Cloud accounts and profiles ------------------------------------------------------------------


def provider_for(target: Workspace | CloudAccount) -> cloud.AwsProvider:
    if isinstance(target, Workspace):
        assert target.cloud_account is not None  # launch refuses a workspace without one (NO_CLOUD_ACCOUNT)
        return cloud.AwsProvider(target.cloud_account, region=target.region or None)
    return cloud.AwsProvider(target)


def default_cloud_account(*, user: User, organization: Organization) -> CloudAccount | None:
    preference = WorkspacePreference.objects.filter(user=user).select_related("cloud_account").first()
    if preference and preference.cloud_account and preference.cloud_account.organization_id == organization.pk:
        return preference.cloud_account
    accounts = CloudAccount.objects.filter(organization=organization).order_by("-is_default", "created_at")
    return accounts.first()


@transaction.atomic
def profile_switch(*, actor: User, cloud_account: CloudAccount | None, project: Project | None) -> WorkspacePreference:
    preference, _ = WorkspacePreference.objects.get_or_create(user=actor)
    if cloud_account is not None:
        preference.cloud_account = cloud_account
    if project is not None:
        preference.project = project
    preference.save()
    audit_record(
        actor=actor,
        action="profile.switch",
        target=preference,
        metadata={"cloud_account": getattr(cloud_account, "pk", None), "project": getattr(project, "pk", None)},
    )
    return preference
