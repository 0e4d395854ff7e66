"""MailPartner accounts: which key a mail is cancelled with, and what MailPartner says of it beforehand.

An agency runs a MailPartner sub-account per client, each with its own key, and a mail id means nothing
without its account. The bot names a mail by a reference: `brand-b:301` (account `brand-b`, id `301`),
or a bare `301`, which it places by the first rule that applies:

    the request names the account (`brand-b:301`) ........ that account
    the channel has one (CANCEL_MAIL_CHANNEL_ACCOUNTS) ... that account
    there is one account ................................. that one
    several: each account's `bulk-status` is asked ....... the one account that knows the id; if none or
                                                            several do, `default` where it exists, else
                                                            the person is asked to name the account

Every reference the bot shows is qualified (`brand-b:301`), so that the prompt, the outcome, the audit
trail, history, the workflow outputs and the metrics name the account; a bare id means `default`, which
is how a bot with MAILPARTNER_API_KEY alone shows its mails: as typed. The preview (`bulk-status` of each
mail, all at once) waits PREVIEW_WAIT seconds at most and never blocks a cancel: no answer is said as
such, and the confirm stays.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from bot.http import AsyncHttp
from bot.mailpartner.answers import Report
from bot.mailpartner.client import MESSAGE_ID_SYNTAX, AccountReport, CancelOutcome, DeliveryReport, MailPartnerClient

DEFAULT = "default"  # the account of MAILPARTNER_API_KEY
ACCOUNT_NAME_SYNTAX = r"[a-z0-9][a-z0-9-]{0,30}"
ACCOUNT_NAME = re.compile(rf"^{ACCOUNT_NAME_SYNTAX}$")
# An account's name, a colon, a mail id. 64 characters in all: a reference fits the store's mail columns.
MAX_REF_LENGTH = 64
MAIL_REF = re.compile(rf"^(?=.{{1,{MAX_REF_LENGTH}}}$)(?:{ACCOUNT_NAME_SYNTAX}:)?{MESSAGE_ID_SYNTAX}$")
PREVIEW_WAIT = 2.0  # seconds the preview may take, at most, before the prompt goes out without it


def split_ref(ref: str) -> tuple[str, str]:
    """`brand-b:301` → (`brand-b`, `301`); `301` → (``, `301`)."""
    account, _, message_id = ref.rpartition(":")
    return account, message_id


@dataclass(frozen=True)
class Preview:
    """What MailPartner says of the mails before the click."""

    refs: tuple[str, ...]  # each request's reference, its account placed (qualified when there are several)
    reports: dict[str, DeliveryReport | None] = field(default_factory=dict)  # None: no answer in time
    unplaced: tuple[str, ...] = ()  # ids no rule could place: the person must name the account

    def report(self, ref: str) -> DeliveryReport | None:
        return self.reports.get(ref)

    @property
    def gone_out(self) -> tuple[str, ...]:
        """Delivered to every recipient: a cancel would only answer code 7."""
        return tuple(r for r in self.refs if (report := self.reports.get(r)) is not None and report.gone_out)

    @property
    def already_cancelled(self) -> tuple[str, ...]:
        """Cancelled already: a cancel would only answer code 5."""
        return tuple(r for r in self.refs if (report := self.reports.get(r)) is not None and report.already_cancelled)

    @property
    def left(self) -> tuple[str, ...]:
        """What a confirm would still cancel: neither gone out nor cancelled already."""
        settled = {*self.gone_out, *self.already_cancelled}
        return tuple(r for r in self.refs if r not in settled)


class Accounts:
    """The accounts the bot acts in, by name; their calls are coroutines on the event loop. `http`: the one
    client they share, closed with them."""

    def __init__(
        self,
        clients: Mapping[str, MailPartnerClient],
        *,
        channels: Mapping[str, str] | None = None,
        wait: float = PREVIEW_WAIT,
        http: AsyncHttp | None = None,
    ) -> None:
        if not clients:
            raise ValueError("no MailPartner account")
        self._clients = dict(clients)
        self._channels = dict(channels or {})
        self.wait = wait
        self._http = http

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._clients)

    @property
    def several(self) -> bool:
        return len(self._clients) > 1

    def unknown(self, refs: Iterable[str]) -> list[str]:
        """The account names in `refs` that are not configured."""
        named = (split_ref(ref)[0] for ref in refs)
        return list(dict.fromkeys(a for a in named if a and a not in self._clients))

    def account_of(self, ref: str) -> str:
        return split_ref(ref)[0] or DEFAULT

    async def cancel(self, ref: str) -> CancelOutcome:
        """Cancel with the key of the reference's account; the outcome carries the reference."""
        outcome = await self._clients[self.account_of(ref)].cancel(split_ref(ref)[1])
        return dataclasses.replace(outcome, message_id=ref)

    async def preview(self, refs: Sequence[str], channel: str = "") -> Preview:
        """Place each reference in its account and ask each mail's delivery report, all at once, for
        `wait` seconds at most. Never raises for anything MailPartner does."""
        plan = {ref: self._candidates(ref, channel) for ref in refs}
        asked = {
            (ref, account): asyncio.ensure_future(
                self._clients[account].delivery_report(split_ref(ref)[1], timeout=self.wait)
            )
            for ref, accounts in plan.items()
            for account in accounts
        }
        await asyncio.wait(asked.values(), timeout=self.wait)
        for task in asked.values():
            task.cancel()  # those still asking: no answer in time
        answers = {
            key: t.result() if t.done() and not t.cancelled() and not t.exception() else None
            for key, t in asked.items()
        }
        placed: list[str] = []
        reports: dict[str, DeliveryReport | None] = {}
        unplaced: list[str] = []
        for ref, accounts in plan.items():
            account = accounts[0] if len(accounts) == 1 else self._by_reports(ref, accounts, answers)
            if account is None:
                unplaced.append(split_ref(ref)[1])
                continue
            message_id = split_ref(ref)[1]
            qualified = message_id if self.names == (DEFAULT,) else f"{account}:{message_id}"
            placed.append(qualified)
            reports[qualified] = answers.get((ref, account))
        return Preview(tuple(dict.fromkeys(placed)), reports, tuple(unplaced))

    async def me(self) -> dict[str, AccountReport]:
        """Each account's `me`: its user and credits (`check`), asked all at once."""
        answers = await asyncio.gather(*(client.account() for client in self._clients.values()))
        return dict(zip(self._clients, answers, strict=True))

    async def aclose(self) -> None:
        for client in self._clients.values():
            await client.aclose()
        if self._http is not None:
            await self._http.aclose()

    def _candidates(self, ref: str, channel: str) -> list[str]:
        account = split_ref(ref)[0] or self._channels.get(channel, "")
        return [account] if account else list(self._clients) if self.several else [self.names[0]]

    def _by_reports(
        self, ref: str, accounts: list[str], answers: Mapping[tuple[str, str], DeliveryReport | None]
    ) -> str | None:
        knowing = [a for a in accounts if (r := answers.get((ref, a))) is not None and r.report is Report.FOUND]
        if len(knowing) == 1:
            return knowing[0]
        return DEFAULT if DEFAULT in self._clients else None
