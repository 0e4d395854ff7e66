"""Entry point: `python -m bot [MODE]`; with no mode, the environment decides.

python -m bot                                  Socket Mode, HTTP mode or the local console, per the environment
python -m bot console [FILE]                   the local console (reads FILE or standard input)
python -m bot cancel ID [ID …] [--reason WHY]  break-glass: cancel at MailPartner directly, without Slack
python -m bot history [ID] [--since 24h]       what the store remembers, newest first
python -m bot migrate                          bring the store's schema to the newest revision
python -m bot check                            Slack token and scopes, MailPartner key, the store
python -m bot backup FILE                      a consistent copy of the SQLite store, while the bot runs
python -m bot healthcheck                      exit 0 when this host's bot answers 200 on /healthz (images)
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Sequence

from dotenv import load_dotenv

from bot.audit.logs import configure_logging
from bot.cli.backup import backup_command
from bot.cli.cancel import cancel_command, exit_status
from bot.cli.common import (
    EXIT_ALL_CANCELLED,
    EXIT_DECLINED,
    EXIT_NOT_CANCELLED,
    EXIT_UNKNOWN,
    EXIT_USAGE,
    is_terminal,
    password_of,
)
from bot.cli.console import run_console
from bot.cli.healthcheck import healthcheck_command
from bot.cli.history import history_command
from bot.cli.migrate import migrate_command
from bot.cli.serve import run_slack
from bot.settings import MISSING_API_KEY, Mode, Settings, SettingsError
from bot.words import LANGUAGES

__all__ = [
    "EXIT_ALL_CANCELLED",
    "EXIT_DECLINED",
    "EXIT_NOT_CANCELLED",
    "EXIT_UNKNOWN",
    "EXIT_USAGE",
    "build_parser",
    "exit_status",
    "main",
]

SLACK_CREDENTIALS = ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_APP_TOKEN")


NO_SLACK_SETTINGS = (
    "cancel-mail-bot cannot start: SLACK_BOT_TOKEN is not set (with SLACK_SIGNING_SECRET for HTTP mode, or "
    "SLACK_APP_TOKEN for Socket Mode), and standard input is no terminal for the local console; "
    "to play Slack from a pipe, run `python -m bot console`"
)


OFFLINE_MODES = ("console", "cancel", "check", "history", "migrate", "backup", "healthcheck")  # no Slack needed


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bot",
        description="Slack bot that cancels scheduled MailPartner mails after a confirmation.",
        epilog="With no mode: SLACK_APP_TOKEN set → Socket Mode; SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET → "
        "HTTP mode on $PORT (POST /slack/events, GET /healthz); neither → the local console on the "
        "MailPartner sandbox, from a terminal (with no terminal: exit 2, as a server without its settings). "
        "Settings come from the environment and ./.env (see README).",
    )
    modes = parser.add_subparsers(dest="mode", metavar="MODE")
    modes.add_parser("run", help="the mode the environment selects (the default)")
    console = modes.add_parser("console", help="play Slack in this terminal, on the sandbox by default")
    console.add_argument("file", nargs="?", type=argparse.FileType("r"), help="read commands from FILE")
    console.add_argument(
        "--real",
        action="store_true",
        help="with a MailPartner key set and MAILPARTNER_SANDBOX off: cancel REAL mails (refused without it)",
    )
    console.add_argument(
        "--lang",
        choices=sorted(LANGUAGES),
        help="play a person whose Slack is in this language (what they read alone is in it; a channel reads "
        "BOT_LANGUAGE)",
    )
    modes.add_parser("check", help="check the Slack token and scopes and the MailPartner key; cancels nothing")
    cancel = modes.add_parser("cancel", help="break-glass: cancel mails at MailPartner directly, no Slack")
    cancel.add_argument("ids", nargs="+", metavar="ID", help="MailPartner messageId (up to 25)")
    cancel.add_argument("--reason", "-r", default="", help="why (up to 500 characters); kept in the audit trail")
    cancel.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")
    cancel.add_argument("--json", action="store_true", help="print one JSON document for scripts")
    cancel.add_argument(
        "--verbose", "-v", action="store_true", help="show the audit lines on a terminal too (the store keeps them)"
    )
    history = modes.add_parser("history", help="recent events from the store, or everything about one mail")
    history.add_argument("id", nargs="?", metavar="ID", help="only events about this mail")
    history.add_argument("--since", type=_duration, help="only this recent: 90m, 24h, 7d")
    history.add_argument("--limit", type=int, default=50, help="at most this many events (default 50)")
    history.add_argument("--json", action="store_true", help="one JSON object per line, for scripts")
    modes.add_parser("migrate", help="apply the store's migrations (start-up does it too)")
    backup = modes.add_parser("backup", help="copy the SQLite store to FILE, consistently, while the bot runs")
    backup.add_argument("file", metavar="FILE", help="the copy to write (must not exist)")
    modes.add_parser("healthcheck", help="exit 0 when GET /healthz on PORT answers 200 (container health checks)")
    return parser


def _duration(text: str) -> float:
    match = re.fullmatch(r"(\d+(?:\.\d+)?)([smhd]?)", text.strip())
    if not match:
        raise argparse.ArgumentTypeError(f"not a duration like 90m, 24h or 7d: {text!r}")
    return float(match.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[match.group(2)]


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    load_dotenv(os.path.join(os.getcwd(), ".env"), override=False)  # real environment variables win
    mode = args.mode or "run"
    slackless = not any(os.environ.get(n, "").strip() for name in SLACK_CREDENTIALS for n in (name, f"{name}_FILE"))
    try:
        settings = Settings.from_env(os.environ, console=mode in OFFLINE_MODES or slackless)
        if mode == "cancel" and not (settings.mailpartner_accounts or settings.mailpartner_sandbox):
            raise SettingsError([MISSING_API_KEY])
    except SettingsError as error:
        who = "cancel-mail-bot cannot start" if mode == "run" else f"python -m bot {mode}"
        print(f"{who}: fix these settings first (environment or .env):", file=sys.stderr)
        for problem in error.problems:
            print(f"  - {problem}", file=sys.stderr)
        return EXIT_USAGE
    if mode == "run" and settings.mode is Mode.CONSOLE and not is_terminal(sys.stdin):
        # A server started without its settings (a missing .env in an image, a unit with no environment)
        # must fail where an orchestrator sees it, not open a console on a pipe and exit 0.
        print(NO_SLACK_SETTINGS, file=sys.stderr)
        return EXIT_USAGE
    configure_logging(
        # The console and the CLI talk to a person: only real trouble goes to the log there.
        settings.log_level if mode == "run" and settings.mode is not Mode.CONSOLE else "ERROR",
        [
            *settings.mailpartner_accounts.values(),
            settings.slack_bot_token,
            settings.slack_signing_secret,
            settings.slack_app_token,
            password_of(settings.database_url),
        ],
        json_lines=settings.log_format == "json",
    )
    if mode == "check":
        from bot.ops.check import run_checks

        return run_checks(settings, sys.stdout)
    if mode == "migrate":
        return migrate_command(settings)
    if mode == "backup":
        return backup_command(settings, args.file)
    if mode == "healthcheck":
        return healthcheck_command(settings)
    if mode == "history":
        return history_command(settings, args.id, since=args.since, limit=args.limit, as_json=args.json)
    if mode == "cancel":
        return cancel_command(
            settings, args.ids, reason=args.reason, yes=args.yes, as_json=args.json, verbose=args.verbose
        )
    if mode == "console" or settings.mode is Mode.CONSOLE:
        return run_console(
            settings,
            args.file if mode == "console" else None,
            getattr(args, "lang", None),
            real=bool(getattr(args, "real", False)),
        )
    return run_slack(settings)
