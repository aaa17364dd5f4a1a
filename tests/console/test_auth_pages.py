"""allauth's pages (sign-in, sign-up, password, e-mail) and the invitation page wear the console's look."""

import re

import pytest
from allauth.account.models import EmailAddress
from django.core import mail
from django.test import Client
from django.urls import reverse

from tests.conftest import make_user
from tests.console.conftest import signed_in

PASSWORD = "correct horse battery staple"


def _verified(user):
    EmailAddress.objects.update_or_create(user=user, email=user.email, defaults={"verified": True, "primary": True})
    return user


def assert_console_look(html: str):
    assert "console/carrel.css" in html
    assert "console/auth.css" in html
    assert 'class="site-header"' in html
    assert "Menu:" not in html  # allauth's unstyled menu list
    assert html.count("<h1") == 1


def _field(html: str, name: str) -> str:
    match = re.search(rf'<input[^>]*name="{name}"[^>]*>', html)
    assert match, f"no input named {name}"
    return match.group(0)


def _label_for(html: str, input_tag: str) -> bool:
    field_id = re.search(r'id="([^"]+)"', input_tag).group(1)
    return f'<label for="{field_id}">' in html


@pytest.mark.parametrize(
    ("route", "fields"),
    [
        ("account_login", ["login", "password", "remember"]),
        ("account_signup", ["email", "password1", "password2"]),
        ("account_reset_password", ["email"]),
    ],
)
def test_it_renders_the_entrance_pages_in_the_console_frame(db, route, fields):
    response = Client().get(reverse(route))
    html = response.content.decode()
    assert response.status_code == 200
    assert_console_look(html)
    assert 'class="auth-card"' in html
    assert 'class="page-narrow"' in html
    assert 'href="/accounts/login/"' in html or route == "account_login"
    for name in fields:
        assert _label_for(html, _field(html, name)), f"{name} has no label"
    assert 'name="csrfmiddlewaretoken"' in html


def test_it_links_sign_in_sign_up_and_reset(db):
    login = Client().get(reverse("account_login")).content.decode()
    assert reverse("account_signup") in login
    assert reverse("account_reset_password") in login
    signup = Client().get(reverse("account_signup")).content.decode()
    assert reverse("account_login") in signup
    reset = Client().get(reverse("account_reset_password")).content.decode()
    assert reverse("account_login") in reset


def test_it_lists_the_configured_providers_under_a_divider(db, settings):
    settings.SOCIALACCOUNT_PROVIDERS = {"github": {"APPS": [{"client_id": "id", "secret": "s"}]}}
    html = Client().get(reverse("account_login")).content.decode()
    assert 'class="divider"' in html
    assert 'class="providers"' in html
    assert "Continue with GitHub" in html


def test_it_signs_in_through_the_form_with_csrf_on(db):
    user = _verified(make_user("reader@lab-a.example", PASSWORD))
    client = Client(enforce_csrf_checks=True)
    page = client.get(reverse("account_login"))
    token = page.cookies["csrftoken"].value
    without = client.post(reverse("account_login"), {"login": user.email, "password": PASSWORD})
    assert without.status_code == 403
    response = client.post(
        reverse("account_login"), {"login": user.email, "password": PASSWORD, "csrfmiddlewaretoken": token}
    )
    assert response.status_code == 302
    home = client.get(response["Location"], follow=True)
    assert home.context["user"] == user


def test_it_shows_errors_next_to_the_fields(db):
    client = Client()
    response = client.post(reverse("account_signup"), {"email": "not-an-address", "password1": "x", "password2": "y"})
    html = response.content.decode()
    assert response.status_code == 200
    assert_console_look(html)
    email = _field(html, "email")
    assert 'aria-invalid="true"' in email
    assert 'aria-describedby="id_email_error"' in email
    assert 'class="field-error" id="id_email_error"' in html

    wrong = client.post(reverse("account_login"), {"login": "nobody@lab-a.example", "password": "wrong"})
    html = wrong.content.decode()
    assert wrong.status_code == 200
    assert 'class="form-error"' in html
    assert "not correct" in html or "incorrect" in html.lower()


def test_it_renders_the_account_pages_in_the_console_frame(db):
    user = _verified(make_user("reader@lab-a.example", PASSWORD))
    client = signed_in(user)
    for route in ("account_email", "account_change_password"):
        response = client.get(reverse(route))
        html = response.content.decode()
        assert response.status_code == 200, route
        assert_console_look(html)
        assert 'class="tabs"' in html
        assert user.email in html
    email = client.get(reverse("account_email")).content.decode()
    assert 'class="badge badge-ok"' in email  # Verified
    assert _label_for(email, _field(email, "email"))


def test_it_renders_the_password_reset_and_verification_pages(db):
    user = _verified(make_user("reader@lab-a.example", PASSWORD))
    client = Client()
    response = client.post(reverse("account_reset_password"), {"email": user.email}, follow=True)
    assert response.status_code == 200
    assert_console_look(response.content.decode())
    link = re.search(r"https?://[^/\s]+(/accounts/password/reset/key/\S+)", mail.outbox[-1].body).group(1)
    key_page = client.get(link, follow=True)
    html = key_page.content.decode()
    assert key_page.status_code == 200
    assert_console_look(html)
    assert _label_for(html, _field(html, "password1"))

    new = Client()
    signup = new.post(
        reverse("account_signup"), {"email": "new@lab-a.example", "password1": PASSWORD, "password2": PASSWORD}
    )
    assert signup.status_code == 302
    sent = new.get(signup["Location"])
    assert sent.status_code == 200
    assert_console_look(sent.content.decode())


def test_it_renders_the_logout_page(db):
    user = _verified(make_user("reader@lab-a.example", PASSWORD))
    html = signed_in(user).get(reverse("account_logout")).content.decode()
    assert_console_look(html)
