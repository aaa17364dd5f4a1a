"""The e-mail an invitation sends, built here (a service) and sent by a task."""

import unicodedata
from typing import Any

from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string

from invitations.models import Invitation
from platform_site.text import BIDI_CONTROLS

SUBJECT_MAX_LENGTH = 200


def one_line(value: str, *, max_length: int = SUBJECT_MAX_LENGTH) -> str:
    """`value` fit for an e-mail header: whitespace (line breaks included) collapsed to single spaces, control and
    bidirectional-override characters dropped, and long text shortened. Names are validated when saved; this
    holds for rows that predate the validation or were written around it."""
    kept = []
    for char in value:
        if char.isspace():
            kept.append(" ")
        elif unicodedata.category(char) not in ("Cc", "Cs") and char not in BIDI_CONTROLS:
            kept.append(char)
    text = " ".join("".join(kept).split())
    return text if len(text) <= max_length else text[: max_length - 1].rstrip() + "…"


def invitation_email(*, invitation: Invitation, link: str) -> EmailMultiAlternatives:
    """The message for `invitation` (plain text and HTML), addressed to the invitee. No token is stored: the
    link is derived by the caller when the message is built."""
    inviter = invitation.invited_by
    context: dict[str, Any] = {
        "invitation": invitation,
        "project": invitation.project,
        "organization": invitation.project.organization,
        "inviter_name": one_line(inviter.display_name, max_length=80) if inviter else "A Carrel administrator",
        "inviter_email": inviter.email if inviter else "",
        "link": link,
        "expires_at": invitation.expires_at,
    }
    # Headers never hold line breaks (Django refuses them, and the e-mail would never go out): one line each.
    project_name = one_line(invitation.project.name, max_length=100)
    email = EmailMultiAlternatives(
        subject=one_line(f"{context['inviter_name']} invited you to {project_name} on Carrel"),
        body=render_to_string("invitations/email.txt", context),
        to=[invitation.email],
        reply_to=[context["inviter_email"]] if context["inviter_email"] else None,
    )
    email.attach_alternative(render_to_string("invitations/email.html", context), "text/html")
    return email
