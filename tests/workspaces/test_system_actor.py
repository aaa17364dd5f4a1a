"""What Carrel does by itself acts as SYSTEM; "no actor" is no longer a way to be allowed everything."""

from decimal import Decimal

import pytest
from django.contrib.auth.models import AnonymousUser

from platform_site.actors import SYSTEM
from platform_site.errors import PermissionDenied
from workspaces import services
from workspaces.models import Workspace


@pytest.fixture
def workspace(org, project, owner):
    return Workspace.objects.create(
        organization=org, project=project, owner=owner, name="box", state="running", hourly_rate=Decimal("0.1")
    )


@pytest.mark.parametrize("nobody", [None, AnonymousUser()])
def test_it_refuses_an_action_without_an_actor(workspace, nobody):
    with pytest.raises(PermissionDenied):
        services.require_can_manage(user=nobody, workspace=workspace)
    with pytest.raises(PermissionDenied):
        services.workspace_act(actor=nobody, workspace=workspace, action="stop")
    assert Workspace.objects.get(pk=workspace.pk).state == "running"


def test_it_lets_the_system_act_and_audits_it_as_system(workspace, django_capture_on_commit_callbacks):
    from audit.models import AuditEvent

    with django_capture_on_commit_callbacks():
        result = services.workspace_act(actor=SYSTEM, workspace=workspace, action="stop", reason="TTL expired")
    assert result.new_state == "stopping"
    event = AuditEvent.objects.get(action="workspace.stop")
    assert event.actor is None and event.actor_label == "system"
