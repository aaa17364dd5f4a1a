"""Organization, token and people's names: no control or bidirectional-override characters."""

import pytest
from django.contrib.admin.utils import quote
from django.test import Client

from accounts import services
from accounts.models import ApiToken, Organization, User
from platform_site.errors import ValidationFailed
from tests.conftest import assert_error, make_user

BAD = ["Lab\nA", "Lab\u202eA", "Lab\x00A"]


@pytest.mark.parametrize("name", BAD)
def test_it_refuses_an_organization_name_with_control_or_bidi_characters(owner, owner_client, org, name):
    error = assert_error(owner_client.post("/api/v1/organizations", {"name": name}, format="json"), 400)
    assert error["code"] == "VALIDATION_ERROR" and "name" in error["fields"]
    response = owner_client.patch(f"/api/v1/organizations/{org.id}", {"name": name}, format="json")
    assert_error(response, 400, "VALIDATION_ERROR")
    with pytest.raises(ValidationFailed):
        services.organization_create(actor=owner, name=name)
    with pytest.raises(ValidationFailed):
        services.organization_update(actor=owner, organization=org, name=name)
    assert list(Organization.objects.values_list("name", flat=True)) == ["Lab A"]


@pytest.mark.parametrize("name", BAD)
def test_it_refuses_a_token_name_with_control_or_bidi_characters(owner, owner_client, name):
    error = assert_error(owner_client.post("/api/v1/tokens", {"name": name}, format="json"), 400, "VALIDATION_ERROR")
    assert "name" in error["fields"]
    with pytest.raises(ValidationFailed):
        services.token_create(actor=owner, name=name, scopes=["read"])
    assert ApiToken.objects.count() == 1  # the client's own


@pytest.mark.parametrize("name", BAD)
def test_profile_updates_refuse_control_or_bidi_characters(owner, name):
    with pytest.raises(ValidationFailed):
        services.user_update_profile(actor=owner, user=owner, first_name=name)
    with pytest.raises(ValidationFailed):
        services.user_update_profile(actor=owner, user=owner, last_name=name)
    services.user_update_profile(actor=owner, user=owner, first_name=" Ada ", last_name="Lovelace")
    owner.refresh_from_db()
    assert owner.display_name == "Ada Lovelace"


def test_names_from_elsewhere_are_shown_without_control_characters(owner):
    User.objects.filter(pk=owner.pk).update(first_name="Ev\u202eil", last_name="Na\nme")
    owner.refresh_from_db()
    assert owner.display_name == "Evil Name"


def test_names_an_oauth_provider_sends_are_cleaned(db, rf):
    from allauth.socialaccount.models import SocialAccount, SocialLogin

    from accounts.adapter import SocialAccountAdapter

    login = SocialLogin(user=User(), account=SocialAccount(provider="github", uid="1"))
    user = SocialAccountAdapter().populate_user(
        rf.get("/"), login, {"email": "x@y.example", "first_name": "A\u202eB", "last_name": "C\nD"}
    )
    assert (user.first_name, user.last_name) == ("AB", "CD")


@pytest.mark.parametrize("name", BAD)
def test_the_admin_refuses_them_too(owner, org, name):
    root = make_user("root@carrel.example")
    root.is_staff = root.is_superuser = True
    root.save()
    browser = Client()
    browser.force_login(root)
    response = browser.post(
        f"/admin/accounts/organization/{quote(org.pk)}/change/",
        {
            "name": name,
            "slug": org.slug,
            "memberships-TOTAL_FORMS": "0",
            "memberships-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 200  # the form again, with the error
    assert "errornote" in response.content.decode()
    org.refresh_from_db()
    assert org.name == "Lab A"


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("Ada Lovelace", "Ada Lovelace"),  # the plain-ASCII fast path returns it as it is
        ("Zoë Ñúñez", "Zoë Ñúñez"),
        ("Ada\u202e Lovelace", "Ada Lovelace"),
        ("Ada\tLove\x7flace\n", "AdaLovelace"),
        ("\u2066Ada\u2069", "Ada"),
    ],
)
def test_without_unsafe_characters_keeps_clean_names_and_drops_the_rest(raw, shown):
    from accounts.models import without_unsafe_characters

    assert without_unsafe_characters(raw) == shown
