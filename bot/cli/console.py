"""`python -m bot console`: the local console, on a real MailPartner account only when asked."""

from __future__ import annotations

import os
import sys
from typing import TextIO

from bot.cli.common import EXIT_USAGE
from bot.settings import Settings


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
