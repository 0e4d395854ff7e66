"""Serving: HTTP mode (the Bolt app behind gunicorn) and Socket Mode, each with `GET /healthz` and a
graceful drain on SIGTERM.

One worker process with many threads, kept to one CPU (bot/ops/cpu.py): acks are CPU-light and the
cancels run on the service's own pools. A second worker would cost about 40 MB and buys nothing the
benchmark needs (README, Performance); the store's claims would still keep two workers from cancelling a
mail twice.

In Socket Mode, `/healthz` on PORT also says whether the WebSocket to Slack is up: down for longer than
CANCEL_MAIL_SOCKET_GRACE, it answers 503, so an orchestrator restarts a process stuck without Slack.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from gunicorn.app.base import BaseApplication
from gunicorn.glogging import Logger
from slack_bolt import BoltRequest
from slack_bolt.adapter.wsgi.http_request import WsgiHttpRequest
from slack_bolt.adapter.wsgi.http_response import WsgiHttpResponse
from slack_sdk.signature import SignatureVerifier
from tenacity import RetryCallState, Retrying, retry_if_exception_type

from bot.app import Bot, build_bot
from bot.audit import metrics
from bot.http import RetryPolicy
from bot.inbound.shape import problem, unreadable
from bot.ops.cpu import keep_to_one_cpu
from bot.outbound.outbox import RETRY_CAP
from bot.settings import Settings
from bot.store import StoreError, open_store

log = logging.getLogger(__name__)

HTTP_THREADS = 32
WORKER_BOOT_ERROR = 3  # gunicorn's exit code for "this worker cannot boot": the master stops too
DRAIN_MARGIN = 15.0  # seconds beyond MailPartner's deadline to post outcomes on shutdown

StartResponse = Callable[..., Any]


def health(bot: Bot, link_down: str = "") -> tuple[bool, str]:
    """What `/healthz` says: healthy or not, and why, in one line, with the messages this process still owes.

    A degraded store is still healthy: cancels work without it, and a restart would not help. Messages
    waiting for Slack are no reason either: a restart would only hand them to another process. A process
    that drains, or whose link to Slack has been down past its grace, is not.
    """
    owed = bot.service.replier.ledger.owed_here
    owing = f"; {owed} message(s) owed to people, waiting for Slack" if owed else ""
    if not bot.service.accepting:
        return False, "draining" + owing
    if link_down:
        return False, link_down + owing
    problem = bot.store.problem
    return True, ("ok; store degraded: " + problem if problem else "ok") + owing


def _plain(start_response: StartResponse, status: str, text: str) -> list[bytes]:
    """A one-line text/plain answer: health, refusals, not found."""
    body = (text + "\n").encode()
    start_response(status, [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


def _answer(start_response: StartResponse, ok: bool, text: str) -> list[bytes]:
    return _plain(start_response, "200 OK" if ok else "503 Service Unavailable", text)


def _is_health_check(environ: dict[str, Any]) -> bool:
    return environ.get("PATH_INFO") == "/healthz" and environ.get("REQUEST_METHOD") in ("GET", "HEAD")


class BotWSGI:
    """`POST /slack/events` to Bolt; `GET /healthz` answers as `health` says.

    A request whose body is not what Slack sends is answered here, before Bolt's listeners (inbound.py):
    400 when it is signed, 401 when it is not. Bolt reads each body once: this parses it, Bolt dispatches it.
    """

    def __init__(self, bot: Bot, signing_secret: str) -> None:
        self.bot = bot
        self._verifier = SignatureVerifier(signing_secret)

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if _is_health_check(environ):
            return _answer(start_response, *health(self.bot))
        if environ.get("REQUEST_METHOD") != "POST" or environ.get("PATH_INFO") != "/slack/events":
            return _plain(start_response, "404 Not Found", "not found")
        body = _read_body(environ)
        http = WsgiHttpRequest(environ)  # its headers and query, as Bolt's own adapter reads them
        # Bolt parses the body here, once: the check below reads what the listeners will read.
        try:
            request = BoltRequest(body=body.decode("utf-8"), query=http.query_string, headers=http.get_headers())
            wrong = problem(request.body)
        except (ValueError, AttributeError, TypeError) as error:  # Bolt's parser on a body it cannot read
            wrong = unreadable(error)
        if wrong:
            status = "400 Bad Request" if self._signed(environ, body) else "401 Unauthorized"
            log.warning("refused a request with a malformed body (%s): %s", status[:3], wrong)
            return _plain(start_response, status, "bad request")
        answer = self.bot.app.dispatch(request)
        response = WsgiHttpResponse(status=answer.status, headers=answer.headers, body=answer.body)
        start_response(response.status, response.get_headers())
        return response.get_body()

    def _signed(self, environ: dict[str, Any], body: bytes) -> bool:
        try:
            return self._verifier.is_valid(
                body, environ.get("HTTP_X_SLACK_REQUEST_TIMESTAMP", ""), environ.get("HTTP_X_SLACK_SIGNATURE", "")
            )
        except (ValueError, TypeError):  # no timestamp, or not a number
            return False


def _read_body(environ: dict[str, Any]) -> bytes:
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    return environ["wsgi.input"].read(length) if length > 0 else b""


class SocketLinkWatch:
    """Samples whether the Socket Mode WebSocket is up; names how long it has been down past `grace`."""

    def __init__(
        self, is_connected: Callable[[], bool], grace: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._is_connected, self._grace, self._clock = is_connected, grace, clock
        self._down_since: float | None = clock()  # not yet connected: the grace covers the first dial too
        self._stop = threading.Event()

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

    def start(self, every: float = 1.0) -> SocketLinkWatch:
        def run() -> None:
            while not self._stop.wait(every):
                try:
                    self.sample()
                except Exception:  # a probe must never take the process down
                    log.exception("Socket Mode: could not sample the WebSocket")

        threading.Thread(target=run, name="socket-link-watch", daemon=True).start()
        return self

    def stop(self) -> None:
        self._stop.set()


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, *_args: object) -> None:  # probes every few seconds would flood the log
        pass


def serve_health(bot: Bot, port: int, watch: SocketLinkWatch) -> WSGIServer:
    """`/healthz` on `port` in a thread of its own (Socket Mode has no HTTP server otherwise)."""

    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if _is_health_check(environ):
            return _answer(start_response, *health(bot, watch.problem()))
        return _plain(start_response, "404 Not Found", "not found")

    server = make_server("0.0.0.0", port, app, handler_class=_QuietHandler)
    threading.Thread(target=server.serve_forever, name="healthz", daemon=True).start()
    return server


class _GunicornLogs(Logger):  # type: ignore[misc]
    """gunicorn's own lines go through the bot's handler: one format (text or JSON), secrets masked."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        for gunicorn_log in (self.error_log, self.access_log):
            for handler in list(gunicorn_log.handlers):
                gunicorn_log.removeHandler(handler)
            gunicorn_log.propagate = True


# How gunicorn serves HTTP mode (the benchmark serves its peer the same way): one worker process, whose
# threads take Slack's requests; a second worker would add about 40 MB for no gain.
GUNICORN_OPTIONS: dict[str, Any] = {
    "workers": 1,
    "worker_class": "gthread",
    "threads": HTTP_THREADS,
    "backlog": 2048,
    "keepalive": 5,
    "timeout": 60,
    # gunicorn's control socket ($HOME/.gunicorn/gunicorn.ctl) is one path for every gunicorn of a user:
    # replicas on one host would take it from each other, and a read-only home cannot hold it.
    "control_socket_disable": True,
    # The worker keeps to one CPU (bot/ops/cpu.py); the bot leaves this out when CANCEL_MAIL_ONE_CPU=false.
    "post_worker_init": lambda _worker: keep_to_one_cpu(),
}


class GunicornServer(BaseApplication):  # type: ignore[misc]
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.bot: Bot | None = None
        super().__init__()

    def load_config(self) -> None:
        drain = self.settings.mailpartner_deadline + DRAIN_MARGIN
        options = {
            "bind": f"0.0.0.0:{self.settings.port}",
            **GUNICORN_OPTIONS,
            "graceful_timeout": int(drain) + 5,
            "loglevel": self.settings.log_level.lower(),
            "accesslog": None,
            "worker_exit": self._drain,
            "proc_name": "cancel-mail-bot",
            "logger_class": _GunicornLogs,
        }
        if not self.settings.one_cpu:
            del options["post_worker_init"]
        if self.settings.metrics_port:
            # The master serves /metrics on its own port: the sum of every worker's values.
            options["when_ready"] = lambda _server: metrics.serve(
                self.settings.metrics_port, metrics.multiprocess_registry()
            )
            options["child_exit"] = lambda _server, worker: metrics.worker_gone(worker.pid)
        for key, value in options.items():
            self.cfg.set(key, value)

    def load(self) -> BotWSGI:
        # Runs in the worker after fork: the service's threads and the store's pool must start there.
        try:
            # The master migrated the store before forking: the workers only connect.
            self.bot = build_bot(self.settings, store=open_store(self.settings.database_url, migrated=True))
        except StoreError as error:
            log.error("cancel-mail-bot cannot start: DATABASE_URL: %s", error)
            raise SystemExit(WORKER_BOOT_ERROR) from error
        log.info("HTTP mode: POST /slack/events and GET /healthz on port %d", self.settings.port)
        if self.settings.metrics_port:
            log.info("metrics on port %d at /metrics (served by the master process)", self.settings.metrics_port)
        return BotWSGI(self.bot, self.settings.slack_signing_secret)

    def _drain(self, _server: object, _worker: object) -> None:
        if self.bot is not None:
            self.bot.shutdown(self.settings.mailpartner_deadline + DRAIN_MARGIN)


def serve_http(settings: Settings) -> None:
    # Set before any worker imports prometheus_client: their values then go to files the master sums.
    values = metrics.use_multiprocess_dir() if settings.metrics_port else ""
    # What the master has loaded stays shared with its workers: keep the collector from touching (and so
    # copying) those pages in every worker.
    gc.freeze()
    try:
        GunicornServer(settings).run()
    finally:
        if values:
            metrics.remove_multiprocess_dir(values)


def serve_socket_mode(settings: Settings) -> None:
    import signal

    from slack_bolt.adapter.socket_mode import SocketModeHandler

    bot = build_bot(settings)
    if settings.one_cpu:
        keep_to_one_cpu()
    if settings.metrics_port:
        metrics.serve(settings.metrics_port, bot.metrics.registry)
        log.info("metrics on port %d at /metrics", settings.metrics_port)
    handler = SocketModeHandler(bot.app, settings.slack_app_token)
    watch = SocketLinkWatch(handler.client.is_connected, settings.socket_grace).start()
    health_server = serve_health(bot, settings.port, watch)
    log.info("Socket Mode: GET /healthz on port %d", settings.port)

    def stop(_signum: int, _frame: object) -> None:
        log.info("%s: no new work; finishing the cancels in flight", signal.Signals(_signum).name)
        handler.close()
        bot.shutdown(settings.mailpartner_deadline + DRAIN_MARGIN)
        watch.stop()
        health_server.shutdown()
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)  # Ctrl-C drains too, like gunicorn does in HTTP mode
    log.info("Socket Mode: connecting to Slack")
    connect_until_slack_answers(handler.connect)
    threading.Event().wait()  # until a signal drains and exits


def connect_until_slack_answers(
    connect: Callable[[], None], policy: RetryPolicy | None = None, sleep: Callable[[float], None] = time.sleep
) -> None:
    """Open the WebSocket, trying again while Slack does not answer: a process started during an outage
    stays up, delivers what is owed once Slack is back, and is healthy until the grace runs out."""
    retrying = Retrying(
        wait=policy or RetryPolicy(cap=RETRY_CAP),  # as messages: back within 30 s of Slack
        retry=retry_if_exception_type(Exception),  # slack_sdk raises whatever its HTTP call or WebSocket dial met
        before_sleep=_say_slack_is_unreachable,
        sleep=sleep,
        reraise=True,
    )
    retrying(connect)


def _say_slack_is_unreachable(state: RetryCallState) -> None:
    error = state.outcome.exception() if state.outcome is not None else None
    wait = state.next_action.sleep if state.next_action is not None else 0.0
    log.warning("Socket Mode: cannot reach Slack (%s); trying again in %.0f s", type(error).__name__, wait)
