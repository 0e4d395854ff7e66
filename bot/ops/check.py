"""`python -m bot check`: find a broken install before an incident does.

Checks, without changing anything: the Slack token and the scopes it was granted, the app-level token's
form, the MailPartner key (MailPartner's `me`: whose account it opens and the credits left, which touches
no mail), and the store (reachable, at the newest revision, and the messages it still owes people, with the
oldest one's age), which it reads and never creates or migrates. The probes run at once, and each line is
printed as its probe ends: a Slack that never answers holds its own line, not the others.
"""

from __future__ import annotations

import asyncio
import os
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from bot.app import SlackSignInError, mailpartner_accounts, sign_in
from bot.http import Proxies, shown_proxy
from bot.mailpartner.accounts import DEFAULT, Accounts
from bot.mailpartner.answers import FailureKind, Report
from bot.mailpartner.client import AccountReport
from bot.mailpartner.sandbox import MailPartnerSandbox
from bot.settings import MISSING_API_KEY, Mode, Settings

REQUIRED_SCOPES = ("commands", "chat:write", "app_mentions:read", "users:read", "im:history")
OWED_TOO_LONG = 600.0  # seconds: an owed message older than this is a finding, not a passing delay


@dataclass(frozen=True)
class Finding:
    ok: bool
    text: str


def check_slack(settings: Settings) -> list[Finding]:
    if settings.mode is Mode.CONSOLE:
        return [Finding(True, "Slack: no credentials; `python -m bot` opens the local console")]
    try:
        response = asyncio.run(sign_in(settings))
    except SlackSignInError as error:
        return [Finding(False, str(error))]
    findings = [Finding(True, f"Slack: signed in as @{response.get('user')} in {response.get('team')}")]
    headers = {name.lower(): value for name, value in response.headers.items()}
    granted = {s.strip() for s in str(headers.get("x-oauth-scopes", "")).split(",") if s.strip()}
    wanted = REQUIRED_SCOPES + (("usergroups:read",) if settings.allowed_usergroups else ())
    missing = [scope for scope in wanted if scope not in granted]
    if missing:
        findings.append(
            Finding(
                False,
                f"Slack token lacks scope(s) {', '.join(missing)}: add them to the app "
                "(manifest.yml lists them) and reinstall it",
            )
        )
    else:
        findings.append(Finding(True, f"Slack scopes: {', '.join(wanted)}"))
    mode = "Socket Mode (SLACK_APP_TOKEN)" if settings.mode is Mode.SOCKET else f"HTTP mode on port {settings.port}"
    findings.append(Finding(True, f"Mode: {mode}"))
    return findings


def check_mailpartner(settings: Settings) -> list[Finding]:
    """Ask MailPartner's `me`, for every account, who its key belongs to and the credits left: a check of
    each key that touches no mail. Keys are never shown: a finding names the setting that holds one."""
    sandbox = MailPartnerSandbox.with_accounts() if settings.mailpartner_sandbox else None
    if sandbox is None and not settings.mailpartner_accounts:
        return [Finding(False, f"MailPartner: {MISSING_API_KEY}")]
    started = time.monotonic()
    answers = asyncio.run(_ask_me(mailpartner_accounts(settings, sandbox=sandbox)))
    seconds = time.monotonic() - started
    several = len(answers) > 1
    findings = []
    for name, answer in answers.items():
        # The sandbox's accounts answer to keys of its own: no setting holds them.
        key_name = "the sandbox's key" if sandbox is not None else key_setting(name)
        finding = _judge(answer, settings, key_name, seconds)
        if several:  # "MailPartner: …" → "MailPartner account `brand-b`: …"
            finding = Finding(finding.ok, finding.text.replace("MailPartner", f"MailPartner account `{name}`", 1))
        findings.append(finding)
    if sandbox is not None:
        note = "MailPartner: the SANDBOX is active (MAILPARTNER_SANDBOX=true); no real mail is reached"
        findings.insert(0, Finding(True, f"{note}; its accounts: {', '.join(answers)}"))
    return findings


async def _ask_me(accounts: Accounts) -> dict[str, AccountReport]:
    try:
        return await accounts.me()
    finally:
        await accounts.aclose()


def key_setting(account: str) -> str:
    """The setting that holds an account's key."""
    if account == DEFAULT:
        return "MAILPARTNER_API_KEY"
    return f"MAILPARTNER_ACCOUNT_{account.upper().replace('-', '_')}_API_KEY"


def _judge(account: AccountReport, settings: Settings, key_name: str, seconds: float) -> Finding:
    where = settings.mailpartner_base_url
    if account.report is Report.FOUND:
        credits = f"{account.mail_credits} mail credits" if account.mail_credits is not None else "credits unknown"
        balance = f", balance {account.balance} {account.currency}".rstrip() if account.balance else ""
        whose = f"is @{account.username}'s" if account.username else "is accepted (no user name given)"
        return Finding(True, f"MailPartner: {key_name} {whose}, {credits}{balance} ({seconds * 1000:.0f} ms)")
    if account.report is Report.KEY_REFUSED:
        return Finding(False, f"MailPartner refused {key_name} (code {account.code}): set the account's key")
    if account.report is Report.UNANSWERED:
        what = account.failure.value if account.failure else "no answer"
        if proxy := Proxies().for_url(where):  # the message names it: the proxy may be what failed
            return Finding(
                False,
                f"MailPartner at {where} could not be reached through the proxy {shown_proxy(proxy)} ({what}): "
                f"{account.message}; check the proxy, or name MailPartner's host in NO_PROXY to go direct",
            )
        unreached = account.failure in (FailureKind.NAME_UNRESOLVED, FailureKind.CERTIFICATE, FailureKind.CONNECTION)
        verb = "could not be reached" if unreached else "did not answer"
        return Finding(False, f"MailPartner at {where} {verb} ({what}): {account.message}")
    said = f"code {account.code}" + (f": “{account.message}”" if account.message else "")
    return Finding(False, f"MailPartner at {where} did not answer as expected ({said})")


def check_store(settings: Settings) -> list[Finding]:
    """The store as it is: `check` never creates a database, nor migrates one."""
    from bot.store import (
        StoreError,
        check_reachable,
        create_engine,
        current_revision,
        database_url,
        head_revision,
        known_revisions,
        masked,
        sqlite_path,
    )
    from bot.store.owed import summary

    url = database_url(settings.database_url)
    where = masked(url)
    path = sqlite_path(url)
    if path is not None and not path.exists():
        return [_no_store_yet(path)]
    head = head_revision()

    async def look() -> tuple[str | None, tuple[int, float | None] | None]:
        engine = create_engine(url, pool_size=1)
        try:
            await check_reachable(engine)
            revision = await current_revision(engine)
            if revision != head:
                return revision, None
            async with engine.connect() as connection:
                return revision, await connection.run_sync(summary)
        finally:
            await engine.dispose()

    try:
        revision, owed = asyncio.run(look())
    except StoreError as error:
        return [Finding(False, f"Store: DATABASE_URL: {error}")]
    if revision is None:
        return [Finding(True, f"Store: {where} answers and is empty; the bot's first start creates its tables")]
    if revision not in known_revisions():
        return [
            Finding(
                True,
                f"Store: {where} is at revision {revision}, newer than this release's {head}: fine "
                "while replicas are rolled (README, Upgrades)",
            )
        ]
    if revision != head:
        return [
            Finding(
                False,
                f"Store: {where} is at revision {revision}, not {head}: start the bot or run `python -m bot migrate`",
            )
        ]
    return [Finding(True, f"Store: {where} answers, schema at revision {revision}"), _owed(owed)]


def _owed(owed: tuple[int, float | None] | None) -> Finding:
    """Messages owed to people: none is the usual; a few, briefly, while Slack is slow; old ones mean an
    outage, or no bot running to deliver them."""
    count, oldest = owed or (0, None)
    if not count or oldest is None:
        return Finding(True, "Owed messages: none; every outcome has reached Slack")
    age = max(0.0, time.time() - oldest)
    text = f"Owed messages: {count} not yet taken by Slack, the oldest for {_duration(age)}"
    if age < OWED_TOO_LONG:
        return Finding(True, text)
    return Finding(False, f"{text}: is Slack down, or no bot running to deliver them? (README, Reliability)")


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _no_store_yet(path: Path) -> Finding:
    """A first install: the file comes at the first start, if its folder can be made and written."""
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if os.access(folder, os.W_OK | os.X_OK):
        return Finding(True, f"Store: no database yet at {path}; the bot's first start creates it")
    return Finding(
        False,
        f"Store: {path} does not exist and {folder} is not writable: set CANCEL_MAIL_STATE_DIR "
        "or DATABASE_URL to a place the bot may write",
    )


def check_network(settings: Settings) -> list[Finding]:
    """How each service is reached: directly, or through the proxy the environment names (HTTPS_PROXY,
    HTTP_PROXY, ALL_PROXY, NO_PROXY), as every connection the bot opens is."""
    proxies = Proxies()
    routes = []
    if not settings.mailpartner_sandbox:
        routes.append(f"MailPartner {proxies.describe(settings.mailpartner_base_url)}")
    if settings.mode is not Mode.CONSOLE:
        routes.append(f"Slack {proxies.describe(settings.slack_api_url)}")
    return [Finding(True, "Network: " + "; ".join(routes))] if routes else []


# A probe that has not ended by then is a finding of its own: the others are not held for it.
PROBE_TIMEOUT = 20.0
# While a probe runs, a line says which are still waiting this often: a silent terminal reads as a hang.
WAITING_EVERY = 5.0

PROBES: dict[str, Callable[[Settings], list[Finding]]] = {
    "the network": check_network,
    "Slack": check_slack,
    "MailPartner": check_mailpartner,
    "the store": check_store,
}


def run_checks(
    settings: Settings, out: TextIO, *, timeout: float = PROBE_TIMEOUT, waiting_every: float = WAITING_EVERY
) -> int:
    """Every probe at once, each line printed as its probe ends; a probe still running after `timeout` s is
    a failure, named. Return 0 when everything is ready, 1 otherwise."""
    ended: queue.Queue[tuple[str, list[Finding]]] = queue.Queue()

    def probe(name: str, check: Callable[[Settings], list[Finding]]) -> None:
        try:
            found = check(settings)
        except Exception as error:  # a bug in one probe must not hide the others' lines
            found = [Finding(False, f"checking {name} failed: {type(error).__name__}: {error}")]
        ended.put((name, found))

    for name, check in PROBES.items():  # daemons: a probe past its timeout never holds the exit
        threading.Thread(target=probe, args=(name, check), name=f"check {name}", daemon=True).start()
    waiting, ok, started = list(PROBES), True, time.monotonic()

    def say(finding: Finding) -> None:
        print(("✅ " if finding.ok else "❌ ") + finding.text, file=out, flush=True)

    while waiting:
        left = timeout - (time.monotonic() - started)
        if left <= 0:
            for name in waiting:
                ok = False
                say(Finding(False, f"Checking {name}: no answer within {timeout:g} s"))
            break
        try:
            name, found = ended.get(timeout=min(waiting_every, left))
        except queue.Empty:
            print(
                f"… still waiting for {', '.join(waiting)} ({time.monotonic() - started:.0f} s)", file=out, flush=True
            )
            continue
        waiting.remove(name)
        for finding in found:
            ok = ok and finding.ok
            say(finding)
    return 0 if ok else 1
