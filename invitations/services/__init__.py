"""Invitations: send, resend, revoke, accept, decline, bulk, expiry. Rules live here, for API, browser and admin.

limits     the daily limits per inviter and per organization
links      tokens, links and link proofs
sending    send, resend, revoke
answering  accept, decline
bulk       many at once
expiry     invitations and memberships past their dates
"""

from invitations.services.answering import invitation_accept, invitation_decline
from invitations.services.bulk import BulkResult, invitation_bulk
from invitations.services.expiry import invitations_expire, memberships_expire
from invitations.services.limits import (
    DEFAULT_BULK_MAX,
    DEFAULT_PER_INVITER_PER_DAY,
    DEFAULT_PER_ORGANIZATION_PER_DAY,
    LIMIT_WINDOW,
    MESSAGE_MAX_LENGTH,
    Gone,
    InvitationRateLimited,
    bulk_max,
    per_inviter_per_day,
    per_organization_per_day,
)
from invitations.services.links import (
    check_usable,
    invitation_by_link_proof,
    invitation_by_token,
    invitation_link,
    invitation_token,
    link_proof,
    token_digest,
)
from invitations.services.sending import clean_message, invitation_resend, invitation_revoke, invitation_send

__all__ = [
    "BulkResult",
    "DEFAULT_BULK_MAX",
    "DEFAULT_PER_INVITER_PER_DAY",
    "DEFAULT_PER_ORGANIZATION_PER_DAY",
    "Gone",
    "InvitationRateLimited",
    "LIMIT_WINDOW",
    "MESSAGE_MAX_LENGTH",
    "bulk_max",
    "check_usable",
    "clean_message",
    "invitation_accept",
    "invitation_bulk",
    "invitation_by_link_proof",
    "invitation_by_token",
    "invitation_decline",
    "invitation_link",
    "invitation_resend",
    "invitation_revoke",
    "invitation_send",
    "invitation_token",
    "invitations_expire",
    "link_proof",
    "memberships_expire",
    "per_inviter_per_day",
    "per_organization_per_day",
    "token_digest",
]
