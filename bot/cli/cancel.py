"""`python -m bot cancel`: the break-glass cancel at MailPartner, without Slack, kept in the history."""

from __future__ import annotations

import asyncio
import getpass
import json
import logging
import os
import sys

from bot.audit.trail import AuditTrail
from bot.cli.common import (
    EXIT_ALL_CANCELLED,
    EXIT_DECLINED,
    EXIT_NOT_CANCELLED,
    EXIT_UNKNOWN,
    EXIT_USAGE,
    for_stdout,
    is_terminal,
)
from bot.loop import EventLoop, LoopThread
from bot.mailpartner.accounts import DEFAULT, Accounts, Preview, split_ref
from bot.mailpartner.answers import Fate
from bot.mailpartner.client import CancelOutcome
from bot.requests.commands import CancelRequest, UsageReason, UsageRequest, parse_fields
from bot.settings import Settings
from bot.words.blocks import preview_text, problem_text, render_outcome, sandbox_marked, totals_text
from bot.words.terminal import plain_text, terminal_text


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
        lang, marked, shown = settings.language, sandbox is not None, for_stdout()
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
    if verbose or store is None or not is_terminal(sys.stderr):
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
        shown = plain_text if is_terminal(sys.stderr) else terminal_text
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
