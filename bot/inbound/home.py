"""The App Home: each person's Home tab, published when they open it and again when one of their cancels
finishes (while they have looked at it lately).

Nothing here blocks the event loop: the event is acked at once, the view is gathered and published by a
coroutine the service keeps (the store's read in a thread), and the MailPartner accounts' states come from
a cache refreshed in the background (a home opened before the first answer says "checking…", and is
published again once the accounts answered). A store or a MailPartner that does not answer gives a view
that says so. `views.publish` goes through Bolt's AsyncWebClient: a home view is not a message owed to
anyone; the next opening publishes a fresh one.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from slack_sdk.web.async_client import AsyncWebClient

from bot.cancels.engine import CancelService
from bot.inbound.access import AccessPolicy
from bot.inbound.people import Languages
from bot.mailpartner.accounts import Accounts
from bot.requests.kinds import Refusal
from bot.store import Store
from bot.words.home import HOME_HISTORY, AccountFacts, HomeFacts, home_view

log = logging.getLogger(__name__)

ACCOUNTS_TTL = 300.0  # seconds the accounts' states are shown before MailPartner is asked again
WATCHED_FOR = 3600.0  # seconds after opening the Home tab during which a finished cancel republishes it
WATCHED_KEPT = 10_000  # people watched at most
PUBLISH_LOCKS = 64  # one person's views are published one at a time: a lock each, shared by hash
MY_ACTIONS = ("request", "confirm", "keep", "outcome", "refusal", "expiry", "duplicate")


class Home:
    def __init__(
        self,
        client: AsyncWebClient,
        *,
        access: AccessPolicy,
        store: Store,
        accounts: Accounts,
        cancels: CancelService,
        languages: Languages,
        sandbox: bool,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._access = access
        self._store = store
        self._accounts = accounts
        self._cancels = cancels
        self._languages = languages
        self._sandbox = sandbox
        self._clock = clock
        self._states: dict[str, AccountFacts] = {}
        self._states_at: float | None = None
        self._refreshing = False
        self._waiting: set[str] = set()  # people shown "checking…", published again once the accounts answer
        self._watched: OrderedDict[str, float] = OrderedDict()  # person → when they last opened the Home tab
        self._lock = threading.Lock()
        self._publishing = [asyncio.Lock() for _ in range(PUBLISH_LOCKS)]  # the loop's alone

    def opened(self, user: str) -> None:
        """`app_home_opened` on the Home tab: publish this person's view (off the ack path)."""
        with self._lock:
            self._watched[user] = self._clock()
            self._watched.move_to_end(user)
            while len(self._watched) > WATCHED_KEPT:
                self._watched.popitem(last=False)
        self._cancels.spawn(self.publish(user), "the Home tab")

    def after_cancel(self, user: str) -> None:
        """One of `user`'s cancels finished: their Home tab shows it, if they looked at it lately."""
        with self._lock:
            seen = self._watched.get(user)
        if seen is not None and self._clock() - seen < WATCHED_FOR:
            self._cancels.spawn(self.publish(user), "the Home tab")

    async def publish(self, user: str) -> None:
        # Gathered and published under the person's lock: a view that says "checking…" must reach Slack
        # before the one gathered once the accounts answered, or it would replace it and stay.
        async with self._publishing[hash(user) % PUBLISH_LOCKS]:
            lang = await self._languages.lookup(user)
            view = home_view(await self.facts(user), lang)
            try:
                await self._client.views_publish(user_id=user, view=view)
            except Exception as error:  # slack_sdk raises whatever its HTTP call met; the next opening retries
                log.warning("views.publish for %s failed: %s", user, error)

    async def facts(self, user: str) -> HomeFacts:
        """What this person's Home tab shows, gathered now (the accounts from the cache)."""
        refusal = self._access.check_user(user)
        may_cancel = refusal is None
        users, groups = self._access.who_may
        await self._store.flush(2.0)  # their latest actions belong in it
        found = await self._store.history(actor=user, actions=MY_ACTIONS, limit=HOME_HISTORY + 1)
        return HomeFacts(
            user=user,
            may_cancel=may_cancel,
            access_unread=refusal is Refusal.GROUPS_UNREAD,
            allowed_channels=self._access.channels,
            allowed_users=() if may_cancel else users,
            allowed_groups=() if may_cancel else groups,
            history=None if found is None else found[:HOME_HISTORY],
            more_history=found is not None and len(found) > HOME_HISTORY,
            under_way=self._cancels.under_way(user),
            accounts=self._account_facts(user) if may_cancel else (),
            sandbox=self._sandbox,
            store_problem=bool(self._store.problem),
        )

    def _account_facts(self, user: str) -> tuple[AccountFacts, ...]:
        """The accounts as MailPartner last said; stale or never asked: asked in the background."""
        with self._lock:
            stale = self._states_at is None or self._clock() - self._states_at > ACCOUNTS_TTL
            start = stale and not self._refreshing
            self._refreshing = self._refreshing or start
            if self._states_at is None:
                self._waiting.add(user)
            states = dict(self._states)
        if start:  # off the ack path already: the refresh is one more coroutine, counted by drains
            self._cancels.spawn(self._refresh(), "the accounts' states")
        return tuple(states.get(name, AccountFacts(name)) for name in self._accounts.names)

    async def _refresh(self) -> None:
        try:
            answers = await self._accounts.me()
            states = {
                name: AccountFacts(name, a.report, a.username, a.mail_credits, a.code) for name, a in answers.items()
            }
        except Exception:
            log.exception("the App Home could not ask MailPartner's accounts")
            states = {}
        with self._lock:
            self._states = states or self._states
            self._states_at = self._clock()
            self._refreshing = False
            waiting, self._waiting = self._waiting, set()
        for user in waiting:
            self._cancels.spawn(self.publish(user), "the Home tab")
