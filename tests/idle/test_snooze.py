"""Snooze: who may, when, by how much; and the e-mail's signed, single-use, 24-hour one-click link."""

from datetime import timedelta

import pytest
import time_machine
from django.core import signing
from django.test import Client
from django.utils import timezone

from audit.models import AuditEvent
from idle.decision import SNOOZE
from idle.models import IdleEvent, WorkspaceIdle
from idle.services.snooze import snooze_by_link, snooze_link_token, workspace_snooze
from platform_site.errors import Conflict, NotFound, PermissionDenied
from projects.models import ProjectMember, ProjectRole
from tests.conftest import make_user
from tests.idle.sweep_support import make_workspace

pytestmark = pytest.mark.django_db


@pytest.fixture
def warned(project, owner):
    workspace = make_workspace(project, owner, "box")
    WorkspaceIdle.objects.filter(pk=workspace.pk).update(warned_at=timezone.now() - timedelta(minutes=3))
    return workspace


def state_of(workspace) -> WorkspaceIdle:
    return WorkspaceIdle.objects.get(pk=workspace.pk)


def test_it_snoozes_for_an_hour_ending_the_warning(owner, warned):
    now = timezone.now()
    state = workspace_snooze(actor=owner, workspace=warned, now=now)
    assert state.snoozed_until == now + SNOOZE and state.warned_at is None
    assert state_of(warned).snoozed_until == now + SNOOZE
    event = IdleEvent.objects.get(workspace=warned, kind="snoozed")
    assert event.actor == owner and event.created_at == now
    audit = AuditEvent.objects.get(action="workspace.idle_snooze", target_id=warned.pk)
    assert audit.actor == owner and audit.metadata["via"] == "api"


def test_snoozing_again_extends_from_the_current_snooze(owner, warned):
    now = timezone.now()
    workspace_snooze(actor=owner, workspace=warned, now=now)
    state = workspace_snooze(actor=owner, workspace=warned, now=now + timedelta(minutes=10))
    assert state.snoozed_until == now + 2 * SNOOZE


def test_an_expired_snooze_extends_from_now(owner, warned):
    now = timezone.now()
    WorkspaceIdle.objects.filter(pk=warned.pk).update(snoozed_until=now - timedelta(hours=5))
    assert workspace_snooze(actor=owner, workspace=warned, now=now).snoozed_until == now + SNOOZE


def test_a_member_may_snooze_their_own_workspace_not_anothers(project, owner, warned):
    member = make_user("member@lab-a.example")
    ProjectMember.objects.create(project=project, user=member, role=ProjectRole.MEMBER)
    own = make_workspace(project, member, "mine")
    workspace_snooze(actor=member, workspace=own)
    with pytest.raises(PermissionDenied):
        workspace_snooze(actor=member, workspace=warned)
    assert state_of(warned).warned_at is not None


def test_an_outsider_may_not_snooze(outsider, warned):
    with pytest.raises(PermissionDenied):
        workspace_snooze(actor=outsider, workspace=warned)
    assert not IdleEvent.objects.filter(kind="snoozed").exists()


def test_only_a_running_workspace_with_idle_detection_on_can_be_snoozed(project, owner):
    stopped = make_workspace(project, owner, "stopped", state="stopped")
    with pytest.raises(Conflict) as refused:
        workspace_snooze(actor=owner, workspace=stopped)
    assert refused.value.code == "INVALID_STATE"
    off = make_workspace(project, owner, "off", idle={"enabled": False})
    with pytest.raises(Conflict) as refused:
        workspace_snooze(actor=owner, workspace=off)
    assert refused.value.code == "IDLE_DETECTION_DISABLED" and refused.value.status_code == 409


# --- The e-mailed link ------------------------------------------------------------------------------------------


def test_the_link_snoozes_once(warned):
    token = snooze_link_token(state_of(warned))
    client = Client()  # nobody signed in: the link is the credential
    page = client.get(f"/idle/snooze/{token}")
    assert page.status_code == 200
    assert "box is snoozed" in page.content.decode()
    assert page["Referrer-Policy"] == "no-referrer" and page["Cache-Control"] == "no-store"
    state = state_of(warned)
    assert state.warned_at is None and state.snoozed_until > timezone.now() + timedelta(minutes=59)
    event = IdleEvent.objects.get(workspace=warned, kind="snoozed")
    assert event.actor is None and "e-mailed link" in event.detail
    assert AuditEvent.objects.get(action="workspace.idle_snooze").actor_label == "system"

    again = client.get(f"/idle/snooze/{token}")
    assert again.status_code == 404
    assert "already used" in again.content.decode()
    assert IdleEvent.objects.filter(kind="snoozed").count() == 1


def test_a_link_for_an_older_warning_does_nothing(warned):
    token = snooze_link_token(state_of(warned))
    WorkspaceIdle.objects.filter(pk=warned.pk).update(warned_at=timezone.now())  # a new warning since
    with pytest.raises(NotFound) as refused:
        snooze_by_link(token)
    assert refused.value.code == "SNOOZE_LINK_INVALID"


def test_an_altered_link_is_refused(warned):
    token = snooze_link_token(state_of(warned))
    forged = signing.dumps({"w": warned.pk, "t": state_of(warned).warned_at.isoformat()}, salt="something else")
    for bad in (token[:-2] + "xx", forged, "nonsense"):
        response = Client().get(f"/idle/snooze/{bad}")
        assert response.status_code == 404
        assert "not valid" in response.content.decode()
    assert state_of(warned).warned_at is not None


def test_a_link_expires_after_24_hours(warned):
    token = snooze_link_token(state_of(warned))
    with time_machine.travel(timezone.now() + timedelta(hours=24, minutes=1)), pytest.raises(NotFound) as refused:
        snooze_by_link(token)
    assert "expired" in refused.value.message
    assert state_of(warned).warned_at is not None


def test_a_link_for_a_workspace_no_longer_running_is_refused(warned):
    token = snooze_link_token(state_of(warned))
    type(warned).objects.filter(pk=warned.pk).update(state="hibernated")
    response = Client().get(f"/idle/snooze/{token}")
    assert response.status_code == 409
    assert "only a running workspace" in response.content.decode()
