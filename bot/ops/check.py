"""`python -m bot check`: find a broken install before an incident does.

Checks, without cancelling anything: the Slack token and the scopes it was granted, the app-level token's
form, MailPartner's reachability and acceptance of the API key, and the store (reachable, migrated), which
it reads and never creates or migrates.
The MailPartner probe asks to cancel an id that cannot exist (`PROBE_ID`): a valid key answers “not found”
(code 4), a wrong one code 10.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from bot.app import SlackSignInError, mailpartner_client, sign_in
from bot.mailpartner.client import CancelOutcome
from bot.settings import MISSING_API_KEY, Mode, Settings
from bot.slack.messages import render_outcome, terminal_text

PROBE_ID = "cancel-mail-bot-connectivity-check"
REQUIRED_SCOPES = ("commands", "chat:write", "app_mentions:read")


@dataclass(frozen=True)
class Finding:
    ok: bool
    text: str


def check_slack(settings: Settings) -> list[Finding]:
    if settings.mode is Mode.CONSOLE:
        return [Finding(True, "Slack: no credentials; `python -m bot` opens the local console")]
    try:
        response = sign_in(settings)
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
    if settings.mailpartner_sandbox:
        return [Finding(True, "MailPartner: the SANDBOX is active (MAILPARTNER_SANDBOX=true); no real mail is reached")]
    if not settings.mailpartner_api_key:
        return [Finding(False, f"MailPartner: {MISSING_API_KEY}")]
    client = mailpartner_client(settings)
    try:
        outcome = client.cancel(PROBE_ID)
    finally:
        client.close()
    return [_judge(outcome, settings)]


def _judge(outcome: CancelOutcome, settings: Settings) -> Finding:
    where = settings.mailpartner_base_url
    if outcome.code == 4:
        return Finding(True, f"MailPartner: {where} answers and accepts the API key ({outcome.latency * 1000:.0f} ms)")
    if outcome.code in (1, 10):
        return Finding(False, f"MailPartner refused MAILPARTNER_API_KEY (code {outcome.code}): set the account's key")
    said = terminal_text(render_outcome(outcome, settings.language, with_next_step=False))
    return Finding(False, f"MailPartner at {where} did not answer as expected: {said}")


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

    url = database_url(settings.database_url)
    where = masked(url)
    path = sqlite_path(url)
    if path is not None and not path.exists():
        return [_no_store_yet(path)]
    engine = create_engine(url, pool_size=1)
    try:
        check_reachable(engine)
        revision = current_revision(engine)
    except StoreError as error:
        return [Finding(False, f"Store: DATABASE_URL: {error}")]
    finally:
        engine.dispose()
    head = head_revision()
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
    return [Finding(True, f"Store: {where} answers, schema at revision {revision}")]


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


def run_checks(settings: Settings, out: TextIO) -> int:
    """Print one line per finding; return 0 when everything is ready, 1 otherwise."""
    findings = check_slack(settings) + check_mailpartner(settings) + check_store(settings)
    for finding in findings:
        print(("✅ " if finding.ok else "❌ ") + finding.text, file=out)
    return 0 if all(f.ok for f in findings) else 1
