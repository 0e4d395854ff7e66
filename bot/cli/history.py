"""`python -m bot history`: what the store remembers, newest first."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import TYPE_CHECKING

from bot.cli.common import EXIT_UNKNOWN, EXIT_USAGE, for_stdout, open_mode_store
from bot.mailpartner.accounts import MAIL_REF
from bot.settings import Settings

if TYPE_CHECKING:
    from bot.store import HistoryEvent


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
    shown = for_stdout()
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
    store = await open_mode_store(settings)
    if store is None:
        return EXIT_USAGE
    try:
        return await store.history(mail_id=mail_id or None, since=time.time() - since if since else None, limit=limit)
    finally:
        await store.close()
