from allauth.account.forms import LoginForm


class PrefilledLoginForm(LoginForm):
    """Login with the address pre-filled when an invitation page sends the visitor here (?email=...)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        request = getattr(self, "request", None)
        email = request.GET.get("email") if request is not None else None
        if email and "login" in self.fields and not self.is_bound:
            self.fields["login"].initial = email
