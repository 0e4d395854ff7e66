"""Settings: read once from the environment, validated as a whole, then passed in everywhere.

Every problem is collected before reporting, so an operator fixes a broken `.env` in one pass
instead of one restart per mistake.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import Enum
from pathlib import Path

from bot.http import proxy_problems
from bot.mailpartner import client as mailpartner
from bot.mailpartner.sandbox import SANDBOX_ACCOUNTS
from bot.store.engine import database_url, sqlite_path
from bot.words import LANGUAGES

DEFAULT_SLACK_API_URL = "https://slack.com/api/"
DATABASE_FILE = "cancel-mail.db"  # the SQLite store's name inside the state directory
# The sandbox keeps apart from the real store: its own default database, and what its mails became.
SANDBOX_DATABASE_FILE = "cancel-mail-sandbox.db"
SANDBOX_STATE_FILE = "sandbox-mails.json"
# Settings that hold a secret: each may also be read from the file `<NAME>_FILE` names (Docker and
# Kubernetes secrets). DATABASE_URL counts: it may carry a password.
SECRET_SETTINGS = ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_APP_TOKEN", "MAILPARTNER_API_KEY", "DATABASE_URL")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
LOG_FORMATS = ("text", "json")
# What a newcomer with no key reads, wherever the key is missing: where settings go, and the way to try first.
MISSING_API_KEY = (
    "MAILPARTNER_API_KEY is not set: put your MailPartner key in .env (`cp .env.example .env` lists every "
    "setting), or set MAILPARTNER_SANDBOX=true to try the bot on the built-in MailPartner simulator"
)

# MAILPARTNER_ACCOUNT_BRAND_A_API_KEY (or …_API_KEY_FILE) adds the account `brand-a`.
ACCOUNT_VARIABLE = re.compile(r"^MAILPARTNER_ACCOUNT_([A-Z0-9_]+)_API_KEY(_FILE)?$")
_USER_ID = re.compile(r"^[UW][A-Z0-9]{2,}$")
_CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]{2,}$")
_USERGROUP_ID = re.compile(r"^S[A-Z0-9]{2,}$")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}
SPELLINGS = "true, yes, on or 1; false, no, off, 0 or empty"  # what a boolean setting accepts, as its problem says


class Mode(Enum):
    SOCKET = "socket"
    HTTP = "http"
    CONSOLE = "console"


class SettingsError(Exception):
    """One or more settings are missing or malformed; `problems` holds one line per problem."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class Settings:
    slack_bot_token: str = ""
    slack_signing_secret: str = ""
    slack_app_token: str = ""
    slack_api_url: str = DEFAULT_SLACK_API_URL
    port: int = 3000
    mailpartner_api_key: str = field(default="", repr=False)
    # Every account by name, `default` being MAILPARTNER_API_KEY's; keys are secrets, never shown.
    mailpartner_accounts: Mapping[str, str] = field(default_factory=dict, repr=False)
    channel_accounts: Mapping[str, str] = field(default_factory=dict)  # channel id → account name
    mailpartner_base_url: str = mailpartner.BASE_URL
    mailpartner_timeout: float = mailpartner.TIMEOUT
    mailpartner_deadline: float = mailpartner.DEADLINE
    mailpartner_sandbox: bool = False
    allowed_users: frozenset[str] = frozenset()
    allowed_channels: frozenset[str] = frozenset()
    allowed_usergroups: frozenset[str] = frozenset()
    require_second_person: bool = False
    require_reason: bool = False
    prompt_ttl: float = 15 * 60.0
    audit_channel: str = ""
    workers: int = mailpartner.CONNECTIONS  # MailPartner calls in flight at most
    max_in_flight: int = 2000  # mails whose cancel is under way in one process, at most; past it, "busy"
    database_url: str = field(default="sqlite:///" + DATABASE_FILE, repr=False)  # may hold a password
    # The folder of the default store and the sandbox's state; the store's folder is created only when
    # DATABASE_URL is left to its default, so that a typo in an explicit URL never starts an empty store.
    state_dir: str = ""
    default_store: bool = True
    history_days: int = 365
    language: str = "en"
    log_level: str = "INFO"
    log_format: str = "text"
    metrics_port: int = 0  # 0: no metrics endpoint
    socket_grace: float = 30.0  # Socket Mode: seconds the WebSocket may be down before /healthz says 503
    drain_grace: float = 5.0  # HTTP mode: seconds /healthz says 503 on SIGTERM, still serving, before closing
    max_body_bytes: int = 1 << 20  # HTTP mode: a larger request body gets 413 (Slack's payloads are far smaller)
    delivery_deadline: float = 86400.0  # seconds a message owed to a person is tried before it is given up

    @property
    def sandbox_state(self) -> Path:
        """Where the sandbox keeps the mails cancelled, across processes."""
        return Path(self.state_dir or ".") / SANDBOX_STATE_FILE

    @property
    def mode(self) -> Mode:
        if self.slack_app_token:
            return Mode.SOCKET
        if self.slack_bot_token:
            return Mode.HTTP
        return Mode.CONSOLE

    @classmethod
    def from_env(cls, env: Mapping[str, str], *, console: bool = False) -> Settings:
        """Build settings from `env`. `console=True` skips the Slack checks (the console fakes Slack)."""
        reader = _Reader(env)
        default = cls()  # every default is the dataclass field's: one place
        state_dir = reader.state_dir("CANCEL_MAIL_STATE_DIR")
        sandbox = reader.boolean("MAILPARTNER_SANDBOX", default.mailpartner_sandbox)
        database_file = SANDBOX_DATABASE_FILE if sandbox else DATABASE_FILE
        settings = cls(
            slack_bot_token=reader.secret("SLACK_BOT_TOKEN"),
            slack_signing_secret=reader.secret("SLACK_SIGNING_SECRET"),
            slack_app_token=reader.secret("SLACK_APP_TOKEN"),
            slack_api_url=reader.url("SLACK_API_URL", default.slack_api_url, trailing_slash=True),
            port=reader.integer("PORT", default.port, low=1, high=65535),
            mailpartner_api_key=reader.secret("MAILPARTNER_API_KEY"),
            mailpartner_base_url=reader.url("MAILPARTNER_BASE_URL", default.mailpartner_base_url),
            mailpartner_timeout=reader.seconds("MAILPARTNER_TIMEOUT", default.mailpartner_timeout, high=120),
            mailpartner_deadline=reader.seconds("MAILPARTNER_DEADLINE", default.mailpartner_deadline, high=600),
            mailpartner_sandbox=sandbox,
            allowed_users=reader.ids("CANCEL_MAIL_ALLOWED_USERS", _USER_ID, "user IDs like U012ABCDEF"),
            allowed_channels=reader.ids("CANCEL_MAIL_ALLOWED_CHANNELS", _CHANNEL_ID, "channel IDs like C012ABCDEF"),
            allowed_usergroups=reader.ids(
                "CANCEL_MAIL_ALLOWED_USERGROUPS", _USERGROUP_ID, "user group IDs like S012ABCDEF"
            ),
            require_second_person=reader.boolean("CANCEL_MAIL_REQUIRE_SECOND_PERSON", default.require_second_person),
            require_reason=reader.boolean("CANCEL_MAIL_REQUIRE_REASON", default.require_reason),
            prompt_ttl=reader.seconds("CANCEL_MAIL_PROMPT_TTL", default.prompt_ttl, high=86400),
            audit_channel=reader.channel("CANCEL_MAIL_AUDIT_CHANNEL"),
            workers=reader.integer("CANCEL_MAIL_WORKERS", default.workers, low=1, high=2048),
            max_in_flight=reader.integer("CANCEL_MAIL_MAX_IN_FLIGHT", default.max_in_flight, low=1, high=100_000),
            database_url=reader.database("DATABASE_URL", f"sqlite:///{state_dir / database_file}"),
            state_dir=str(state_dir),
            default_store=not (reader.text("DATABASE_URL") or reader.text("DATABASE_URL_FILE")),
            history_days=reader.integer("CANCEL_MAIL_HISTORY_DAYS", default.history_days, low=1, high=36500),
            language=reader.choice("BOT_LANGUAGE", default.language, tuple(LANGUAGES), lower=True),
            log_level=reader.choice("LOG_LEVEL", default.log_level, LOG_LEVELS, lower=False),
            log_format=reader.choice("LOG_FORMAT", default.log_format, LOG_FORMATS, lower=True),
            metrics_port=reader.integer("METRICS_PORT", default.metrics_port, low=1, high=65535),
            socket_grace=reader.seconds("CANCEL_MAIL_SOCKET_GRACE", default.socket_grace, high=3600),
            drain_grace=reader.seconds("CANCEL_MAIL_DRAIN_GRACE", default.drain_grace, high=300, zero=True),
            max_body_bytes=reader.integer(
                "CANCEL_MAIL_MAX_BODY_BYTES", default.max_body_bytes, low=64 * 1024, high=64 << 20
            ),
            delivery_deadline=reader.seconds(
                "CANCEL_MAIL_DELIVERY_DEADLINE", default.delivery_deadline, high=7 * 86400
            ),
        )
        accounts = reader.accounts(settings.mailpartner_api_key)
        channels = reader.channel_accounts("CANCEL_MAIL_CHANNEL_ACCOUNTS", accounts, settings.mailpartner_sandbox)
        settings = replace(settings, mailpartner_accounts=accounts, channel_accounts=channels)
        reader.problems.extend(proxy_problems(env))
        if not console:
            reader.problems.extend(settings._slack_problems())
        if not settings.mailpartner_sandbox and not accounts and not console:
            reader.problems.append(MISSING_API_KEY)
        if reader.problems:
            raise SettingsError(reader.problems)
        return settings

    def _slack_problems(self) -> list[str]:
        problems = []
        if self.slack_bot_token and not self.slack_bot_token.startswith("xoxb-"):
            problems.append("SLACK_BOT_TOKEN must be a bot token starting with xoxb-")
        if self.slack_app_token and not self.slack_app_token.startswith("xapp-"):
            problems.append("SLACK_APP_TOKEN must be an app-level token starting with xapp-")
        if self.slack_app_token and not self.slack_bot_token:
            problems.append("SLACK_BOT_TOKEN is required in Socket Mode (SLACK_APP_TOKEN is set)")
        if self.mode is Mode.HTTP and not self.slack_signing_secret:
            problems.append(
                "SLACK_SIGNING_SECRET is required in HTTP mode (SLACK_BOT_TOKEN is set); "
                "for Socket Mode set SLACK_APP_TOKEN instead"
            )
        if self.metrics_port and self.metrics_port == self.port and self.mode is not Mode.CONSOLE:
            problems.append(f"METRICS_PORT must differ from PORT ({self.port}): metrics never go on the Slack port")
        if self.mode is Mode.CONSOLE and self.slack_signing_secret:
            problems.append("SLACK_BOT_TOKEN is required when SLACK_SIGNING_SECRET is set")
        return problems


class _Reader:
    """Parses one variable at a time, recording a readable problem instead of raising."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env
        self.problems: list[str] = []

    def text(self, name: str) -> str:
        return self.env.get(name, "").strip()

    def secret(self, name: str) -> str:
        """`name`, or the contents of the file `<name>_FILE` names; setting both is a mistake worth a stop."""
        value, path = self.text(name), self.text(f"{name}_FILE")
        if not path:
            return value
        if value:
            self.problems.append(f"{name} and {name}_FILE are both set: keep one")
            return value
        try:
            return Path(path).read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as error:
            reason = error.strerror if isinstance(error, OSError) and error.strerror else type(error).__name__
            self.problems.append(f"{name}_FILE: cannot read {path}: {reason}")
            return ""

    def state_dir(self, name: str) -> Path:
        """Where the default store lives: the setting, else systemd's StateDirectory=, else the XDG state home.

        Never the working directory: the same service must find the same store however it is started.
        """
        raw = self.text(name) or self.text("STATE_DIRECTORY").split(":")[0]
        if raw:
            path = Path(raw).expanduser()
            if not path.is_absolute():
                self.problems.append(f"{name} must be an absolute path, got {raw!r}")
            return path
        home = self.text("XDG_STATE_HOME") or os.path.join(
            self.text("HOME") or os.path.expanduser("~"), ".local", "state"
        )
        return Path(home) / "cancel-mail-bot"

    def url(self, name: str, default: str, *, trailing_slash: bool = False) -> str:
        value = self.text(name) or default
        if not re.match(r"^https?://[^\s/]+", value):
            self.problems.append(f"{name} must be an http(s) URL, got {value!r}")
            return default
        if trailing_slash and not value.endswith("/"):
            value += "/"
        return value if trailing_slash else value.rstrip("/")

    def integer(self, name: str, default: int, *, low: int, high: int) -> int:
        raw = self.text(name)
        if not raw:
            return default
        try:
            value = int(raw)
        except ValueError:
            self.problems.append(f"{name} must be a whole number, got {raw!r}")
            return default
        if not low <= value <= high:
            self.problems.append(f"{name} must be between {low} and {high}, got {value}")
            return default
        return value

    def seconds(self, name: str, default: float, *, high: float, zero: bool = False) -> float:
        """A duration in seconds, more than 0 (or 0 too, with `zero`) and at most `high`."""
        raw = self.text(name)
        if not raw:
            return default
        try:
            value = float(raw)
        except ValueError:
            self.problems.append(f"{name} must be a number of seconds, got {raw!r}")
            return default
        if value < 0 or (value == 0 and not zero) or value > high:
            least = "at least 0" if zero else "more than 0"
            self.problems.append(f"{name} must be {least} and at most {high:g} seconds, got {raw}")
            return default
        return value

    def boolean(self, name: str, default: bool) -> bool:
        raw = self.text(name).lower()
        if name not in self.env:
            return default
        if raw in _TRUE:
            return True
        if raw in _FALSE:
            return False
        self.problems.append(f"{name} must be true or false ({SPELLINGS}), got {raw!r}")
        return default

    def ids(self, name: str, pattern: re.Pattern[str], what: str) -> frozenset[str]:
        items = [item.strip() for item in self.text(name).split(",") if item.strip()]
        bad = [item for item in items if not pattern.match(item)]
        if bad:
            self.problems.append(f"{name} must list {what}, separated by commas; not valid: {', '.join(bad)}")
        return frozenset(item for item in items if pattern.match(item))

    def database(self, name: str, default: str) -> str:
        explicit = self.secret(name)
        try:
            path = sqlite_path(database_url(explicit or default))
        except ValueError as error:
            self.problems.append(str(error))
            return default
        # Only the default store's folder is made at start: in a URL given on purpose, a missing folder is a
        # typo, and serving from a new, empty store would hide it.
        if explicit and path is not None and not path.parent.is_dir():
            self.problems.append(
                f"{name} names {path}, whose folder {path.parent} does not exist: fix the path, or create the "
                "folder for a new store"
            )
            return default
        return explicit or default

    def accounts(self, default_key: str) -> dict[str, str]:
        """MailPartner accounts by name: `default` for MAILPARTNER_API_KEY, then each
        MAILPARTNER_ACCOUNT_<NAME>_API_KEY as `<name>`, lower case, `_` as `-`."""
        from bot.mailpartner.accounts import ACCOUNT_NAME, DEFAULT

        found = {DEFAULT: default_key} if default_key else {}
        for variable in sorted(self.env):
            match = ACCOUNT_VARIABLE.match(variable)
            if match is None or (match.group(2) and variable.removesuffix("_FILE") in self.env):
                continue
            name = match.group(1).lower().replace("_", "-")
            setting = variable.removesuffix("_FILE")
            if not ACCOUNT_NAME.match(name) or "--" in name or name.endswith("-"):
                self.problems.append(f"{setting}: `{name}` is not an account name (letters, digits, single `_`)")
            elif name in found:
                self.problems.append(
                    f"{setting} names the account `{name}` again: keep one (MAILPARTNER_API_KEY is `default`)"
                )
            elif key := self.secret(setting):
                found[name] = key
        return found

    def channel_accounts(self, name: str, accounts: Mapping[str, str], sandbox: bool) -> dict[str, str]:
        """`C012AB=brand-a,C034CD=brand-b`: a channel's requests go to that account unless they name one."""
        known = set(accounts) | (set(SANDBOX_ACCOUNTS) if sandbox else set())  # the sandbox's own two
        mapping: dict[str, str] = {}
        for pair in (item.strip() for item in self.text(name).split(",") if item.strip()):
            channel, _, account = (part.strip() for part in pair.partition("="))
            if not _CHANNEL_ID.match(channel) or not account:
                self.problems.append(f"{name} must list CHANNEL_ID=account pairs, separated by commas; got {pair!r}")
            elif account not in known:
                listed = ", ".join(sorted(known)) or "none is set"
                self.problems.append(f"{name}: {channel} is given the account `{account}`, which is not set ({listed})")
            else:
                mapping[channel] = account
        return mapping

    def channel(self, name: str) -> str:
        raw = self.text(name)
        if raw and not _CHANNEL_ID.match(raw):
            self.problems.append(f"{name} must be a channel ID like C012ABCDEF, got {raw!r}")
            return ""
        return raw

    def choice(self, name: str, default: str, choices: tuple[str, ...], *, lower: bool) -> str:
        raw = self.text(name)
        if not raw:
            return default
        value = raw.lower() if lower else raw.upper()
        if value not in choices:
            self.problems.append(f"{name} must be one of {', '.join(choices)}, got {raw!r}")
            return default
        return value
