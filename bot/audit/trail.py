"""Audit trail: one JSON line per action on the `bot.audit` logger, and the same record as a history row.

Fields: time, action, actor, channel, thread, mail ids, reason, result (MailPartner code or failure kind),
latency of the API call. Never a secret: only ids, labels and what people typed as a reason are written.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from bot.audit.logs import AUDIT_FIELDS

if TYPE_CHECKING:
    from bot.audit.metrics import Metrics
    from bot.store import Store

audit_log = logging.getLogger("bot.audit")

ACTIONS = (
    "request",
    "refusal",
    "confirm",
    "keep",
    "expiry",
    "outcome",
    "duplicate",
    "busy",
    "post_failed",
    "recovery",
    "step_end",
)


def audit(
    action: str,
    *,
    actor: str,
    channel: str,
    thread: str = "",
    mail_ids: tuple[str, ...] | list[str] = (),
    **extra: Any,
) -> dict[str, Any]:
    """Write one audit line and return it (tests and the audit channel reuse the record)."""
    if action not in ACTIONS:
        raise ValueError(f"unknown audit action {action!r}")
    record: dict[str, Any] = {
        "time": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "action": action,
        "actor": actor,
        "channel": channel,
        "thread": thread,
        "mail_ids": list(mail_ids),
    }
    record.update(extra)
    audit_log.info(json.dumps(record, ensure_ascii=False, sort_keys=False), extra={AUDIT_FIELDS: record})
    return record


class AuditTrail:
    """`audit()` plus a history row in the store and its count in the metrics: what the bot's parts call
    to record an action. `sandbox`: every record says so, so that no history row of the simulator's passes
    for a real one."""

    def __init__(self, store: Store | None = None, metrics: Metrics | None = None, *, sandbox: bool = False) -> None:
        self.store = store
        self.metrics = metrics
        self.sandbox = sandbox

    def __call__(
        self,
        action: str,
        *,
        actor: str,
        channel: str,
        thread: str = "",
        mail_ids: tuple[str, ...] | list[str] = (),
        **extra: Any,
    ) -> dict[str, Any]:
        if self.sandbox:
            extra["sandbox"] = True
        record = audit(action, actor=actor, channel=channel, thread=thread, mail_ids=mail_ids, **extra)
        if self.store is not None:
            self.store.record(record)  # queued: the caller never waits for the database
        if self.metrics is not None:
            self.metrics.observe(record)
        return record
