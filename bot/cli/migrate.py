"""`python -m bot migrate`: the store's schema brought to the newest revision."""

from __future__ import annotations

import asyncio

from bot.cli.common import EXIT_USAGE, open_mode_store
from bot.settings import Settings


def migrate_command(settings: Settings) -> int:
    return asyncio.run(_migrate(settings))


async def _migrate(settings: Settings) -> int:
    from bot.store import current_revision, masked

    store = await open_mode_store(settings)
    if store is None:
        return EXIT_USAGE
    revision = await current_revision(store.engine)
    print(f"store {masked(settings.database_url)} is at revision {revision} (the newest)")
    await store.close()
    return 0
