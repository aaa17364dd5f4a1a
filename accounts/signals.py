"""Sign-ups and logins through allauth (password or OAuth) go into the audit trail too."""

from allauth.account.signals import user_signed_up
from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.dispatch import receiver

from audit.services import audit_record


@receiver(user_signed_up)
def audit_signup(sender, request, user, **kwargs) -> None:
    sociallogin = kwargs.get("sociallogin")
    provider = sociallogin.account.provider if sociallogin else "password"
    audit_record(actor=user, action="user.signup", target=user, metadata={"provider": provider})


@receiver(user_logged_in)
def audit_login(sender, request, user, **kwargs) -> None:
    audit_record(actor=user, action="user.login", target=user)


@receiver(user_login_failed)
def count_failed_login(sender, credentials, request=None, **kwargs) -> None:
    # Failed password logins count against the address (the budget bad bearer tokens share) and against
    # the account's e-mail, whatever address they come from (accounts.authentication's lockout).
    from platform_site.api import ratelimit

    login = credentials.get("email") or credentials.get("username")
    account = [("email", login)] if isinstance(login, str) and login else []
    ratelimit.record_failed_auth(
        getattr(request, "client_ip", None), credentials=account, per_address=request is not None
    )
