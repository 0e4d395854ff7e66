"""Logging set-up whose one promise is that no secret reaches a log line, at any level, in either format.

MailPartner takes its key in the query string, and httpx logs every request URL at INFO: the URL's
`apiKey` is masked by pattern, and every configured secret is masked by value, in the message, its
arguments, any traceback and an audit line's fields.

`LOG_FORMAT=text` (the default) writes `time level logger: message`; `LOG_FORMAT=json` writes one JSON
object a line (python-json-logger) with time, level, logger, message and the line's fields: an audit
line's fields stand at the top level, beside `"message": "audit request"`.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterable
from typing import Any

from pythonjsonlogger.json import JsonFormatter

MASK = "[REDACTED]"
AUDIT_FIELDS = "audit_fields"  # the LogRecord attribute where an audit line keeps its fields
_KEY_IN_URL = re.compile(r"(?i)(apiKey=)[^&\s\"']+")
_SLACK_TOKEN = re.compile(r"\bx(?:ox[abprse]|app)-[A-Za-z0-9-]+")


class RedactingFilter(logging.Filter):
    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        # Short values would mask ordinary words; real keys and secrets are long.
        self._secrets = sorted({s for s in secrets if s and len(s) >= 6}, key=len, reverse=True)

    def redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, MASK)
        text = _KEY_IN_URL.sub(r"\1" + MASK, text)
        return _SLACK_TOKEN.sub(MASK, text)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        record.msg, record.args = self.redact(message), None
        fields = getattr(record, AUDIT_FIELDS, None)
        if isinstance(fields, dict):  # a reason is typed by people: it could hold anything
            setattr(record, AUDIT_FIELDS, {k: self.redact(v) if isinstance(v, str) else v for k, v in fields.items()})
        return True


class JsonLines(JsonFormatter):
    """One JSON object per line; an audit line's fields are lifted to the top level."""

    def __init__(self, redactor: RedactingFilter, **options: Any) -> None:
        super().__init__(**options)
        self._redactor = redactor

    def formatException(self, ei: Any) -> str:
        # The traceback is formatted here anew, not taken from the filtered record: mask it again.
        return self._redactor.redact(super().formatException(ei))

    def add_fields(self, log_record: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]) -> None:
        super().add_fields(log_record, record, message_dict)
        fields = log_record.pop(AUDIT_FIELDS, None)
        if isinstance(fields, dict):
            log_record["message"] = f"audit {fields.get('action')}"
            log_record.update({k: v for k, v in fields.items() if k not in ("time", "message", "level", "logger")})


class _BoltTokenNotice(logging.Filter):
    """Bolt reads SLACK_BOT_TOKEN from the environment by itself, then warns that the client we pass
    (pointed at SLACK_API_URL), and the authorize that serves its token, win over it: true, intended, and
    noise in every start-up log."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return "`token` will be unused" not in message and "will be ignored" not in message


class _Chatter(logging.Filter):
    """Lines that tell an operator nothing to act on, below DEBUG: Alembic's set-up (its plugins, "Context
    impl", "Will assume …"; its "Running upgrade" lines stay), and slack_sdk's own lines for each failed call
    and each of its retries, whose caller logs the failure once, in its own words."""

    NOISE = (
        ("alembic.runtime.plugins", ""),
        ("alembic.runtime.migration", "Context impl"),
        ("alembic.runtime.migration", "Will assume"),
        *(
            (client, line)
            for client in ("slack_sdk.web.base_client", "slack_sdk.web.async_base_client")
            for line in ("Failed to send a request", "A retry handler found")
        ),
    )

    def filter(self, record: logging.LogRecord) -> bool:
        return not any(record.name == name and str(record.msg).startswith(start) for name, start in self.NOISE)


def configure_logging(
    level: str, secrets: Iterable[str], stream: object = None, *, json_lines: bool = False
) -> RedactingFilter:
    """Send every log line, ours and the libraries', through one redacting handler."""
    handler = logging.StreamHandler(stream or sys.stderr)  # type: ignore[arg-type]
    redactor = RedactingFilter(secrets)
    if json_lines:
        handler.setFormatter(
            JsonLines(
                redactor,
                fmt="{levelname}{name}{message}",
                style="{",
                rename_fields={"levelname": "level", "name": "logger"},
                timestamp="time",
            )
        )
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(redactor)
    handler.addFilter(_BoltTokenNotice())
    if logging.getLevelName(level) > logging.DEBUG:
        handler.addFilter(_Chatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    # Request lines of the HTTP clients repeat what our own lines say, with the key in them.
    for noisy in ("httpx", "httpcore", "slack_sdk.web.base_client", "urllib3"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)))
    return redactor
