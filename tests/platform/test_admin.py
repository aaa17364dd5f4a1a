import pytest
from django.apps import apps
from django.contrib import admin
from django.contrib.admin.utils import quote
from django.test import Client
from django.urls import reverse

from accounts.models import ApiToken
from tests.conftest import bearer_client, make_user
from workspaces.models import Workspace

OUR_APPS = {"accounts", "audit", "projects", "workspaces", "budgets", "invitations", "workspace_templates"}


def test_every_model_of_ours_is_in_the_admin():
    ours = [model for model in apps.get_models() if model._meta.app_label in OUR_APPS]
    assert ours
    missing = [model.__name__ for model in ours if model not in admin.site._registry]
    assert missing == []


@pytest.fixture
def staff_client(owner, project, outsider):
    superuser = make_user("root@carrel.example")
    superuser.is_staff = superuser.is_superuser = True
    superuser.save()
    Workspace.objects.create(organization=project.organization, project=project, owner=owner, name="ws1")
    bearer_client(owner)
    client = Client()
    client.force_login(superuser)
    return client


def test_every_admin_changelist_and_change_page_renders(staff_client):
    for model, model_admin in admin.site._registry.items():
        if model._meta.app_label not in OUR_APPS:
            continue
        info = (model._meta.app_label, model._meta.model_name)
        assert staff_client.get(reverse(f"admin:{info[0]}_{info[1]}_changelist")).status_code == 200, info
        assert staff_client.get(reverse(f"admin:{info[0]}_{info[1]}_changelist"), {"q": "lab"}).status_code == 200, info
        obj = model._default_manager.first()
        if obj is not None:
            # The admin escapes "_" in URLs: an id like ws_26ab... must be quoted or it reads as "ws&ab...".
            change_url = reverse(f"admin:{info[0]}_{info[1]}_change", args=[quote(obj.pk)])
            assert staff_client.get(change_url).status_code == 200, info


def test_the_admin_revokes_tokens_through_the_service(staff_client):
    token = ApiToken.objects.get()
    response = staff_client.post(
        reverse("admin:accounts_apitoken_changelist"),
        {"action": "revoke_selected", "_selected_action": [token.pk]},
    )
    assert response.status_code == 302
    token.refresh_from_db()
    assert token.revoked_at is not None
    from audit.models import AuditEvent

    assert AuditEvent.objects.filter(action="token.revoke", target_id=token.pk).exists()
