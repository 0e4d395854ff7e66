"""Who may act, and where: allowed users, user groups and channels, and the two-person rule.

Checked on every request and every click, against the person who clicked: anyone who can see a
public prompt can press its buttons.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.requests.kinds import Refusal
from bot.requests.ticket import PromptTicket
from bot.settings import Settings

log = logging.getLogger(__name__)

# Seconds a request waits for the user groups' first read from Slack: acked within Slack's 3 s either way.
FIRST_READ_WAIT = 2.0


class UserGroupDirectory:
    """Members of the allowed Slack user groups, cached so checks on the ack path stay in memory.

    On the event loop: the members are read with slack_sdk's AsyncWebClient. A stale cache is still
    served while one refresh (a task) runs; only the very first check waits for Slack, through `load()`
    (bounded by the Web API client's timeout), and every check waiting then shares that one read.
    """

    def __init__(
        self,
        client: AsyncWebClient,
        groups: frozenset[str],
        ttl: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._groups = groups
        self._ttl = ttl
        self._clock = clock
        self._members: frozenset[str] | None = None
        self._loaded_at = 0.0
        self._reading: asyncio.Task[frozenset[str]] | None = None  # the one read under way, if any

    @property
    def loaded(self) -> bool:
        """The members have been read once: a check answers from memory."""
        return self._members is not None

    async def load(self) -> frozenset[str]:
        """The members, read from Slack if never read yet (or while Slack has not answered)."""
        if self._members is not None or not self._groups:
            return self.members()
        return await asyncio.shield(self._read())

    def members(self) -> frozenset[str]:
        """From memory, on the loop: stale, they are still the answer while one refresh reads them anew;
        never read yet, nobody (`load()` first)."""
        if self._members is not None and self._clock() - self._loaded_at >= self._ttl:
            self._read()
        return self._members or frozenset()

    def _read(self) -> asyncio.Task[frozenset[str]]:
        if self._reading is None or self._reading.done():
            self._reading = asyncio.get_running_loop().create_task(self._refresh(), name="user groups")
        return self._reading

    async def _refresh(self) -> frozenset[str]:
        found: set[str] = set()
        try:
            for group in sorted(self._groups):
                answer = await self._client.usergroups_users_list(usergroup=group)
                found.update(answer.get("users", []))
        except SlackApiError as error:
            log.error("usergroups.users.list failed (%s): user groups are not resolved", error.response.get("error"))
            return self._members or frozenset()
        except Exception:
            log.exception("usergroups.users.list failed: user groups are not resolved")
            return self._members or frozenset()
        self._members, self._loaded_at = frozenset(found), self._clock()
        return self._members


class AccessPolicy:
    def __init__(self, settings: Settings, groups: UserGroupDirectory | None = None) -> None:
        self._users = settings.allowed_users
        self._channels = settings.allowed_channels
        self._groups = groups if settings.allowed_usergroups else None
        self._group_ids = settings.allowed_usergroups
        self.second_person = settings.require_second_person

    async def ready(self) -> None:
        """The user groups' members read, so that every check answers from memory: the first time (or while
        Slack does not answer) the request waits for Slack's answer, FIRST_READ_WAIT seconds at most, so that
        it is still acked in time; the event loop never waits. Unread then, a check says so (GROUPS_UNREAD)."""
        if self._groups is not None and not self._groups.loaded:
            with contextlib.suppress(TimeoutError):  # the read goes on; the next request finds it done
                await asyncio.wait_for(self._groups.load(), FIRST_READ_WAIT)

    @property
    def channels(self) -> tuple[str, ...]:
        """Where people may act (CANCEL_MAIL_ALLOWED_CHANNELS); empty: everywhere."""
        return tuple(sorted(self._channels))

    @property
    def who_may(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """The users and user groups allowed (ids), to tell someone refused whom to ask."""
        return tuple(sorted(self._users)), tuple(sorted(self._group_ids))

    def check_user(self, user: str) -> Refusal | None:
        """Whether `user` may act anywhere at all (their App Home says so)."""
        if (not self._users and self._groups is None) or user in self._users:
            return None
        if self._groups is None:
            return Refusal.NOT_ALLOWED_USER
        if not self._groups.loaded:  # Slack has not said who is in the groups: not a no, a "cannot tell"
            return Refusal.GROUPS_UNREAD
        return None if user in self._groups.members() else Refusal.NOT_ALLOWED_USER

    def _channel_refusal(self, channel: str) -> Refusal | None:
        if self._channels and channel not in self._channels:
            return Refusal.NOT_ALLOWED_CHANNEL
        return None

    def check_request(self, user: str, channel: str) -> Refusal | None:
        return self._channel_refusal(channel) or self.check_user(user)

    def check_confirm(self, user: str, channel: str, ticket: PromptTicket) -> Refusal | None:
        if refusal := self.check_request(user, channel):
            return refusal
        # The rule as it is now also binds prompts made before it was switched on.
        if (ticket.second_person or self.second_person) and user == ticket.requester:
            return Refusal.OWN_REQUEST
        return None

    def check_keep(self, user: str, channel: str, ticket: PromptTicket) -> Refusal | None:
        # The requester may always withdraw their own request, even under the two-person rule.
        if user == ticket.requester:
            return self._channel_refusal(channel)
        return self.check_request(user, channel)
