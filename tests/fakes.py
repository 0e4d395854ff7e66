"""Loopback stand-ins for the outside world, shared by the tests and the benchmark.

`FakeMailPartner` is a real HTTP server that applies the sandbox's rules and can be told to be slow,
hang, reset connections or answer with any status, per mail id.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

from bot.sandbox import DEFAULT_MAILS, MailPartnerSandbox

ROOT = Path(__file__).resolve().parent.parent
API_KEY = "mp-test-key-0123456789abcdef"
SIGNING_SECRET = "test-signing-secret-0123456789"
BOT_TOKEN = "xoxb-test-token-0123456789"


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


class QuietHTTPServer(ThreadingHTTPServer):
    """A client that gives up mid-answer (the bot's timeout) is expected here, not an error to print."""

    daemon_threads = True
    request_queue_size = 1024

    def handle_error(self, request: object, client_address: object) -> None:
        pass


class FakeMailPartner:
    def __init__(self, *, delay: float = 0.0, api_key: str = API_KEY, extra_mails: int = 0) -> None:
        # Besides the sandbox's mails, `extra_mails` more (`m0000`, `m0001`, …) due in two hours.
        extra = tuple((f"m{i:04d}", "bulk", 7200.0, False) for i in range(extra_mails))
        self.sandbox = MailPartnerSandbox(DEFAULT_MAILS + extra, api_key=api_key)
        self.delay = delay
        self.faults: dict[str, list[Fault]] = {}
        self.requests: list[dict[str, str]] = []
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

        self._server = QuietHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def start(self) -> FakeMailPartner:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._release.set()
        self._server.shutdown()
        self._server.server_close()

    def fault(self, message_id: str, *faults: Fault) -> None:
        with self._lock:
            self.faults.setdefault(message_id, []).extend(faults)

    def _next_fault(self, message_id: str) -> Fault | None:
        with self._lock:
            queue = self.faults.get(message_id) or []
            if not queue:
                return None
            fault = queue[0]
            fault.times -= 1
            if fault.times <= 0:
                queue.pop(0)
            return fault

    def _serve(self, handler: BaseHTTPRequestHandler) -> None:
        params = dict(parse_qsl(urlsplit(handler.path).query))
        with self._lock:
            self.requests.append(params)
        message_id = params.get("messageId", "")
        fault = self._next_fault(message_id)
        if fault and fault.hang:
            self._release.wait(60)
            return
        if fault and fault.reset:
            handler.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            handler.connection.close()
            handler.close_connection = True
            return
        time.sleep(fault.delay if fault and fault.delay else self.delay)
        if fault and fault.body is not None:
            status, body, headers = fault.status, fault.body.encode(), fault.headers
        else:
            status, answer = self.sandbox.answer(params)
            if answer.get("code") == 200:
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


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class BotProcess:
    """`python -m bot` in HTTP mode as a child process, its log captured to a file."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.port = int(env["PORT"])
        self.log_path = log_path
        self._log = log_path.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bot"],
            env=env,
            cwd=str(log_path.parent),
            stdout=self._log,
            stderr=subprocess.STDOUT,
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


def bot_env(port: int, slack_api_url: str, mailpartner_url: str, **extra: str) -> dict[str, str]:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "MAILPARTNER_", "CANCEL_MAIL_"))}
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
        }
    )
    env.update(extra)
    return env


Predicate = Callable[..., bool]
