"""A local stand-in for Slack's Web API and `response_url`s, served on loopback.

The console and the tests point the bot's `WebClient` here (`SLACK_API_URL`) and hand out
`response_url`s from here, then read back every message the bot sent. It answers like Slack does
for the methods the bot uses, and can be told to fail a method a number of times, to enforce a rate
limit, or to go down altogether for a while (`outage`): answering 503, dropping connections, or hanging.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qsl

BOT_USER_ID = "U0BOT00000"


@dataclass
class SlackCall:
    """One thing the bot sent: a Web API call (`/api/chat.postMessage`) or a `response_url` post."""

    path: str
    payload: dict[str, Any]
    token: str = ""  # the bearer token the call was made with
    time: float = field(default_factory=time.monotonic)
    response: dict[str, Any] = field(default_factory=dict)

    @property
    def method(self) -> str:
        return self.path.removeprefix("/api/")

    @property
    def is_response_url(self) -> bool:
        return self.path.startswith("/response/")


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # a client that hung up (a timeout on its side) is no news for a local stand-in


class LoopbackServer:
    """A threaded HTTP server on loopback, started and stopped with the object that answers for it."""

    def __init__(self, handler: type[BaseHTTPRequestHandler], host: str = "127.0.0.1", port: int = 0) -> None:
        self._server = _QuietServer((host, port), handler)
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> Self:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()


@dataclass
class _Limit:
    """Slack's rate limit on a method: one call per `every` seconds after a burst, per channel or workspace."""

    every: float
    burst: int
    per_channel: bool
    next_free: dict[str, float] = field(default_factory=dict)  # scope → when a call is allowed again

    def admit(self, scope: str, now: float) -> float:
        """0 when the call may go; else the seconds to wait (Retry-After). The generic cell rate algorithm."""
        due = max(self.next_free.get(scope, now), now)
        if due - now > self.every * (self.burst - 1):
            return due - now - self.every * (self.burst - 1)
        self.next_free[scope] = due + self.every
        return 0.0


@dataclass
class _Failure:
    status: int
    body: dict[str, Any]
    headers: dict[str, str]
    times: int


class LocalSlack(LoopbackServer):
    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.calls: list[SlackCall] = []
        self.usergroups: dict[str, list[str]] = {}
        # user → the locale users.info gives; none for the others, so the bot falls back to its own language
        self.locales: dict[str, str] = {}
        self.home_views: dict[str, dict[str, Any]] = {}  # user → the home view views.publish last gave
        self.delays: dict[str, float] = {}  # method → seconds it takes to answer (`slow()`)
        self.socket_url = ""  # what apps.connections.open hands out (Socket Mode tests)
        # X-OAuth-Scopes of the token
        self.scopes = "commands,chat:write,app_mentions:read,usergroups:read,users:read,im:history"
        self._failures: dict[str, _Failure] = {}
        self._limits: dict[str, _Limit] = {}
        self.rate_limited = 0  # calls answered 429 by a limit
        self.down_until = 0.0  # an outage (monotonic time it ends) and how it shows: see outage()
        self.down_how = ""
        self.refused_in_outage = 0
        self._changed = threading.Condition()
        self._ts = itertools.count(1)
        self._urls = itertools.count(1)
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as Slack's own servers

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length).decode("utf-8", "replace")
                if fake._down(self):
                    return
                token = (self.headers.get("Authorization") or "").removeprefix("Bearer ")
                path, _, query = self.path.partition("?")
                if delay := fake.delays.get(path.rsplit("/", 1)[-1]):  # a slow method (`slow()`)
                    time.sleep(delay)
                status, body, headers = fake._handle(path, raw, self.headers.get("Content-Type", ""), token, query)
                data = json.dumps(body).encode() if body is not None else b"ok"
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "application/json" if body is not None else "text/plain")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST

            def log_message(self, *_args: object) -> None:
                pass

        super().__init__(Handler, host, port)

    @property
    def api_url(self) -> str:
        return self.url + "/api/"

    def new_response_url(self) -> str:
        return f"{self.url}/response/{next(self._urls)}"

    def fail(
        self,
        target: str,
        *,
        times: int = 1,
        status: int = 200,
        error: str = "",
        headers: dict[str, str] | None = None,
    ) -> None:
        """Make the next `times` calls to `target` (a method like `chat.postMessage`, or `response_url`) fail."""
        body = {"ok": False, "error": error or "fatal_error"} if target != "response_url" else {"error": error}
        self._failures[target] = _Failure(status, body, headers or {}, times)

    def slow(self, method: str, seconds: float) -> None:
        """Make every call to `method` take `seconds` before its answer."""
        self.delays[method] = seconds

    def outage(self, seconds: float, how: str = "503") -> None:
        """Be down for `seconds` from now, for every method and response_url: `503` answers HTTP 503,
        `drop` closes each connection without an answer, `hang` holds each request until the outage ends
        and then closes it without an answer."""
        if how not in ("503", "drop", "hang"):
            raise ValueError(f"unknown outage {how!r}")
        self.down_how, self.down_until = how, time.monotonic() + seconds

    def _down(self, handler: BaseHTTPRequestHandler) -> bool:
        """Answer as a Slack that is down; False when it is up."""
        left = self.down_until - time.monotonic()
        if left <= 0:
            return False
        with self._changed:
            self.refused_in_outage += 1
        if self.down_how == "hang":
            time.sleep(left)
        if self.down_how == "503":
            data = b"<html>503 Service Unavailable</html>"
            handler.send_response(503)
            handler.send_header("Content-Type", "text/html")
            handler.send_header("Content-Length", str(len(data)))
            handler.end_headers()
            handler.wfile.write(data)
        else:
            handler.close_connection = True
        return True

    def limit(self, method: str, *, every: float, burst: int = 1, per_channel: bool = True) -> None:
        """Enforce a rate limit on `method` as Slack does: 429 with Retry-After past it (`response_url`: per URL)."""
        self._limits[method] = _Limit(every, burst, per_channel)

    def wait_for(self, predicate: Any, count: int = 1, timeout: float = 10.0) -> list[SlackCall]:
        """Wait until at least `count` calls match `predicate(call)`; return them."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                found = [c for c in self.calls if predicate(c)]
                if len(found) >= count or (remaining := deadline - time.monotonic()) <= 0:
                    return found
                self._changed.wait(remaining)

    def of(self, method: str) -> list[SlackCall]:
        with self._changed:
            return [c for c in self.calls if c.method == method or (method == "response_url" and c.is_response_url)]

    def _handle(
        self, path: str, raw: str, content_type: str, token: str = "", query: str = ""
    ) -> tuple[int, dict[str, Any] | None, dict[str, str]]:
        payload: dict[str, Any]
        if "json" in content_type:
            try:
                payload = json.loads(raw or "{}")
            except json.JSONDecodeError:
                payload = {"_raw": raw}
        else:
            payload = dict(parse_qsl(raw))
        payload.update(parse_qsl(query))  # some slack_sdk methods send their arguments in the query string
        call = SlackCall(path, payload, token)
        key = "response_url" if call.is_response_url else call.method
        with self._changed:
            failure = self._failures.get(key)
            limit = self._limits.get(key)
            scope = (call.path if call.is_response_url else str(payload.get("channel", ""))) if limit else ""
            wait = limit.admit(scope if limit and limit.per_channel else "*", time.monotonic()) if limit else 0.0
            if wait:
                self.rate_limited += 1
                call.response = {"failed": 429, "ok": False, "error": "ratelimited"}
                answer = (429, {"ok": False, "error": "ratelimited"}, {"Retry-After": f"{wait:.3g}"})
            elif failure and failure.times > 0:
                failure.times -= 1
                call.response = {"failed": failure.status, **failure.body}
                answer = (failure.status, failure.body if key != "response_url" else None, failure.headers)
            elif call.is_response_url:
                answer = (200, None, {})
            else:
                call.response = self._answer(call)
                answer = (200, call.response, {"X-OAuth-Scopes": self.scopes})
            self.calls.append(call)
            self._changed.notify_all()
        return answer

    def delivered(self, method: str) -> list[SlackCall]:
        """Calls to `method` (or `response_url`) that were answered with success."""
        return [c for c in self.of(method) if "failed" not in c.response]

    def _answer(self, call: SlackCall) -> dict[str, Any]:
        payload = call.payload
        if call.method == "auth.test":
            return {
                "ok": True,
                "url": "https://local.slack/",
                "team": "Local",
                "user": "cancel-mail",
                "team_id": "T0LOCAL000",
                "user_id": BOT_USER_ID,
                "bot_id": "B0BOT00000",
            }
        if call.method in ("chat.postMessage", "chat.postEphemeral"):
            ts = f"{int(time.time())}.{next(self._ts):06d}"
            return {
                "ok": True,
                "channel": payload.get("channel"),
                "ts": ts,
                "message_ts": ts,
                "message": {"text": payload.get("text"), "ts": ts},
            }
        if call.method == "chat.update":
            return {"ok": True, "channel": payload.get("channel"), "ts": payload.get("ts")}
        if call.method == "chat.getPermalink":
            return {
                "ok": True,
                "permalink": f"https://local.slack/archives/{payload.get('channel')}/"
                f"p{str(payload.get('message_ts', '')).replace('.', '')}",
            }
        if call.method == "apps.connections.open":
            return {"ok": True, "url": self.socket_url} if self.socket_url else {"ok": False, "error": "not_allowed"}
        if call.method in ("views.open", "views.update"):
            view = payload.get("view")
            view = json.loads(view) if isinstance(view, str) else view or {}
            view_id = str(payload.get("view_id") or f"V{next(self._ts):09d}")
            return {"ok": True, "view": {**view, "id": view_id, "state": {"values": {}}}}
        if call.method in ("functions.completeSuccess", "functions.completeError"):
            return {"ok": True} if payload.get("function_execution_id") else {"ok": False, "error": "invalid_arguments"}
        if call.method == "users.info":  # https://api.slack.com/methods/users.info: user, include_locale
            user = str(payload.get("user") or "")
            if not user:
                return {"ok": False, "error": "invalid_arguments"}
            found: dict[str, Any] = {"id": user, "name": user.lower()}
            if str(payload.get("include_locale")).lower() in ("true", "1") and user in self.locales:
                found["locale"] = self.locales[user]
            return {"ok": True, "user": found}
        if call.method == "views.publish":  # https://api.slack.com/methods/views.publish: user_id, view, hash
            view = payload.get("view")
            view = json.loads(view) if isinstance(view, str) else view
            if not payload.get("user_id") or not isinstance(view, dict) or view.get("type") != "home":
                return {"ok": False, "error": "invalid_arguments"}
            self.home_views[str(payload["user_id"])] = view
            return {"ok": True, "view": {**view, "id": f"V{next(self._ts):09d}", "hash": f"h{next(self._ts)}"}}
        if call.method == "usergroups.users.list":
            return {"ok": True, "users": self.usergroups.get(str(payload.get("usergroup")), [])}
        return {"ok": False, "error": "unknown_method"}
