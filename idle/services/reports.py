"""A report of a workspace's signals (a heartbeat, or what CloudWatch measured) moves its WorkspaceIdle row.

One home for how coverage and activity advance, whichever source reported."""

from datetime import datetime

from idle.decision import STALE_AFTER, active_reasons
from idle.models import WorkspaceIdle


def report_changes(
    state: WorkspaceIdle, *, source: str, at: datetime, sample: dict, last_input_at: datetime | None = None
) -> dict:
    """The field values `state` takes after a report measured at `at` (apply them with a conditional update or
    bulk_update). A report after a gap longer than its source's staleness (or from another source) starts a new
    coverage; `last_input_at` (the user's last keystroke or click, from the agent) counts as activity then."""
    reasons = active_reasons(sample, state)
    changes: dict = {"signal_source": source, "last_sample": sample, "active_reasons": reasons}
    previous = state.last_observed_at
    continuous = (
        state.signal_source == source
        and previous is not None
        and state.observed_since is not None
        and at - previous <= STALE_AFTER[source]
    )
    if not continuous:
        changes["observed_since"] = at
    if previous is None or at >= previous:
        changes["last_observed_at"] = at
    last_active = state.last_active_at
    if reasons and (last_active is None or at > last_active):
        last_active = at
    if last_input_at is not None:
        last_input_at = min(last_input_at, at)
        if last_active is None or last_input_at > last_active:
            last_active = last_input_at
    changes["last_active_at"] = last_active
    return changes
