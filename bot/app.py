"""Assembly: settings in, a ready Bolt `App`, its `CancelService`, store and sweeper out.

I/O at assembly: the store is opened (and migrated); Slack's auth.test is `sign_in()`'s alone.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import aiohttp
from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncSlackResponse, AsyncWebClient

from bot.audit.metrics import Metrics
from bot.audit.trail import AuditTrail
from bot.cancels.engine import LEASE_MARGIN, CancelService
from bot.cancels.prompts import Prompts
from bot.cancels.recovery import Sweeper
from bot.cancels.workflow import WorkflowSteps
from bot.http import AsyncHttp, Proxies, tls_context
from bot.inbound.access import AccessPolicy, UserGroupDirectory
from bot.inbound.home import Home
from bot.inbound.identity import BotIdentity
from bot.inbound.listeners import ListenerDeps, register
from bot.inbound.people import Languages
from bot.loop import EventLoop, LoopThread
from bot.mailpartner.accounts import Accounts
from bot.mailpartner.client import MailPartnerClient
from bot.mailpartner.sandbox import SANDBOX_ACCOUNTS, MailPartnerSandbox
from bot.outbound.ledger import Ledger
from bot.outbound.outbox import Outbox
from bot.outbound.replies import Replier
from bot.outbound.webapi import SlackHttp
from bot.settings import Settings
from bot.store import Store, open_store

log = logging.getLogger(__name__)


@dataclass
class Bot:
    app: AsyncApp
    service: CancelService
    store: Store
    sweeper: Sweeper | None
    sandbox: MailPartnerSandbox | None
    metrics: Metrics
    languages: Languages
    identity: BotIdentity
    loop: EventLoop
    slack_session: aiohttp.ClientSession | None = None  # every slack_sdk call's connections

    async def aclose(self, timeout: float) -> bool:
        """Stop sweeping, let in-flight cancels post (up to `timeout` s), write the last history rows, close
        every connection. On the loop, as a coroutine: the drain awaits, and holds no thread."""
        self.identity.close()
        if self.sweeper is not None:
            await self.sweeper.stop()
        drained = await self.service.drain(timeout)
        await self.service.accounts.aclose()
        await self.service.replier.aclose()
        if self.slack_session is not None:
            await self.slack_session.close()
        await self.store.close()  # the last history rows
        return drained

    def shutdown(self, timeout: float) -> bool:
        """`aclose()` from a thread that is not the loop's (the console, tests), then the loop's own thread
        stopped when the bot keeps one; a second call finds nothing left to do."""
        if self.loop.loop.is_closed():
            return True
        drained = self.loop.run(self.aclose(timeout), timeout=timeout + 40)
        self.loop.close()
        return drained


SLACK_CONNECTIONS = 32  # slack_sdk's reads at once (users.info, views.publish…); more wait for a connection


def slack_session(loop: asyncio.AbstractEventLoop) -> aiohttp.ClientSession:
    """One aiohttp session for slack_sdk's calls: connections kept alive between calls (by itself slack_sdk
    opens a session, a DNS lookup, a TCP and a TLS handshake for every call), the bot's one TLS context.
    Made for `loop`, from any thread; closed by `Bot.aclose`."""
    connector = aiohttp.TCPConnector(loop=loop, ssl=tls_context(), limit=SLACK_CONNECTIONS)
    return aiohttp.ClientSession(connector=connector, loop=loop, trust_env=False)


def async_web_client(settings: Settings, session: aiohttp.ClientSession | None = None) -> AsyncWebClient:
    """slack_sdk's client on the event loop: Bolt's, and every read the bot makes (views.open, users.info,
    views.publish, usergroups.users.list, auth.test). Messages to people never go through it: they are
    owed, and leave through bot/outbound/ledger.py.

    Its route is the bot's own (`Proxies`): slack_sdk reads HTTPS_PROXY by itself and ignores NO_PROXY, so
    the choice is set after it read; its certificates are the bot's one TLS context."""
    client = AsyncWebClient(
        token=settings.slack_bot_token,
        base_url=settings.slack_api_url,
        timeout=10,
        ssl=tls_context(),
        session=session,
        retry_handlers=[
            AsyncConnectionErrorRetryHandler(max_retry_count=2),
            AsyncRateLimitErrorRetryHandler(max_retry_count=3),
            AsyncServerErrorRetryHandler(max_retry_count=2),
        ],
    )
    client.proxy = Proxies().for_url(settings.slack_api_url)  # None: direct, as NO_PROXY may say
    return client


class SlackSignInError(Exception):
    """auth.test failed; the message names the setting to fix. `unreachable`: Slack did not answer at all."""

    def __init__(self, message: str, *, unreachable: bool) -> None:
        super().__init__(message)
        self.unreachable = unreachable


async def sign_in(settings: Settings) -> AsyncSlackResponse:
    """Call auth.test once, turning a refused token or an unreachable Slack into one readable line."""
    try:
        return await async_web_client(settings).auth_test()
    except SlackApiError as error:
        status = error.response.status_code
        if status == 429 or status >= 500:  # Slack is having a bad day; the token was not refused
            raise SlackSignInError(f"Slack is unavailable (HTTP {status})", unreachable=True) from error
        raise SlackSignInError(
            f"Slack refused SLACK_BOT_TOKEN ({error.response.get('error')})", unreachable=False
        ) from error
    except Exception as error:
        route = Proxies().blame(settings.slack_api_url)  # a proxy in the way is what may have failed
        raise SlackSignInError(
            f"Slack is unreachable at {settings.slack_api_url}{route} ({type(error).__name__})", unreachable=True
        ) from error


def mailpartner_accounts(
    settings: Settings,
    *,
    sandbox: MailPartnerSandbox | None = None,
    on_attempt: Callable[[str, float], None] | None = None,
) -> Accounts:
    """A client per MailPartner account: the real API, or the sandbox's two accounts behind the very same
    client when `sandbox` is given."""
    # One client for MailPartner, every account's: the key travels in each call's query.
    http = AsyncHttp(
        timeout=settings.mailpartner_timeout,
        connections=settings.workers,
        transport=sandbox.transport() if sandbox else None,
    )
    clients = {
        name: MailPartnerClient(
            key,
            base_url=settings.mailpartner_base_url,
            timeout=settings.mailpartner_timeout,
            deadline=settings.mailpartner_deadline,
            http=http,
            on_attempt=on_attempt,
        )
        for name, key in account_keys(settings, sandbox).items()
    }
    return Accounts(clients, channels=settings.channel_accounts, http=http)


def account_keys(settings: Settings, sandbox: MailPartnerSandbox | None) -> Mapping[str, str]:
    """Each account's key, by name: the settings', or the sandbox's two."""
    return {name: key for name, (key, _) in SANDBOX_ACCOUNTS.items()} if sandbox else settings.mailpartner_accounts


def build_bot(
    settings: Settings,
    *,
    sandbox: MailPartnerSandbox | None = None,
    clock: Callable[[], float] = time.time,
    store: Store | None = None,
    outbox: Outbox | None = None,
    sweep: bool = True,
    loop: EventLoop | None = None,
) -> Bot:
    """Raises StoreError when the store cannot be opened or migrated. `clock` is the prompts' and the
    store's; `outbox` one with another clock, backoff or deadline (tests); `loop` the running event loop
    of the caller (the servers', who then open the `store` on it first), else the bot keeps one on a
    thread of its own."""
    if loop is None:
        loop = LoopThread()
        if store is None:
            try:
                opening = open_store(settings.database_url, clock=clock, create_folder=settings.default_store)
                store = loop.run(opening)
            except BaseException:
                loop.close()
                raise
    if store is None:
        raise ValueError("build_bot on the caller's loop needs the store opened there first")
    if settings.mailpartner_sandbox and sandbox is None:
        sandbox = MailPartnerSandbox.with_accounts(settings.sandbox_state)
    metrics = Metrics(tuple(account_keys(settings, sandbox)))
    accounts = mailpartner_accounts(settings, sandbox=sandbox, on_attempt=metrics.mailpartner_attempt)
    audit = AuditTrail(store, metrics, sandbox=sandbox is not None)
    # No auth.test at assembly nor on any request's path: the process must start while Slack is down, to
    # deliver what earlier processes owe, and a command must get its prompt while Slack's Web API is out of
    # reach. The bot's own ids come when Slack answers (inbound/identity.py).
    session = slack_session(loop.loop)
    async_client = async_web_client(settings, session)
    identity = BotIdentity(async_client, settings.slack_bot_token, loop=loop).learn_in_background()
    app = AsyncApp(
        name="cancel-mail-bot",  # else Bolt reads the source of every file on the stack to name itself
        signing_secret=settings.slack_signing_secret or "",
        client=async_client,
        authorize=identity.authorize,
        # Listeners only parse, check and queue, on the event loop: the response goes out as soon as they
        # return. Their work after the ack is the service's (`spawn()`), kept for the drain.
        process_before_response=True,
    )
    outbox = (outbox or Outbox()).bind(loop)
    slack_http = SlackHttp(settings.slack_api_url, settings.slack_bot_token)
    ledger = Ledger(
        slack_http,
        outbox,
        store,
        audit,
        deadline=settings.delivery_deadline,
        lease=settings.mailpartner_deadline + LEASE_MARGIN,
        metrics=metrics,
    )
    replier = Replier(ledger)
    steps = WorkflowSteps(store, audit, replier)
    languages = Languages(async_client, settings.language, loop=loop)
    service = CancelService(
        accounts,
        replier,
        store,
        steps,
        lang=settings.language,
        sandbox=sandbox is not None,
        loop=loop,
        audit=audit,
        deadline=settings.mailpartner_deadline,
        audit_channel=settings.audit_channel,
        metrics=metrics,
        lang_of=languages.of,
        on_finished=lambda user: home.after_cancel(user),  # `home` is made below: it shows the service's cancels
        max_in_flight=settings.max_in_flight,
    )
    groups = UserGroupDirectory(async_client, settings.allowed_usergroups) if settings.allowed_usergroups else None
    if groups is not None:
        loop.submit(groups.load())  # read at start-up, so the first check finds them in memory
    access = AccessPolicy(settings, groups)
    home = Home(
        async_client,
        access=access,
        store=store,
        accounts=accounts,
        cancels=service,
        languages=languages,
        sandbox=sandbox is not None,
    )
    prompts = Prompts(
        accounts,
        lang=settings.language,
        sandbox=sandbox is not None,
        prompt_ttl=settings.prompt_ttl,
        second_person=access.second_person,
        clock=clock,
    )
    deps = ListenerDeps(
        cancels=service,
        prompts=prompts,
        replier=replier,
        store=store,
        steps=steps,
        accounts=accounts,
        access=access,
        languages=languages,
        home=home,
        lang=settings.language,
        sandbox=sandbox is not None,
        prompt_ttl=settings.prompt_ttl,
        require_reason=settings.require_reason,
        audit=audit,
        clock=clock,
    )
    register(app, deps)
    if sandbox is not None:
        log.warning("MailPartner SANDBOX is active: no real mail is cancelled; every outcome is marked SANDBOX")
    sweeper = None
    if sweep:
        sweeper = Sweeper(
            store,
            service,
            lang=settings.language,
            sandbox=sandbox is not None,
            history_days=settings.history_days,
            metrics=metrics,
        )
        loop.submit(sweeper.run())
    return Bot(
        app=app,
        service=service,
        store=store,
        sweeper=sweeper,
        sandbox=sandbox,
        metrics=metrics,
        languages=languages,
        identity=identity,
        loop=loop,
        slack_session=session,
    )
