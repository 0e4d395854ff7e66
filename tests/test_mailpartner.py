"""Layer 1: the MailPartner adapter against httpx.MockTransport — every code, failure kind and retry."""

from __future__ import annotations

import asyncio
import contextlib
import http.server
import json
import logging
import socket
import socketserver
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from bot import (
    CancelOutcome,
    FailureKind,
    InvalidMessageId,
    MailPartnerClient,
)
from bot.audit.logs import configure_logging
from bot.http import AsyncHttp

pytestmark = pytest.mark.anyio

KEY = "secret-api-key-123456"
Handler = Callable[[httpx.Request], httpx.Response]


def client_for(
    *answers: Handler | httpx.Response | Exception, deadline: float = 30.0
) -> tuple[MailPartnerClient, list]:
    """A client whose successive requests get `answers` in turn (the last one repeats)."""
    seen: list[httpx.Request] = []
    sleeps: list[float] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        answer = answers[min(len(seen), len(answers)) - 1]
        if isinstance(answer, Exception):
            raise answer
        return answer(request) if callable(answer) else answer

    async def sleep(seconds: float) -> None:  # the waits are counted, not slept
        sleeps.append(seconds)

    client = MailPartnerClient(
        KEY,
        base_url="https://mp.test/v1",
        timeout=1,
        deadline=deadline,
        transport=httpx.MockTransport(handle),
        sleep=sleep,
    )
    client.sleeps = sleeps  # type: ignore[attr-defined]
    return client, seen


def body(code: int, message: str = "", success: bool | None = None) -> httpx.Response:
    return httpx.Response(
        200, json={"success": code == 200 if success is None else success, "code": code, "message": message}
    )


@pytest.mark.parametrize("code", [1, 3, 4, 5, 6, 7, 10, 200, 11, 42])
async def test_every_control_code_is_kept_with_its_message(code: int) -> None:
    client, seen = client_for(body(code, f"message {code}"))
    outcome = await client.cancel("300")
    assert (outcome.code, outcome.message, outcome.failure) == (code, f"message {code}", None)
    assert outcome.attempts == 1 and len(seen) == 1
    assert outcome.cancelled is (code in (200, 5))


async def test_request_shape_params_and_json() -> None:
    client, seen = client_for(body(200))
    await client.cancel("ab-C_9")
    request = seen[0]
    assert request.method == "GET" and request.url.path == "/v1/message-cancel"
    assert dict(request.url.params) == {"apiKey": KEY, "messageId": "ab-C_9", "_format": "json"}
    assert request.headers["accept"] == "application/json"


async def test_body_is_read_whatever_the_status() -> None:
    client, _ = client_for(httpx.Response(400, json={"success": False, "code": 10, "message": "Clé API incorrecte"}))
    outcome = await client.cancel("300")
    assert outcome.code == 10 and outcome.http_status == 400


async def test_validation_errors_list_is_quoted() -> None:
    answer = httpx.Response(400, json={"success": False, "code": 9, "errors": [{"elementId": "x", "message": "bad"}]})
    client, _ = client_for(answer)
    outcome = await client.cancel("300")
    assert (outcome.code, outcome.message) == (9, "bad")


async def test_string_code_and_success_without_code() -> None:
    assert (await client_for(httpx.Response(200, json={"code": "4"}))[0].cancel("1")).code == 4
    assert (await client_for(httpx.Response(200, json={"success": True}))[0].cancel("1")).code == 200


@pytest.mark.parametrize(
    ("answer", "kind", "status"),
    [
        (httpx.Response(500, text="<html>Internal error</html>"), FailureKind.HTTP_ERROR, 500),
        (httpx.Response(404, text="not here"), FailureKind.HTTP_ERROR, 404),
        (httpx.Response(200, text="<result><entry>4</entry></result>"), FailureKind.MALFORMED, 200),
        (httpx.Response(200, json={"hello": "world"}), FailureKind.MALFORMED, 200),
        (httpx.Response(200, json=[1, 2]), FailureKind.MALFORMED, 200),
        (httpx.Response(200, json={"code": True}), FailureKind.MALFORMED, 200),
    ],
)
async def test_answers_without_a_code_are_failures_naming_the_status(answer, kind, status) -> None:
    client, seen = client_for(answer)
    outcome = await client.cancel("300")
    assert (outcome.failure, outcome.http_status, outcome.code) == (kind, status, None)
    assert len(seen) == 1  # not retried


async def test_connection_failure_is_retried_then_reported() -> None:
    client, seen = client_for(httpx.ConnectError("refused"), deadline=3)
    outcome = await client.cancel("300")
    assert outcome.failure is FailureKind.CONNECTION and len(seen) >= 2 and outcome.attempts == len(seen)


async def test_timeout_then_code_5_is_cancelled_confirmed_on_retry() -> None:
    client, seen = client_for(httpx.ReadTimeout("slow"), body(5))
    outcome = await client.cancel("300")
    assert outcome.code == 5 and outcome.confirmed_on_retry and outcome.cancelled
    assert outcome.attempts == len(seen) == 2


async def test_code_5_on_first_attempt_is_plain_already_cancelled() -> None:
    outcome = await client_for(body(5))[0].cancel("300")
    assert outcome.code == 5 and not outcome.confirmed_on_retry


async def test_timeout_everywhere_is_unknown_outcome() -> None:
    client, seen = client_for(httpx.ReadTimeout("slow"), deadline=2)
    outcome = await client.cancel("300")
    assert outcome.failure is FailureKind.TIMEOUT and len(seen) >= 2


async def test_timeout_then_connection_error_stays_unknown() -> None:
    client, _ = client_for(httpx.ReadTimeout("slow"), httpx.ConnectError("refused"), deadline=2)
    assert (await client.cancel("300")).failure is FailureKind.TIMEOUT


async def test_503_then_success() -> None:
    client, seen = client_for(httpx.Response(503, text="busy"), body(200))
    outcome = await client.cancel("300")
    assert outcome.code == 200 and len(seen) == 2 and not outcome.confirmed_on_retry


async def test_429_honours_retry_after() -> None:
    client, seen = client_for(httpx.Response(429, headers={"Retry-After": "7"}, text="slow down"), body(200))
    outcome = await client.cancel("300")
    assert outcome.code == 200 and len(seen) == 2
    assert client.sleeps == [7.0]  # type: ignore[attr-defined]


async def test_retry_after_as_an_http_date_is_honoured() -> None:
    from email.utils import format_datetime

    from bot.http import retry_after

    soon = format_datetime(datetime.now(UTC) + timedelta(seconds=7), usegmt=True)
    assert 5 < (retry_after({"Retry-After": soon}) or 0) <= 7
    assert retry_after({"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}) == 0.0  # passed: at once
    assert retry_after({"Retry-After": "soon"}) is None and retry_after({}) is None
    client, seen = client_for(httpx.Response(503, headers={"Retry-After": soon}, text="down"), body(200))
    outcome = await client.cancel("300")
    assert outcome.code == 200 and outcome.attempts == 2 and len(seen) == 2
    assert 5 < client.sleeps[0] <= 7  # type: ignore[attr-defined]


async def test_retry_after_beyond_deadline_stops() -> None:
    client, seen = client_for(httpx.Response(429, headers={"Retry-After": "120"}, text="slow down"), deadline=30)
    outcome = await client.cancel("300")
    assert outcome.failure is FailureKind.HTTP_ERROR and outcome.http_status == 429 and len(seen) == 1


async def test_control_codes_are_not_retried() -> None:
    client, seen = client_for(body(10, "Clé API incorrecte"))
    assert (await client.cancel("300")).code == 10 and len(seen) == 1


@pytest.mark.parametrize("bad", ["", "a b", "../x", "x" * 65, "300&apiKey=evil", "é"])
async def test_invalid_ids_never_reach_the_network(bad: str) -> None:
    client, seen = client_for(body(200))
    with pytest.raises(InvalidMessageId):
        await client.cancel(bad)
    assert seen == []


async def test_key_never_logged_even_by_httpx(capsys) -> None:
    stream = __import__("io").StringIO()
    configure_logging("DEBUG", [KEY], stream=stream)
    logging.getLogger("httpx").setLevel(logging.DEBUG)  # as if someone turned it up
    client, _ = client_for(httpx.ReadTimeout("slow"), body(200))
    await client.cancel("300")
    logging.getLogger("httpx").info("HTTP Request: GET https://mp.test/v1/message-cancel?apiKey=%s&messageId=300", KEY)
    try:
        raise RuntimeError(f"boom with {KEY}")
    except RuntimeError:
        logging.getLogger("bot").exception("failure")
    output = stream.getvalue()
    assert "apiKey=[REDACTED]" in output and "boom with [REDACTED]" in output
    assert KEY not in output and KEY not in repr(client)
    configure_logging("WARNING", [])


def test_outcome_label() -> None:
    assert CancelOutcome("1", code=6).label == "code 6"
    assert CancelOutcome("1", failure=FailureKind.TIMEOUT).label == "timeout"


# -- httpx.Client's pool of kept-alive connections, on a real loopback server -----------------------------


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self, answer: Callable[[http.server.BaseHTTPRequestHandler], None], tls: ssl.SSLContext | None = None
    ) -> None:
        self.answer, self.connections, self.paths, self.scheme = answer, 0, [], "https" if tls else "http"

        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                server.connections += 1
                super().setup()

            def do_GET(self) -> None:
                server.paths.append(self.path)
                server.answer(self)

            def log_message(self, *_args: object) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        if tls is not None:
            self.socket = tls.wrap_socket(self.socket, server_side=True)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.server_address[1]}/v1"


def json_answer(
    code: int, *, close: bool = False, say_so: bool = True
) -> Callable[[http.server.BaseHTTPRequestHandler], None]:
    def answer(handler: http.server.BaseHTTPRequestHandler) -> None:
        data = json.dumps({"success": code == 200, "code": code, "message": "ok"}).encode()
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        if close and say_so:
            handler.send_header("Connection", "close")
        handler.end_headers()
        handler.wfile.write(data)
        handler.close_connection = close

    return answer


@contextlib.contextmanager
def served(
    answer: Callable[[http.server.BaseHTTPRequestHandler], None], tls: ssl.SSLContext | None = None
) -> Iterator[_Server]:
    """A loopback server answering each GET with `answer`; over TLS with `tls`, a server's context."""
    server = _Server(answer, tls)
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


async def test_the_client_keeps_connections_alive_and_sends_the_query() -> None:
    with served(json_answer(200)) as server:
        client = MailPartnerClient(KEY, base_url=server.url, timeout=2)
        assert [(await client.cancel(m)).code for m in ("300", "301", "302")] == [200, 200, 200]
        assert server.connections == 1  # kept alive, call after call
        assert server.paths[0] == f"/v1/message-cancel?apiKey={KEY}&messageId=300&_format=json"
        await client.aclose()


async def test_calls_in_flight_share_one_client_bounded_by_its_limits() -> None:
    with served(json_answer(200)) as server:
        http = AsyncHttp(timeout=5, connections=3)
        client = MailPartnerClient(KEY, base_url=server.url, timeout=5, http=http)
        outcomes = await asyncio.gather(*(client.cancel(f"3{i:02d}") for i in range(12)))
        assert [o.code for o in outcomes] == [200] * 12
        assert server.connections == 3  # twelve at once, over three kept-alive connections
        await http.aclose()


@pytest.mark.parametrize("say_so", [True, False], ids=["connection-close", "closed-while-idle"])
async def test_transport_sends_again_on_a_fresh_connection_when_the_kept_one_was_closed(say_so: bool) -> None:
    # The server closes after every answer, saying so or not. Unsaid, httpx's pool finds the connection
    # closed before it reuses it, or, when the close has not reached it yet, the request meets a closed
    # socket before the server sees it and the cancel's retry sends it on a fresh connection. Either way
    # MailPartner sees each cancel once.
    with served(json_answer(200, close=True, say_so=say_so)) as server:
        client = MailPartnerClient(KEY, base_url=server.url, timeout=2)
        outcomes = [await client.cancel(m) for m in ("300", "301")]
        assert [o.code for o in outcomes] == [200, 200] and not any(o.confirmed_on_retry for o in outcomes)
        assert server.connections == 2 and len(server.paths) == 2  # each request reached the server once
        if say_so:
            assert [o.attempts for o in outcomes] == [1, 1]
        await client.aclose()


async def test_transport_a_refused_connection_is_a_connection_failure() -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    client = MailPartnerClient(KEY, base_url=f"http://127.0.0.1:{port}/v1", timeout=1, deadline=0.1)
    outcome = await client.cancel("300")
    assert outcome.failure is FailureKind.CONNECTION and "ConnectError" in outcome.detail
    await client.aclose()


async def test_transport_no_answer_in_time_is_a_timeout() -> None:
    def slow(handler: http.server.BaseHTTPRequestHandler) -> None:
        time.sleep(1.0)
        json_answer(200)(handler)

    with served(slow) as server:
        client = MailPartnerClient(KEY, base_url=server.url, timeout=0.2, deadline=0.1)
        outcome = await client.cancel("300")
        assert outcome.failure is FailureKind.TIMEOUT and outcome.attempts == 1
        await client.aclose()


async def test_a_timeout_is_said_in_seconds_as_people_read_them() -> None:
    client, _ = client_for(httpx.ReadTimeout("slow"), deadline=0.549541)
    outcome = await client.cancel("300")
    assert "no answer within 0.5 s" in outcome.detail, outcome.detail
    await client.aclose()


async def test_transport_each_failure_is_httpx_own_kind() -> None:
    """aiohttp's pools under httpx's client: what fails reaches callers as httpx's exceptions, by kind."""

    def hang_up(handler: http.server.BaseHTTPRequestHandler) -> None:
        handler.close_connection = True  # the request read, no answer: the connection dropped under way

    def half_body(handler: http.server.BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Length", "100")
        handler.end_headers()
        handler.wfile.write(b'{"code": 2')  # then the connection closes
        handler.close_connection = True

    http_ = AsyncHttp(timeout=1, connections=4)
    try:
        for answer, kind in ((hang_up, httpx.RemoteProtocolError), (half_body, httpx.ReadError)):
            with served(answer) as server, pytest.raises(kind):
                await http_.request("GET", server.url)
        with socket.socket() as unused:
            unused.bind(("127.0.0.1", 0))
            port = unused.getsockname()[1]
        with pytest.raises(httpx.ConnectError):
            await http_.request("GET", f"http://127.0.0.1:{port}/")
    finally:
        await http_.aclose()


async def test_transport_a_garbled_answer_is_a_connection_failure_not_a_crash() -> None:
    def garbled(handler: http.server.BaseHTTPRequestHandler) -> None:
        handler.wfile.write(b"NOT HTTP AT ALL\r\n\r\n")
        handler.close_connection = True

    with served(garbled) as server:
        client = MailPartnerClient(KEY, base_url=server.url, timeout=1, deadline=0.1)
        outcome = await client.cancel("300")
        assert outcome.failure is FailureKind.CONNECTION and outcome.code is None
        await client.aclose()


async def test_a_name_that_does_not_resolve_is_said_at_once_and_not_retried(monkeypatch) -> None:
    """A DNS answer does not change in seconds: one attempt, and the outcome and the preview say why."""
    from bot.words.blocks import preview_text, render_outcome

    real = socket.getaddrinfo

    def resolve(host: str, *args: object, **kwargs: object) -> object:
        if host == "mailpartner.invalid":
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return real(host, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    client = MailPartnerClient(KEY, base_url="https://mailpartner.invalid/v1", timeout=1, deadline=30)
    try:
        started = time.monotonic()
        outcome = await client.cancel("300")
        assert outcome.failure is FailureKind.NAME_UNRESOLVED and outcome.attempts == 1
        assert time.monotonic() - started < 5  # was 13 attempts over 28 s
        assert "does not resolve (DNS)" in render_outcome(outcome, "en")
        assert "ne se résout pas (DNS)" in render_outcome(outcome, "fr")
        report = await client.delivery_report("300")
        assert report.failure is FailureKind.NAME_UNRESOLVED
    finally:
        await client.aclose()
    from bot.mailpartner.accounts import Preview

    said = preview_text(Preview(("300",), {"300": report}), "en")
    assert "MailPartner's address does not resolve (DNS): check MAILPARTNER_BASE_URL" in said


async def test_an_answer_past_the_size_cap_is_refused_as_unreadable_without_being_held(monkeypatch) -> None:
    import bot.mailpartner.client as client_module

    monkeypatch.setattr(client_module, "MAX_ANSWER_BYTES", 1000)
    rows = [{"email": f"person{i}@example.fr", "status": "Scheduled"} for i in range(100)]
    huge = httpx.Response(200, json={"success": True, "code": 200, "StatutResponseList": rows})
    client, _ = client_for(huge)
    report = await client.delivery_report("300")
    assert report.failure is FailureKind.MALFORMED and report.total == 0
    outcome = await client.cancel("300")
    assert outcome.failure is FailureKind.MALFORMED and "bytes, more than the 1000 read" in outcome.detail
    small, _ = client_for(body(200))
    assert (await small.cancel("300")).code == 200  # under the cap: read as ever
    await client.aclose()
    await small.aclose()
