"""Entry point: `python -m bot [console|cancel]`; with no mode, the environment decides.

python -m bot                      Socket Mode, HTTP mode or the local console, per the environment
python -m bot console [FILE]       the local console (reads FILE or standard input)
python -m bot cancel ID [ID …] [--reason WHY]   break-glass: cancel at MailPartner directly, without Slack
"""

from __future__ import annotations

import argparse
import getpass
import json
import logging
import os
import sys
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TextIO

from dotenv import load_dotenv

from bot.audit import audit
from bot.commands import CancelRequest, parse_fields
from bot.logs import configure_logging
from bot.mailpartner import CancelOutcome
from bot.messages import render_outcome, terminal_text
from bot.settings import Mode, Settings, SettingsError

# Exit statuses of `cancel`, for scripts.
EXIT_ALL_CANCELLED = 0
EXIT_NOT_CANCELLED = 1  # MailPartner answered, and at least one mail is not cancelled
EXIT_USAGE = 2  # bad arguments or settings
EXIT_UNKNOWN = 3  # at least one mail's fate is unknown: MailPartner unreachable, silent or unreadable
EXIT_DECLINED = 4  # the confirmation was declined; nothing was sent

SLACK_CREDENTIALS = ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_APP_TOKEN")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bot",
        description="Slack bot that cancels scheduled MailPartner mails after a confirmation.",
        epilog="With no mode: SLACK_APP_TOKEN set → Socket Mode; SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET → "
        "HTTP mode on $PORT (POST /slack/events, GET /healthz); neither → the local console on the "
        "MailPartner sandbox. Settings come from the environment and ./.env (see README).",
    )
    modes = parser.add_subparsers(dest="mode", metavar="MODE")
    modes.add_parser("run", help="the mode the environment selects (the default)")
    console = modes.add_parser("console", help="play Slack in this terminal, on the sandbox by default")
    console.add_argument("file", nargs="?", type=argparse.FileType("r"), help="read commands from FILE")
    modes.add_parser("check", help="check the Slack token and scopes and the MailPartner key; cancels nothing")
    cancel = modes.add_parser("cancel", help="break-glass: cancel mails at MailPartner directly, no Slack")
    cancel.add_argument("ids", nargs="+", metavar="ID", help="MailPartner messageId (up to 25)")
    cancel.add_argument("--reason", "-r", default="", help="why (up to 500 characters); kept in the audit trail")
    cancel.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")
    cancel.add_argument("--json", action="store_true", help="print one JSON document for scripts")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    load_dotenv(os.path.join(os.getcwd(), ".env"), override=False)  # real environment variables win
    mode = args.mode or "run"
    slackless = not any(os.environ.get(name, "").strip() for name in SLACK_CREDENTIALS)
    try:
        settings = Settings.from_env(os.environ, console=mode in ("console", "cancel", "check") or slackless)
        if mode == "cancel" and not (settings.mailpartner_api_key or settings.mailpartner_sandbox):
            raise SettingsError(["MAILPARTNER_API_KEY is required (or set MAILPARTNER_SANDBOX=true)"])
    except SettingsError as error:
        print("cancel-mail-bot cannot start; fix these settings (environment or .env):", file=sys.stderr)
        for problem in error.problems:
            print(f"  - {problem}", file=sys.stderr)
        return EXIT_USAGE
    configure_logging(
        # The console and the CLI talk to a person: only real trouble goes to the log there.
        settings.log_level if mode == "run" and settings.mode is not Mode.CONSOLE else "ERROR",
        [
            settings.mailpartner_api_key,
            settings.slack_bot_token,
            settings.slack_signing_secret,
            settings.slack_app_token,
        ],
    )
    if mode == "check":
        from bot.check import run_checks

        return run_checks(settings, sys.stdout)
    if mode == "cancel":
        return cancel_command(settings, args.ids, reason=args.reason, yes=args.yes, as_json=args.json)
    if mode == "console" or settings.mode is Mode.CONSOLE:
        return run_console(settings, args.file if mode == "console" else None)
    return run_slack(settings)


def run_console(settings: Settings, file: TextIO | None) -> int:
    from bot.console import Console

    stdin = file or sys.stdin
    return Console(settings, stdin, sys.stdout, echo=not stdin.isatty()).run()


def run_slack(settings: Settings) -> int:
    from bot.app import SlackSignInError, sign_in
    from bot.server import serve_http, serve_socket_mode

    # One auth.test before anything starts turns a bad token into one clear line, not a worker crash.
    try:
        identity = sign_in(settings)
    except SlackSignInError as error:
        print(f"cancel-mail-bot cannot start: {error}", file=sys.stderr)
        return EXIT_UNKNOWN if error.unreachable else EXIT_USAGE
    print(
        f"cancel-mail-bot: signed in to Slack as @{identity.get('user')} ({identity.get('team')})",
        file=sys.stderr,
    )
    if settings.mode is Mode.SOCKET:
        serve_socket_mode(settings)
    else:
        serve_http(settings)
    return 0


def cancel_command(settings: Settings, raw_ids: list[str], *, reason: str, yes: bool, as_json: bool) -> int:
    from bot.app import mailpartner_client
    from bot.sandbox import MailPartnerSandbox

    parsed = parse_fields(" ".join(raw_ids), reason, require_reason=settings.require_reason)
    if not isinstance(parsed, CancelRequest):
        detail = f": {parsed.offending}" if parsed.offending else ""
        print(
            f"cancel: {parsed.reason.value.replace('_', ' ')}{detail} "
            "(an id is 1–64 letters, digits, - or _; at most 25 ids; --reason up to 500 characters)",
            file=sys.stderr,
        )
        return EXIT_USAGE
    sandbox = MailPartnerSandbox() if settings.mailpartner_sandbox else None
    where = "the MailPartner SANDBOX" if sandbox else f"MailPartner ({settings.mailpartner_base_url})"
    # Break-glass cancels bypass Slack, so the audit trail is all that records them: it goes to stderr.
    logging.getLogger("bot.audit").setLevel(logging.INFO)
    actor = f"cli:{_operator()}"
    audit("request", actor=actor, channel="", mail_ids=parsed.ids, via="cli", reason=parsed.reason or None)
    if not yes:
        why = f" because “{parsed.reason}”" if parsed.reason else ""
        question = f"Cancel {len(parsed.ids)} mail(s) {', '.join(parsed.ids)} at {where}{why}? [y/N] "
        print(question, end="", file=sys.stderr, flush=True)
        if sys.stdin.readline().strip().lower() not in ("y", "yes", "o", "oui"):
            print("Nothing was cancelled.", file=sys.stderr)
            audit("keep", actor=actor, channel="", mail_ids=parsed.ids, via="cli")
            return EXIT_DECLINED
    client = mailpartner_client(settings, sandbox=sandbox)
    try:
        with ThreadPoolExecutor(min(8, len(parsed.ids))) as pool:
            outcomes = list(pool.map(client.cancel, parsed.ids))
    finally:
        client.close()
    for outcome in outcomes:
        audit(
            "outcome",
            actor=actor,
            channel="",
            mail_ids=[outcome.message_id],
            via="cli",
            reason=parsed.reason or None,
            result=outcome.label,
            code=outcome.code,
            failure=outcome.failure.value if outcome.failure else None,
            cancelled=outcome.cancelled,
            sandbox=sandbox is not None,
        )
    if as_json:
        print(
            json.dumps(
                {
                    "sandbox": sandbox is not None,
                    "reason": parsed.reason,
                    "outcomes": [_as_json(o, settings) for o in outcomes],
                },
                ensure_ascii=False,
                indent=2,
            )
        )
    else:
        for outcome in outcomes:
            print(("[SANDBOX] " if sandbox else "") + terminal_text(render_outcome(outcome, settings.language)))
    return exit_status(outcomes)


def _operator() -> str:
    """Who runs the break-glass command, as the audit trail names them."""
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no login name in some containers
        return f"uid{os.getuid()}"


def exit_status(outcomes: list[CancelOutcome]) -> int:
    if all(o.cancelled for o in outcomes):
        return EXIT_ALL_CANCELLED
    if any(o.failure is not None for o in outcomes):
        return EXIT_UNKNOWN
    return EXIT_NOT_CANCELLED


def _as_json(outcome: CancelOutcome, settings: Settings) -> dict[str, object]:
    return {
        "message_id": outcome.message_id,
        "cancelled": outcome.cancelled,
        "code": outcome.code,
        "message": outcome.message,
        "failure": outcome.failure.value if outcome.failure else None,
        "http_status": outcome.http_status,
        "attempts": outcome.attempts,
        "confirmed_on_retry": outcome.confirmed_on_retry,
        "latency_ms": round(outcome.latency * 1000),
        "text": terminal_text(render_outcome(outcome, settings.language)),
    }
