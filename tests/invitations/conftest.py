import pytest
from allauth.account.models import EmailAddress

from tests.conftest import make_user


def verify(user):
    """Mark the user's own address verified, as confirming the sign-up e-mail does."""
    EmailAddress.objects.update_or_create(user=user, email=user.email, defaults={"verified": True, "primary": True})
    return user


@pytest.fixture
def owner(db):
    """The project owner, with a verified address: only verified accounts send invitations."""
    return verify(make_user("owner@lab-a.example"))
