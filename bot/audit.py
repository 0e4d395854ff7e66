"""Audit trail: one JSON line per action on the `bot.audit` logger, and outcomes to an audit channel.

Fields: time, action, actor, channel, thread, mail ids, result (MailPartner code or failure kind),
latency of the API call. Never a secret: only ids and labels are written.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

audit_log = logging.getLogger("bot.audit")

ACTIONS = ("request", "refusal", "confirm", "keep", "expiry", "outcome", "duplicate", "post_failed", "step_end")


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
    audit_log.info(json.dumps(record, ensure_ascii=False, sort_keys=False))
    return record
