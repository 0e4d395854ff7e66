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
import asyncio
import getpass
import json
import logging
import os
import re
import sys
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, TextIO

from dotenv import load_dotenv

from bot.audit.logs import configure_logging
from bot.audit.trail import AuditTrail
from bot.loop import EventLoop, LoopThread
from bot.mailpartner.accounts import DEFAULT, MAIL_REF, Accounts, Preview, split_ref
from bot.mailpartner.answers import Fate
from bot.mailpartner.client import CancelOutcome
from bot.requests.commands import CancelRequest, UsageReason, UsageRequest, parse_fields
from bot.settings import MISSING_API_KEY, Mode, Settings, SettingsError
from bot.words import LANGUAGES
from bot.words.blocks import preview_text, problem_text, render_outcome, sandbox_marked, totals_text
from bot.words.terminal import plain_text, terminal_text

if TYPE_CHECKING:
    from bot.store import HistoryEvent, Store

# Exit statuses of `cancel`, for scripts.
EXIT_ALL_CANCELLED = 0
EXIT_NOT_CANCELLED = 1  # at least one mail is not cancelled: MailPartner said so, or was never reached
EXIT_USAGE = 2  # bad arguments or settings
EXIT_UNKNOWN = 3  # at least one mail's fate is unknown: MailPartner silent, failing or unreadable
EXIT_DECLINED = 4  # the confirmation was declined; nothing was sent

log = logging.getLogger("bot")

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
    if mode == "run" and settings.mode is Mode.CONSOLE and not _is_terminal(sys.stdin):
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
            _password(settings.database_url),
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


def _for_stdout() -> Callable[[str], str]:
    """How Slack's words reach standard output: plain text for a person at a terminal; for a pipe, Slack's
    markup kept (ids in back quotes), which a script may pass on to Slack as it is."""
    return plain_text if _is_terminal(sys.stdout) else terminal_text


def _is_terminal(stream: TextIO | None) -> bool:
    try:
        return stream is not None and stream.isatty()
    except ValueError:  # a closed stream
        return False


def run_console(settings: Settings, file: TextIO | None, lang: str | None = None, *, real: bool = False) -> int:
    """The console; on a real MailPartner account only when asked (`--real`): it cancels real mails."""
    from bot.console.console import Console

    if settings.mailpartner_accounts and not settings.mailpartner_sandbox and not real:
        print(
            "cancel-mail console: a MailPartner key is set (accounts: "
            f"{', '.join(sorted(settings.mailpartner_accounts))}), so this console would cancel REAL mails at "
            f"{settings.mailpartner_base_url}. To play, set MAILPARTNER_SANDBOX=true; to cancel real mails "
            "from the console, start it with `python -m bot console --real`.",
            file=sys.stderr,
        )
        return EXIT_USAGE
    stdin = file or sys.stdin
    # Only a DATABASE_URL set on purpose is used: by default a play session leaves no database behind.
    explicit = settings.database_url if any(os.environ.get(n) for n in ("DATABASE_URL", "DATABASE_URL_FILE")) else ""
    locale = f"{lang}-{lang.upper()}" if lang else ""  # as Slack writes one: fr-FR
    return Console(settings, stdin, sys.stdout, echo=not stdin.isatty(), database_url=explicit, locale=locale).run()


def _password(url: str) -> str:
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).password or ""
    except Exception:
        return ""


async def _open_store(settings: Settings) -> Store | None:
    """The store, migrated; None after one error line naming DATABASE_URL (password masked)."""
    from bot.store import StoreError, open_store

    try:
        return await open_store(settings.database_url, pool_size=2, create_folder=settings.default_store)
    except StoreError as error:
        log.error("cancel-mail-bot cannot start: DATABASE_URL: %s", error)
        return None


def migrate_command(settings: Settings) -> int:
    return asyncio.run(_migrate(settings))


async def _migrate(settings: Settings) -> int:
    from bot.store import current_revision, masked

    store = await _open_store(settings)
    if store is None:
        return EXIT_USAGE
    revision = await current_revision(store.engine)
    print(f"store {masked(settings.database_url)} is at revision {revision} (the newest)")
    await store.close()
    return 0


def backup_command(settings: Settings, target: str) -> int:
    from pathlib import Path

    from bot.store import BackupError, backup_sqlite, database_url, sqlite_path

    source = sqlite_path(database_url(settings.database_url))
    if source is None:
        print(
            "backup: the store is PostgreSQL; back it up with its own tools: "
            'pg_dump --format=custom --file=FILE "$DATABASE_URL" (README, Deploying → Backups)',
            file=sys.stderr,
        )
        return EXIT_USAGE
    try:
        size = backup_sqlite(source, Path(target))
    except BackupError as error:
        print(f"backup: {error}", file=sys.stderr)
        return EXIT_USAGE
    print(f"backup: {source} copied to {target} ({size} bytes); restore by stopping the bot and putting it back")
    return 0


def healthcheck_command(settings: Settings) -> int:
    """For a container's HEALTHCHECK: the image has no curl, and the answer's one line says why it failed."""
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{settings.port}/healthz", timeout=4) as response:
            print(response.read().decode().strip())
            return 0
    except urllib.error.HTTPError as error:
        print(f"{error.code}: {error.read().decode().strip()}")
    except OSError as error:
        print(f"no answer on port {settings.port}: {error}")
    return 1


def history_command(settings: Settings, mail_id: str | None, *, since: float | None, limit: int, as_json: bool) -> int:
    from bot.store import database_url, sqlite_path
    from bot.words.blocks import history_line

    if mail_id and not MAIL_REF.match(mail_id):
        print(f"history: {mail_id!r} is not a valid mail id", file=sys.stderr)
        return EXIT_USAGE
    path = sqlite_path(database_url(settings.database_url))
    if path is not None and not path.exists():  # as `check`: a question creates no database
        print(f"No history yet: nothing has run on the store {path}.", file=sys.stderr)
        return 0
    found = asyncio.run(_history(settings, mail_id, since=since, limit=limit))
    if isinstance(found, int):
        return found
    events = found
    if events is None:
        print("history: the store did not answer; see the log line above", file=sys.stderr)
        return EXIT_UNKNOWN
    shown = _for_stdout()
    for event in events:
        if as_json:
            print(json.dumps(event.as_json(), ensure_ascii=False))
        else:
            print(shown(history_line(event, settings.language, with_channel=True)).removeprefix("• "))
    if not events and not as_json:
        print("nothing recorded" + (f" about {mail_id}" if mail_id else "") + ".", file=sys.stderr)
    return 0


async def _history(
    settings: Settings, mail_id: str | None, *, since: float | None, limit: int
) -> list[HistoryEvent] | int | None:
    """The store's events (None: it did not answer), or an exit status when it cannot be opened."""
    store = await _open_store(settings)
    if store is None:
        return EXIT_USAGE
    try:
        return await store.history(mail_id=mail_id or None, since=time.time() - since if since else None, limit=limit)
    finally:
        await store.close()


def run_slack(settings: Settings) -> int:
    """HTTP mode or Socket Mode on one event loop until SIGTERM; a setting that stops the start is one line."""
    from bot.app import SlackSignInError
    from bot.ops.server import serve
    from bot.store import StoreError

    try:
        asyncio.run(serve(settings))
    except StoreError as error:
        log.error("cancel-mail-bot cannot start: DATABASE_URL: %s", error)
        return EXIT_USAGE
    except SlackSignInError as error:
        log.error("cancel-mail-bot cannot start: %s", error)
        return EXIT_USAGE
    except OSError as error:  # the port taken, most often: one line, after the bot drained what it had
        log.error("cancel-mail-bot cannot listen on port %d (PORT): %s", settings.port, error.strerror or error)
        return EXIT_USAGE
    return 0


async def _cancel_all(accounts: Accounts, refs: tuple[str, ...]) -> list[CancelOutcome]:
    """Every mail, placed in its account, cancelled at once."""
    try:
        return list(await asyncio.gather(*(accounts.cancel(ref) for ref in refs)))
    finally:
        await accounts.aclose()


def _placed(accounts: Accounts, preview: Preview) -> tuple[str, ...] | None:
    """Each id with its account, as the preview placed it (README, Accounts); None, and why on stderr, when
    one cannot be placed."""
    if preview.unplaced:
        print(
            f"cancel: {', '.join(preview.unplaced)} could be in more than one account, or none knows it: name the "
            f"account, as in {accounts.names[-1]}:{preview.unplaced[0]} (accounts: {', '.join(accounts.names)})",
            file=sys.stderr,
        )
        return None
    return preview.refs


# Where Slack's words name Slack's syntax (` -- why`, the form's field), the CLI names its flag.
CLI_PROBLEMS = {
    UsageReason.NOT_ID_LIKE: "{offending} does not look like mail ids (they have digits, like 302): a reason goes "
    'in --reason, as in `cancel 302 --reason "{offending}"`',
    UsageReason.REASON_REQUIRED: 'a reason is required here (CANCEL_MAIL_REQUIRE_REASON): add --reason "why"',
    UsageReason.NO_ID: "which mail? Give its id: `cancel 302`",
}


def _usage_problem(parsed: UsageRequest, lang: str) -> str:
    """What is wrong with the command line: the words Slack says, with the CLI's flags where Slack's differ."""
    if (own := CLI_PROBLEMS.get(parsed.reason)) is not None:
        return plain_text(own.format(offending=parsed.offending))
    return plain_text(problem_text(parsed.reason, parsed.offending, lang=lang))


def cancel_command(
    settings: Settings, raw_ids: list[str], *, reason: str, yes: bool, as_json: bool, verbose: bool = False
) -> int:
    from bot.app import mailpartner_accounts
    from bot.mailpartner.sandbox import MailPartnerSandbox

    parsed = parse_fields(" ".join(raw_ids), reason, require_reason=settings.require_reason)
    if not isinstance(parsed, CancelRequest):
        print(f"cancel: {_usage_problem(parsed, settings.language)}", file=sys.stderr)
        return EXIT_USAGE
    sandbox = MailPartnerSandbox.with_accounts(settings.sandbox_state) if settings.mailpartner_sandbox else None
    accounts = mailpartner_accounts(settings, sandbox=sandbox)
    if unknown := accounts.unknown(parsed.ids):
        print(
            f"cancel: no MailPartner account named {', '.join(unknown)}; the accounts are "
            f"{', '.join(accounts.names)} (ACCOUNT:ID names one)",
            file=sys.stderr,
        )
        asyncio.run(accounts.aclose())
        return EXIT_USAGE
    # The question is read on this thread, Ctrl-C able to stop it; the store and the calls run on a loop of
    # their own meanwhile.
    loop = LoopThread("cancel")
    try:
        outcomes = _cancel_on_record(loop, settings, accounts, parsed, sandbox is not None, yes=yes, verbose=verbose)
    finally:
        loop.close()
    if isinstance(outcomes, int):
        return outcomes
    if as_json:
        print(
            json.dumps(
                {
                    "sandbox": sandbox is not None,
                    "reason": parsed.reason or None,  # as the audit trail writes it
                    "outcomes": [_as_json(o, settings) for o in outcomes],
                },
                ensure_ascii=False,
                indent=2,
            )
        )
    else:
        lang, marked, shown = settings.language, sandbox is not None, _for_stdout()
        for outcome in outcomes:
            print(shown(sandbox_marked(render_outcome(outcome, lang), lang, marked)))
        if len(outcomes) > 1:  # as Slack's summary ends
            print(shown(sandbox_marked(totals_text(outcomes, lang), lang, marked)))
    return exit_status(outcomes)


def _cancel_on_record(
    loop: EventLoop,
    settings: Settings,
    accounts: Accounts,
    parsed: CancelRequest,
    sandboxed: bool,
    *,
    yes: bool,
    verbose: bool,
) -> list[CancelOutcome] | int:
    """Ask (unless `yes`), cancel, and keep it all in the history; an exit status when nothing was cancelled."""
    from bot.store import StoreError, open_store

    where = "the MailPartner SANDBOX" if sandboxed else f"MailPartner ({settings.mailpartner_base_url})"
    try:  # the history keeps break-glass cancels too; without a store they still go ahead
        store = loop.run(open_store(settings.database_url, pool_size=2, create_folder=settings.default_store))
    except StoreError as error:
        print(f"warning: not recorded in the history (DATABASE_URL: {error})", file=sys.stderr)
        store = None
    # Break-glass cancels bypass Slack, so the audit trail records them: in the store, and on standard error
    # as the log. A person at a terminal reads the question and the results there, not JSON lines, unless
    # they ask for them or the store cannot keep them.
    if verbose or store is None or not _is_terminal(sys.stderr):
        logging.getLogger("bot.audit").setLevel(logging.INFO)
    audit = AuditTrail(store, sandbox=sandboxed)
    actor = f"cli:{_operator()}"
    try:
        audit("request", actor=actor, channel="", mail_ids=parsed.ids, via="cli", reason=parsed.reason or None)
        # What MailPartner says of each mail, as Slack shows it before the button; --yes skips the question only.
        preview = loop.run(accounts.preview(parsed.ids))
        if (refs := _placed(accounts, preview)) is None:
            loop.run(accounts.aclose())
            return EXIT_USAGE
        shown = plain_text if _is_terminal(sys.stderr) else terminal_text
        print(shown(preview_text(preview, settings.language)), file=sys.stderr)
        if not yes:
            why = f" because “{parsed.reason}”" if parsed.reason else ""
            ids = refs
            which = f"mail {ids[0]}" if len(ids) == 1 else f"{len(ids)} mails, {', '.join(ids)},"
            question = f"Cancel {which} at {where}{why}? [y/N] "
            try:
                print(question, end="", file=sys.stderr, flush=True)
                answer = sys.stdin.readline()
            except KeyboardInterrupt:  # Ctrl-C at the question is a no, without a traceback
                answer = "\n"
                print(file=sys.stderr)
            if answer.strip().lower() not in ("y", "yes", "o", "oui"):
                print("Nothing was cancelled.", file=sys.stderr)
                audit("keep", actor=actor, channel="", mail_ids=parsed.ids, via="cli")
                loop.run(accounts.aclose())
                return EXIT_DECLINED
        outcomes = loop.run(_cancel_all(accounts, refs))
        for outcome in outcomes:
            audit(
                "outcome",
                actor=actor,
                channel="",
                mail_ids=[outcome.message_id],
                account=split_ref(outcome.message_id)[0] or DEFAULT,
                via="cli",
                reason=parsed.reason or None,
                result=outcome.label,
                code=outcome.code,
                failure=outcome.failure.value if outcome.failure else None,
                cancelled=outcome.cancelled,
                sandbox=sandboxed,
            )
        return outcomes
    finally:
        if store is not None:
            loop.run(store.close())


def _operator() -> str:
    """Who runs the break-glass command, as the audit trail names them."""
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no login name in some containers
        return f"uid{os.getuid()}"


def exit_status(outcomes: list[CancelOutcome]) -> int:
    """The worst fate among the mails (answers.py): unknown, then not cancelled, then all cancelled."""
    fates = {o.meaning.fate for o in outcomes}
    if Fate.UNKNOWN in fates:
        return EXIT_UNKNOWN
    return EXIT_NOT_CANCELLED if Fate.NOT_CANCELLED in fates else EXIT_ALL_CANCELLED


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
