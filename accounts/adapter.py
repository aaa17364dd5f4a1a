"""allauth hooks for accounts created through an OAuth/OIDC provider."""

from allauth.socialaccount.adapter import DefaultSocialAccountAdapter

from accounts.models import without_unsafe_characters


class SocialAccountAdapter(DefaultSocialAccountAdapter):
    def populate_user(self, request, sociallogin, data):
        """Names the provider sends lose control and bidirectional-override characters: they are shown to
        other people (member lists, invitation e-mails) and must read as what they are."""
        user = super().populate_user(request, sociallogin, data)
        for field in ("first_name", "last_name"):
            value = without_unsafe_characters(getattr(user, field, "") or "").strip()
            setattr(user, field, value[: user._meta.get_field(field).max_length])
        return user
