"""The actor for what Carrel does by itself (TTL expiry, reconciliation, membership expiry).

Services take an `actor`. A person is a User; the system is `SYSTEM`, never `None`, so that no service
can mistake "nobody said who" for "allowed to do anything". Audit rows record it as "system".
"""

from typing import TYPE_CHECKING, TypeAlias, TypeGuard

if TYPE_CHECKING:
    from django.contrib.auth.models import AnonymousUser

    from accounts.models import User


class SystemActor:
    """Carrel itself. Not a user: not authenticated, no id, no e-mail; permission checks allow it by name."""

    is_authenticated = False
    is_anonymous = False
    is_superuser = False
    is_staff = False
    pk = None
    id = None
    email = ""

    def __str__(self) -> str:
        return "system"

    def __repr__(self) -> str:
        return "SYSTEM"


SYSTEM = SystemActor()

# For annotations: who acts (a person or Carrel itself), and who asks (also nobody yet: an anonymous request).
Actor: TypeAlias = "User | SystemActor"
Caller: TypeAlias = "User | SystemActor | AnonymousUser | None"


def is_system(actor: object) -> TypeGuard[SystemActor]:
    return isinstance(actor, SystemActor)
