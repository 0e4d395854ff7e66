"""`python -m bot` (run): HTTP mode or Socket Mode until SIGTERM; a setting that stops the start is one line."""

from __future__ import annotations

import asyncio

from bot.cli.common import EXIT_USAGE, log
from bot.settings import Settings


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
