from typing import TYPE_CHECKING, Any, cast

from django.db import models

from audit.models import AuditEvent
from platform_site import request_context
from platform_site.actors import Actor

if TYPE_CHECKING:
    from accounts.models import Organization, User


def audit_record(
    *,
    actor: "Actor | None",
    action: str,
    target: models.Model,
    organization: "Organization | None" = None,
    metadata: dict[str, Any] | None = None,
) -> AuditEvent:
    """Record a mutating action. Call it inside the same transaction as the change it describes."""
    context = request_context.current()
    # A person (authenticated); SYSTEM and None are recorded without one.
    actor_user = cast("User | None", actor if actor is not None and getattr(actor, "is_authenticated", False) else None)
    return AuditEvent.objects.create(
        organization=organization,
        actor=actor_user,
        actor_label=getattr(actor_user, "email", "") or "system",
        action=action,
        target_type=target._meta.model_name or "",  # None only for abstract models
        target_id=str(target.pk),
        target_label=str(target)[:254],
        ip=context.ip,
        request_id=context.request_id,
        metadata=metadata or {},
    )
