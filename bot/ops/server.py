"""Serving: HTTP mode (the Bolt app behind an aiohttp server on one event loop) and Socket Mode, each with
`GET /healthz` and a graceful drain on SIGTERM.

HTTP mode is one process on one event loop. A request is read there, its body capped at
CANCEL_MAIL_MAX_BODY_BYTES (a larger one gets 413 before it is read) and within READ_TIMEOUT seconds of the
connection (headers) or of the headers (body), so a client that is not Slack costs a coroutine, never a
thread, and `/healthz` answers beside any number of them. A whole request then goes to Bolt's `AsyncApp`
on the same loop, whose listeners only parse, check and queue.

On SIGTERM in HTTP mode, `/healthz` answers 503 at once while the listener stays open for
CANCEL_MAIL_DRAIN_GRACE seconds, serving every request as usual, so load balancers and Kubernetes take the
process out before it stops listening; then the listener closes and the work in flight finishes (the drain).
A second SIGTERM or SIGINT ends the grace early.

In Socket Mode, `/healthz` on PORT also says whether the WebSocket to Slack is up: down for longer than
CANCEL_MAIL_SOCKET_GRACE, it answers 503, so an orchestrator restarts a process stuck without Slack.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.signature import SignatureVerifier
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type

from bot.app import Bot, SlackSignInError, build_bot, sign_in, slack_session
from bot.audit import metrics
from bot.http import Proxies, RetryPolicy
from bot.inbound.shape import problem, unreadable
from bot.loop import EventLoop
from bot.outbound.outbox import RETRY_CAP
from bot.settings import Mode, Settings
from bot.store import Store, open_store

log = logging.getLogger(__name__)

BACKLOG = 2048  # connections the kernel holds before they are accepted: a burst of 500 fits
# Seconds a client has to send its headers from the connection (and between two requests on one), then its
# body from the headers: Slack sends either in milliseconds. A client that sends slowly is cut off then.
READ_TIMEOUT = 10.0
DRAIN_MARGIN = 15.0  # seconds beyond MailPartner's deadline to post outcomes on shutdown


def health(bot: Bot, link_down: str = "", *, leaving: bool = False, slack: str = "") -> tuple[bool, str]:
    """What `/healthz` says: healthy or not, and why, in one line, with the messages this process still owes.

    A degraded store is still healthy: cancels work without it, and a restart would not help. Messages
    waiting for Slack are no reason either: a restart would only hand them to another process. A process
    that is leaving (SIGTERM, its grace), drains, or whose link to Slack has been down past its grace, is not.
    """
    owed = bot.service.replier.ledger.owed_here
    notes = f"; {owed} message(s) owed to people, waiting for Slack" if owed else ""
    notes += f"; {slack}" if slack else ""  # the sign-in, while it is not done
    if not bot.service.accepting:
        return False, "draining" + notes
    if leaving:
        return False, "stopping: still serving while load balancers take this process out" + notes
    if link_down:
        return False, link_down + notes
    problem = bot.store.problem
    return True, ("ok; store degraded: " + problem if problem else "ok") + notes


def _is_health_check(request: web.Request) -> bool:
    return request.path == "/healthz" and request.method in ("GET", "HEAD")


def _health_answer(bot: Bot, link_down: str = "", *, leaving: bool = False, slack: str = "") -> web.Response:
    ok, text = health(bot, link_down, leaving=leaving, slack=slack)
    return _text(200 if ok else 503, text)


def _text(status: int, text: str) -> web.Response:
    """A one-line text/plain answer: health, refusals, not found."""
    return web.Response(status=status, text=text + "\n")


class FrontDoor:
    """`POST /slack/events` to Bolt; `GET /healthz` answers as `health` says; anything else 404.

    A request whose body is not what Slack sends is answered here, before Bolt's listeners (inbound.py):
    400 when it is signed, 401 when it is not. Bolt reads each body once: this parses it, Bolt dispatches it.
    """

    def __init__(self, bot: Bot, signing_secret: str, *, max_body: int, sign_in: SignIn | None = None) -> None:
        self.bot = bot
        self.max_body = max_body
        self.sign_in = sign_in
        self.leaving = False  # SIGTERM came: /healthz says 503, requests are still served (the grace)
        self._verifier = SignatureVerifier(signing_secret)

    def app(self) -> web.Application:
        app = web.Application(client_max_size=self.max_body)
        app.router.add_route("*", "/{path:.*}", self.handle)
        return app

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if _is_health_check(request):
            slack = self.sign_in.state if self.sign_in else ""
            return _health_answer(self.bot, leaving=self.leaving, slack=slack)
        if request.method != "POST" or request.path != "/slack/events":
            return _text(404, "not found")
        if (request.content_length or 0) > self.max_body:  # refused before a byte of it is read
            log.warning("refused a request of %d bytes (413): more than any Slack payload", request.content_length)
            return _text(413, "request body too large")
        try:
            async with asyncio.timeout(READ_TIMEOUT):
                body = await request.read()
        except web.HTTPRequestEntityTooLarge:  # a body with no length that went past the cap
            log.warning("refused a request body past %d bytes (413)", self.max_body)
            return _text(413, "request body too large")
        except TimeoutError:
            log.warning("refused a request whose body did not arrive within %.0f s (408)", READ_TIMEOUT)
            return _text(408, "request body too slow")
        # Bolt parses the body here, once: the check below reads what the listeners will read.
        try:
            bolt = AsyncBoltRequest(
                body=body.decode("utf-8"), query=request.query_string, headers=dict(request.headers)
            )
            wrong = problem(bolt.body)
        except (ValueError, AttributeError, TypeError) as error:  # Bolt's parser on a body it cannot read
            wrong = unreadable(error)
        if wrong:
            status = 400 if self._signed(request, body) else 401
            log.warning("refused a request with a malformed body (%d): %s", status, wrong)
            return _text(status, "bad request")
        return await to_aiohttp_response(await self.bot.app.async_dispatch(bolt))

    def _signed(self, request: web.Request, body: bytes) -> bool:
        try:
            return self._verifier.is_valid(
                body,
                request.headers.get("X-Slack-Request-Timestamp", ""),
                request.headers.get("X-Slack-Signature", ""),
            )
        except (ValueError, TypeError):  # no timestamp, or not a number
            return False


class SocketLinkWatch:
    """Samples whether the Socket Mode WebSocket is up; names how long it has been down past `grace`."""

    def __init__(
        self, is_connected: Callable[[], bool], grace: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._is_connected, self._grace, self._clock = is_connected, grace, clock
        self._down_since: float | None = clock()  # not yet connected: the grace covers the first dial too

    def sample(self) -> None:
        if self._is_connected():
            self._down_since = None
        elif self._down_since is None:
            self._down_since = self._clock()
            log.warning("Socket Mode: the WebSocket to Slack is down; reconnecting")

    def problem(self) -> str:
        if self._down_since is None:
            return ""
        down = self._clock() - self._down_since
        return f"Slack WebSocket down for {down:.0f} s" if down > self._grace else ""


async def serve(settings: Settings) -> None:
    """The store opened (and migrated), then HTTP mode or Socket Mode until SIGTERM or SIGINT, and the drain:
    the cancels in flight finish and post (MAILPARTNER_DEADLINE + DRAIN_MARGIN at most), what Slack did not
    take stays owed in the store. Slack is signed in to in the background: the start never waits on it.
    Raises StoreError, or SlackSignInError for a refused token (the process stops, drained)."""
    store = await open_store(settings.database_url, create_folder=settings.default_store)
    signals = _stop_on_signals()
    signing_in = SignIn(settings, signals)
    task = asyncio.get_running_loop().create_task(signing_in.run(), name="slack-sign-in")
    try:
        await (_serve_socket_mode if settings.mode is Mode.SOCKET else _serve_http)(
            settings, store, signals, signing_in
        )
    finally:
        task.cancel()
    if signing_in.refused is not None:
        raise signing_in.refused


class SignIn:
    """One auth.test, in the background: a bad token becomes one clear line and stops the process; a Slack
    that does not answer is no reason to stay down (messages owed to people, this process's or those a
    stopped one left, go out once it is back, and the cancels work meanwhile). `state` is what `/healthz`
    adds while it is not done."""

    def __init__(self, settings: Settings, signals: _Signals) -> None:
        self._settings, self._signals = settings, signals
        self.state = "signing in to Slack"
        self.refused: SlackSignInError | None = None

    async def run(self) -> None:
        try:
            identity = await sign_in(self._settings)
        except SlackSignInError as error:
            if not error.unreachable:
                self.refused, self.state = error, str(error)
                self._signals.stop_now()
                return
            self.state = f"{error}; messages wait in the store until it answers"
            log.warning("cancel-mail-bot: %s; starting anyway: messages wait in the store until it answers", error)
            return
        self.state = ""
        log.warning("cancel-mail-bot: signed in to Slack as @%s (%s)", identity.get("user"), identity.get("team"))


async def _serve_http(settings: Settings, store: Store, signals: _Signals, signing_in: SignIn) -> None:
    """HTTP mode. On SIGTERM: the grace (503 on /healthz, requests served), then no new connection, the
    requests under way answered, and the drain."""
    async with _bot_on_this_loop(settings, store) as bot:
        door = FrontDoor(bot, settings.slack_signing_secret, max_body=settings.max_body_bytes, sign_in=signing_in)
        runner = await _site(door.app(), settings.port, backlog=BACKLOG)
        log.info("HTTP mode: POST /slack/events and GET /healthz on port %d", settings.port)
        await signals.stopping.wait()
        door.leaving = True
        if settings.drain_grace and not signals.hurry.is_set():
            log.info(
                "stopping: /healthz answers 503 for %g s while requests are still served, so load balancers take "
                "this process out; then the listener closes",
                settings.drain_grace,
            )
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(settings.drain_grace):
                    await signals.hurry.wait()  # a second signal: no more grace
        for site in list(runner.sites):
            await site.stop()  # no new connection; requests under way finish
    await runner.cleanup()


@contextlib.asynccontextmanager
async def _bot_on_this_loop(settings: Settings, store: Store) -> AsyncIterator[Bot]:
    """The bot, on the running loop, with its metrics served when METRICS_PORT asks; drained at the end,
    however it ends (a failed start too: the store's connections must close for the process to exit)."""
    try:
        bot = build_bot(settings, loop=EventLoop(asyncio.get_running_loop()), store=store)
    except BaseException:
        await store.close()
        raise
    try:
        if settings.metrics_port:
            metrics.serve(settings.metrics_port, bot.metrics.registry)
            log.info("metrics on port %d at /metrics", settings.metrics_port)
        yield bot
    finally:
        await _drain(bot, settings)


async def _site(app: web.Application, port: int, **options: Any) -> web.AppRunner:
    """`app` served on `port`. keepalive_timeout is armed when a connection opens and again after each
    request: a client that has not sent a whole request's headers by then is closed (aiohttp's web_protocol)."""
    runner = web.AppRunner(app, access_log=None, handle_signals=False, keepalive_timeout=READ_TIMEOUT)
    await runner.setup()
    await web.TCPSite(runner, "0.0.0.0", port, **options).start()
    return runner


async def _drain(bot: Bot, settings: Settings) -> None:
    """No new work; the cancels in flight finish and post: awaited here, on the loop."""
    await bot.aclose(settings.mailpartner_deadline + DRAIN_MARGIN)


@dataclass
class _Signals:
    stopping: asyncio.Event = field(default_factory=asyncio.Event)  # the first SIGTERM or SIGINT
    hurry: asyncio.Event = field(default_factory=asyncio.Event)  # a second one: skip what is left of the grace

    def stop_now(self) -> None:
        """Stop without a grace: the process cannot serve (a refused token)."""
        self.hurry.set()
        self.stopping.set()

    def received(self, name: str) -> None:
        if self.stopping.is_set():
            log.info("%s again: stopping without waiting out the grace", name)
            self.hurry.set()
            return
        log.info("%s: no new work once the grace is over; finishing the cancels in flight", name)
        self.stopping.set()


async def _serve_socket_mode(settings: Settings, store: Store, signals: _Signals, signing_in: SignIn) -> None:
    """Socket Mode, `/healthz` on PORT."""
    from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

    async with _bot_on_this_loop(settings, store) as bot:
        handler = AsyncSocketModeHandler(bot.app, settings.slack_app_token)
        # The WebSocket keeps a session of its own, for the process's life (apps.connections.open goes through
        # the bot's Web API client): on the bot's TLS context, not the system's certificates.
        await handler.client.aiohttp_client_session.close()
        handler.client.aiohttp_client_session = slack_session(asyncio.get_running_loop())
        link = {"up": False}
        watch = SocketLinkWatch(lambda: link["up"], settings.socket_grace)

        async def health_only(request: web.Request) -> web.Response:
            if not _is_health_check(request):
                return _text(404, "not found")
            return _health_answer(bot, watch.problem(), slack=signing_in.state)

        app = web.Application()
        app.router.add_route("*", "/{path:.*}", health_only)
        runner = await _site(app, settings.port)
        log.info("Socket Mode: GET /healthz on port %d", settings.port)

        async def sample_link() -> None:
            while True:
                await asyncio.sleep(1.0)
                try:
                    link["up"] = await handler.client.is_connected()
                    watch.sample()
                except Exception:  # a probe must never take the process down
                    log.exception("Socket Mode: could not sample the WebSocket")

        sampling = asyncio.get_running_loop().create_task(sample_link())
        log.info("Socket Mode: connecting to Slack")

        async def dial() -> None:
            # The WebSocket's URL first, here: slack_sdk's client would retry a failed one forever by itself, a
            # traceback each time, where this says it once a try, with the shared backoff.
            handler.client.wss_uri = await handler.client.issue_new_wss_url()
            # Its route as the bot's other calls take theirs (NO_PROXY honoured): slack_sdk read HTTPS_PROXY alone.
            handler.client.proxy = Proxies().for_url(handler.client.wss_uri.replace("wss://", "https://", 1))
            await handler.connect_async()

        dialling = asyncio.get_running_loop().create_task(connect_until_slack_answers(dial))
        await signals.stopping.wait()
        dialling.cancel()
        sampling.cancel()
        await handler.close_async()
    await runner.cleanup()


def _stop_on_signals() -> _Signals:
    """Told of SIGTERM and SIGINT (Ctrl-C drains too)."""
    signals = _Signals()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, signals.received, signal.Signals(signum).name)
    return signals


async def connect_until_slack_answers(
    connect: Callable[[], Awaitable[None]],
    policy: RetryPolicy | None = None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> None:
    """Open the WebSocket, trying again while Slack does not answer: a process started during an outage
    stays up, delivers what is owed once Slack is back, and is healthy until the grace runs out."""
    retrying = AsyncRetrying(
        wait=policy or RetryPolicy(cap=RETRY_CAP),  # as messages: back within 30 s of Slack
        retry=retry_if_exception_type(Exception),  # slack_sdk raises whatever its HTTP call or WebSocket dial met
        before_sleep=_say_slack_is_unreachable,
        sleep=sleep,
        reraise=True,
    )
    await retrying(connect)


def _say_slack_is_unreachable(state: RetryCallState) -> None:
    error = state.outcome.exception() if state.outcome is not None else None
    wait = state.next_action.sleep if state.next_action is not None else 0.0
    log.warning("Socket Mode: cannot reach Slack (%s); trying again in %.0f s", type(error).__name__, wait)
