from allauth.account.adapter import DefaultAccountAdapter
from django.urls import reverse

from invitations.views import LEGACY_SESSION_KEY, SESSION_KEY


class AccountAdapter(DefaultAccountAdapter):
    def get_login_redirect_url(self, request) -> str:
        # Whoever arrived through an invitation link goes back to it after logging in or confirming an e-mail.
        if request.session.get(SESSION_KEY) or request.session.get(LEGACY_SESSION_KEY):
            return reverse("invitation-page")
        return super().get_login_redirect_url(request)
