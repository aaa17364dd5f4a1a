"""How the workspace API finds the workspace, project and cloud account a request names."""

import re

from drf_spectacular.utils import OpenApiParameter

from platform_site.errors import NotFound, ValidationFailed
from platform_site.tenancy import scoped_queryset, visible_by_id_or_name
from projects.models import Project
from workspaces import selectors
from workspaces.models import CloudAccount, Workspace, WorkspacePreference

# --- Helpers ------------------------------------------------------------------------------------


PROJECT_PARAMETER = OpenApiParameter(
    "project", str, description="Project id or name: picks among workspaces of the same name in several projects."
)
WHOLE_NUMBER_RE = re.compile(r"^[0-9]{1,9}$")  # ASCII digits only: str.isdigit() accepts '²' and '٣'


def workspace_or_404(request, reference: str) -> Workspace:
    workspace = selectors.workspace_by_reference(
        user=request.user, reference=reference, project=request.query_params.get("project") or None
    )
    if workspace is None:
        raise NotFound(
            f"Workspace '{reference}' not found.",
            code="INSTANCE_NOT_FOUND",
            details="Check the workspace name; workspaces of other organizations are not visible.",
            remediation="GET /api/v1/instances lists your workspaces.",
        )
    return workspace


def project_for_launch(request, reference: str | None) -> Project:
    if reference:
        return visible_by_id_or_name(Project, request.user, reference, code="PROJECT_NOT_FOUND")
    projects = scoped_queryset(Project, request.user)
    preference = WorkspacePreference.objects.filter(user=request.user).first()
    if preference and preference.project_id:
        project = projects.filter(pk=preference.project_id).first()
        if project:
            return project
    mine = list(projects[:2])
    if len(mine) == 1:
        return mine[0]
    raise ValidationFailed(fields={"project": ["Required: name the project (or switch your profile to one)."]})


def account_for_launch(request, project: Project, reference: str | None) -> CloudAccount | None:
    if not reference:
        return None
    return visible_by_id_or_name(
        CloudAccount,
        request.user,
        reference,
        code="PROFILE_NOT_FOUND",
        refine=lambda qs: qs.filter(organization=project.organization),
    )
