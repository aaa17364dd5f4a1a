"""One helper resolves "the object this user may see, or 404 with this code"; views cannot bypass it."""

import pytest

from accounts.models import Organization
from platform_site.api.views import ScopedAPIView
from platform_site.errors import NotFound
from platform_site.tenancy import visible_by_id_or_name, visible_or_404
from projects.models import Project


def test_it_finds_what_the_user_may_see(owner, org, project):
    assert visible_or_404(Project, owner, code="PROJECT_NOT_FOUND", pk=project.pk) == project
    assert visible_by_id_or_name(Project, owner, project.name, code="PROJECT_NOT_FOUND") == project


def test_it_answers_the_same_404_for_another_tenants_object_and_a_missing_one(owner, outsider, org):
    foreign = Organization.objects.get(memberships__user=outsider)
    with pytest.raises(NotFound) as other_tenant:
        visible_or_404(
            Organization, owner, code="ORGANIZATION_NOT_FOUND", message="No such organization.", pk=foreign.pk
        )
    with pytest.raises(NotFound) as missing:
        visible_or_404(Organization, owner, code="ORGANIZATION_NOT_FOUND", message="No such organization.", pk="org_x")
    assert other_tenant.value.code == missing.value.code == "ORGANIZATION_NOT_FOUND"
    assert other_tenant.value.message == missing.value.message


def test_a_view_cannot_replace_the_scoped_queryset():
    with pytest.raises(TypeError, match="refine_queryset"):

        class Leaky(ScopedAPIView):
            model = Project

            def get_queryset(self):
                return Project.objects.all()
