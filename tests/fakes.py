"""Loopback stand-ins for the outside world, shared by the tests and the benchmark.

`FakeMailPartner` is a real HTTP server that applies the sandbox's rules and can be told to be slow,
hang, reset connections or answer with any status, per mail id.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from bot.console.local_slack import LocalSlack, LoopbackServer
from bot.mailpartner.sandbox import DEFAULT_MAILS, MailPartnerSandbox, SandboxMailSpec

ROOT = Path(__file__).resolve().parent.parent
API_KEY = "mp-test-key-0123456789abcdef"
SIGNING_SECRET = "test-signing-secret-0123456789"
BOT_TOKEN = "xoxb-test-token-0123456789"
APP_TOKEN = "xapp-1-test-token"


@dataclass
class Fault:
    """What the fake does instead of (or before) answering: a status with a body, a delay, a hang, a reset."""

    status: int = 200
    body: str | None = None  # None: the sandbox's JSON answer
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    hang: bool = False
    reset: bool = False
    times: int = 1  # how many requests it applies to
    endpoint: str = "message-cancel"  # or `bulk-status`, `me`


class FakeMailPartner(LoopbackServer):
    def __init__(
        self,
        *,
        delay: float = 0.0,
        api_key: str = API_KEY,
        extra_mails: int = 0,
        others: dict[str, tuple[SandboxMailSpec, ...]] | None = None,
    ) -> None:
        """`delay`: seconds each cancel takes (delivery reports answer at once); `others`: more accounts,
        each a key and its own mails."""
        # Besides the sandbox's mails, `extra_mails` more (`m0000`, `m0001`, …) due in two hours.
        extra = tuple((f"m{i:04d}", "bulk", 7200.0, False, 1) for i in range(extra_mails))
        self.sandbox = MailPartnerSandbox(DEFAULT_MAILS + extra, api_key=api_key, others=others)
        self.delay = delay
        self.faults: dict[str, list[Fault]] = {}
        self.requests: list[dict[str, str]] = []  # message-cancel's, each its query parameters
        self.reports: list[dict[str, str]] = []  # bulk-status's
        self.unreported: set[str] = set()  # bulk-status answers code 4 for these, as MailPartner may
        self.cancels: Counter[str] = Counter()  # successful cancels per id (code 200)
        self._lock = threading.Lock()
        self._release = threading.Event()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                fake._serve(self)

            def log_message(self, *_args: object) -> None:
                pass

        super().__init__(Handler)

    @property
    def base_url(self) -> str:
        return self.url + "/v1"

    def stop(self) -> None:
        self._release.set()  # let hung requests go, or shutdown would wait for them
        super().stop()

    def fault(self, message_id: str, *faults: Fault) -> None:
        with self._lock:
            self.faults.setdefault(message_id, []).extend(faults)

    def _next_fault(self, message_id: str, endpoint: str) -> Fault | None:
        with self._lock:
            queue = self.faults.get(message_id) or []
            if not queue or queue[0].endpoint != endpoint:
                return None
            fault = queue[0]
            fault.times -= 1
            if fault.times <= 0:
                queue.pop(0)
            return fault

    def _serve(self, handler: BaseHTTPRequestHandler) -> None:
        params = dict(parse_qsl(urlsplit(handler.path).query))
        endpoint = urlsplit(handler.path).path.rsplit("/", 1)[-1]
        with self._lock:
            {"message-cancel": self.requests, "bulk-status": self.reports}.get(endpoint, []).append(params)
        message_id = params.get("messageId", "")
        fault = self._next_fault(message_id, endpoint)
        if fault and fault.hang:
            self._release.wait(60)
            return
        if fault and fault.reset:
            handler.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            handler.connection.close()
            handler.close_connection = True
            return
        time.sleep(fault.delay if fault and fault.delay else self.delay if endpoint == "message-cancel" else 0)
        if fault and fault.body is not None:
            status, body, headers = fault.status, fault.body.encode(), fault.headers
        elif endpoint == "bulk-status" and message_id in self.unreported:
            status, body, headers = (
                200,
                json.dumps({"success": False, "code": 4, "message": "introuvable"}).encode(),
                {},
            )
        else:
            status, answer = self.sandbox.answer(params, endpoint)
            if endpoint == "message-cancel" and answer.get("code") == 200:
                with self._lock:
                    self.cancels[message_id] += 1
            status = fault.status if fault else status
            body, headers = json.dumps(answer).encode(), fault.headers if fault else {}
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        for name, value in headers.items():
            handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)


def answer_to(slack: LocalSlack, response_url: str, ack: dict[str, Any], timeout: float = 10.0) -> dict[str, Any]:
    """What replaces a command's "looking up…" ack at its response_url (the ack itself when it is final)."""
    if not str(ack.get("text", "")).startswith(":mag:"):
        return ack
    path = response_url.removeprefix(slack.url)
    found = slack.wait_for(lambda c: c.path == path and c.payload.get("replace_original") is True, timeout=timeout)
    return found[0].payload if found else ack


def pids_of(root: int) -> list[int]:
    """Process `root` and its children (the bot serves Slack in one process; a peer under gunicorn in two)."""
    try:
        return [root, *(int(p) for p in Path(f"/proc/{root}/task/{root}/children").read_text().split())]
    except OSError:
        return [root]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class BotProcess:
    """`python -m bot` in HTTP mode as a child process, its log captured to a file."""

    def __init__(self, env: dict[str, str], log_path: Path, command: tuple[str, ...] = ("-m", "bot")) -> None:
        """`command`: Python's arguments; the benchmark runs its peer (`bench/peer.py`) the same way."""
        self.port = int(env["PORT"])
        self.log_path = log_path
        # The default store beside the log, as each test and benchmark run expects a store of its own.
        env = {"CANCEL_MAIL_STATE_DIR": str(log_path.parent.resolve()), **env}
        self._log = log_path.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, *command],
            env=env,
            cwd=str(log_path.parent),
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: kill() takes any child down too
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_healthy(self, timeout: float = 20.0) -> float:
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if self.proc.poll() is not None:
                raise RuntimeError(f"bot exited with {self.proc.returncode}:\n{self.log()}")
            try:
                with urllib.request.urlopen(self.url + "/healthz", timeout=1) as response:
                    if response.status == 200:
                        return time.monotonic() - started
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"bot not healthy after {timeout}s:\n{self.log()}")

    def log(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")

    def kill(self) -> None:
        """SIGKILL the bot and its workers at once, as an out-of-memory killer or a lost node would."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def stop(self, timeout: float = 30.0) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        return self.proc.returncode


BOT_VARIABLES = ("SLACK_", "MAILPARTNER_", "CANCEL_MAIL_")  # prefixes of the bot's settings


def is_proxy_variable(name: str) -> bool:
    """HTTP_PROXY, https_proxy, NO_PROXY…: a laptop's proxy must not come between a test and its fakes."""
    return name.lower().endswith("_proxy")


def outside_env() -> dict[str, str]:
    """This process's environment without any of the bot's settings or proxies, so a test sets exactly its own."""
    return {k: v for k, v in os.environ.items() if not k.startswith(BOT_VARIABLES) and not is_proxy_variable(k)}


def run_bot(args: list[str], cwd: Path, stdin: str = "", **env: str) -> subprocess.CompletedProcess[str]:
    """`python -m bot ARGS` run to its end, with only `env` of the bot's settings; its output as text."""
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**outside_env(), **env},
        timeout=60,
    )


def bot_env(port: int, slack_api_url: str, mailpartner_url: str, **extra: str) -> dict[str, str]:
    env = outside_env()
    env.update(
        {
            "SLACK_BOT_TOKEN": BOT_TOKEN,
            "SLACK_SIGNING_SECRET": SIGNING_SECRET,
            "SLACK_API_URL": slack_api_url,
            "PORT": str(port),
            "MAILPARTNER_API_KEY": API_KEY,
            "MAILPARTNER_BASE_URL": mailpartner_url,
            "MAILPARTNER_TIMEOUT": "5",
            "LOG_LEVEL": "DEBUG",
            "PYTHONUNBUFFERED": "1",
            "CANCEL_MAIL_DRAIN_GRACE": "0",  # no load balancer in front: stop at once (test_replicas.py has one)
        }
    )
    env.update(extra)
    return env


def socket_mode_env(slack_api_url: str, mailpartner_url: str, **extra: str) -> dict[str, str]:
    """`bot_env` for Socket Mode: an app-level token and no signing secret; PORT serves /healthz alone."""
    return bot_env(
        free_port(), slack_api_url, mailpartner_url, SLACK_APP_TOKEN=APP_TOKEN, SLACK_SIGNING_SECRET="", **extra
    )


Predicate = Callable[..., bool]


class FakeSocketMode:
    """Slack's Socket Mode end: a minimal WebSocket server on loopback that sends envelopes and
    collects the bot's acks. `LocalSlack.socket_url` points `apps.connections.open` here."""

    GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._conn: socket.socket | None = None
        self._conns: list[socket.socket] = []
        self._closed = False
        self._connected = threading.Event()
        self._acks: dict[str, dict] = {}
        self._changed = threading.Condition()
        self._send_lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self._listener.getsockname()[1]}/link/?ticket=test"

    def wait_connected(self, timeout: float = 20) -> bool:
        return self._connected.wait(timeout)

    def send(self, kind: str, payload: dict, **extra: object) -> str:
        envelope_id = f"env-{time.monotonic_ns()}"
        message = {
            "envelope_id": envelope_id,
            "type": kind,
            "payload": payload,
            "accepts_response_payload": kind == "slash_commands",
            **extra,
        }
        self._send_frame(0x1, json.dumps(message).encode())
        return envelope_id

    def ack_of(self, envelope_id: str, timeout: float = 10) -> dict | None:
        with self._changed:
            self._changed.wait_for(lambda: envelope_id in self._acks, timeout)
            return self._acks.get(envelope_id)

    def close(self) -> None:
        """Slack's end goes away for good: no more connections, and the open ones closed."""
        self._closed = True
        # close() alone does not wake a thread blocked in accept() on Linux: the socket would go on
        # listening, and the client would reconnect. shutdown() does wake it.
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        for conn in list(self._conns):
            with contextlib.suppress(OSError):
                conn.close()

    def _accept(self) -> None:
        import base64
        import hashlib

        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            if self._closed:
                conn.close()
                return
            self._conns.append(conn)
            request = b""
            while b"\r\n\r\n" not in request:
                chunk = conn.recv(4096)
                if not chunk:
                    break
                request += chunk
            key = next(
                line.split(":", 1)[1].strip()
                for line in request.decode().split("\r\n")
                if line.lower().startswith("sec-websocket-key:")
            )
            accept = base64.b64encode(hashlib.sha1((key + self.GUID).encode()).digest()).decode()
            conn.sendall(
                f"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Accept: {accept}\r\n\r\n".encode()
            )
            self._conn = conn
            self._send_frame(0x1, json.dumps({"type": "hello", "num_connections": 1}).encode())
            self._connected.set()
            threading.Thread(target=self._read, args=(conn,), daemon=True).start()

    def _send_frame(self, opcode: int, data: bytes) -> None:
        assert self._conn is not None, "no Socket Mode client connected"
        size = len(data)
        if size < 126:
            header = bytes([0x80 | opcode, size])
        elif size < 65536:
            header = bytes([0x80 | opcode, 126]) + size.to_bytes(2, "big")
        else:
            header = bytes([0x80 | opcode, 127]) + size.to_bytes(8, "big")
        with self._send_lock:
            self._conn.sendall(header + data)

    def _read(self, conn: socket.socket) -> None:
        def exactly(n: int) -> bytes:
            data = b""
            while len(data) < n:
                chunk = conn.recv(n - len(data))
                if not chunk:
                    raise ConnectionError
                data += chunk
            return data

        try:
            while True:
                first, second = exactly(2)
                opcode, size = first & 0x0F, second & 0x7F
                if size == 126:
                    size = int.from_bytes(exactly(2), "big")
                elif size == 127:
                    size = int.from_bytes(exactly(8), "big")
                mask = exactly(4) if second & 0x80 else b"\0\0\0\0"
                data = bytes(b ^ mask[i % 4] for i, b in enumerate(exactly(size)))
                if opcode == 0x9:
                    self._send_frame(0xA, data)
                elif opcode == 0x8:
                    return
                elif opcode == 0x1:
                    message = json.loads(data)
                    with self._changed:
                        self._acks[message.get("envelope_id", "")] = message
                        self._changed.notify_all()
        except (ConnectionError, OSError):
            return


class TcpProxy:
    """A loopback TCP relay to `target` that can be cut and restored: a database going away and coming back."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = free_port()
        self._listener: socket.socket | None = None
        self._connections: list[socket.socket] = []
        self._lock = threading.Lock()

    def start(self) -> TcpProxy:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()
        return self

    def cut(self) -> None:
        """Refuse new connections and drop the open ones."""
        with self._lock:
            listener, self._listener = self._listener, None
            connections, self._connections = self._connections, []
        if listener is not None:
            # shutdown() wakes the thread blocked in accept(); close() alone would leave it listening.
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
            connection.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self._connections += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                with contextlib.suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)


class FakeProxy(LoopbackServer):
    """A company's HTTP proxy on loopback: forwards `GET http://…` and `POST http://…` (absolute URIs, as a
    client sends them to a proxy) and tunnels `CONNECT host:port`; `seen` lists each target it was asked for."""

    def __init__(self) -> None:
        self.seen: list[str] = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                proxy._forward(self)

            do_POST = do_GET

            def do_CONNECT(self) -> None:
                proxy.seen.append(f"CONNECT {self.path}")
                host, _, port = self.path.rpartition(":")
                try:
                    upstream = socket.create_connection((host, int(port)), timeout=5)
                except OSError:
                    self.send_error(502)
                    return
                self.send_response(200, "Connection established")
                self.end_headers()
                self.wfile.flush()
                upstream.settimeout(None)
                back = threading.Thread(target=TcpProxy._pipe, args=(upstream, self.connection), daemon=True)
                back.start()
                TcpProxy._pipe(self.connection, upstream)
                back.join(5)
                self.close_connection = True

            def log_message(self, *_args: object) -> None:
                pass

        super().__init__(Handler)

    def _forward(self, handler: BaseHTTPRequestHandler) -> None:
        import http.client

        target = urlsplit(handler.path)
        self.seen.append(f"{handler.command} {target.netloc}{target.path}")
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else None
        headers = {k: v for k, v in handler.headers.items() if not k.lower().startswith("proxy-")}
        upstream = http.client.HTTPConnection(target.hostname or "", target.port or 80, timeout=30)
        try:
            path = target.path + (f"?{target.query}" if target.query else "")
            upstream.request(handler.command, path, body=body, headers={**headers, "Connection": "close"})
            answer = upstream.getresponse()
            content = answer.read()
        except OSError:
            handler.send_error(502)
            return
        finally:
            upstream.close()
        handler.send_response(answer.status, answer.reason)
        for name, value in answer.getheaders():
            if name.lower() not in ("connection", "transfer-encoding", "content-length"):
                handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(content)))
        handler.end_headers()
        handler.wfile.write(content)
