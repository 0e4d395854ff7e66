"""Kept-alive `http.client` connections, one per calling thread and host, for the bot's two hot paths
(Slack's Web API and `response_url`s, MailPartner's `message-cancel`).

A thread's own connection needs no pool, no lock and no scan of other connections: the thread pools
that make the calls bound how many there are. A connection the server closes is closed here too and
reopened on the thread's next call; `close()` closes them all on shutdown.
"""

from __future__ import annotations

import http.client
import ssl
import threading


class ThreadConnections:
    """Thread-safe: each thread sees only its own connections."""

    def __init__(self, *, timeout: float | None = None, tls: ssl.SSLContext | None = None) -> None:
        self._timeout = timeout
        # One TLS context for all: building one costs milliseconds and memory.
        self._tls = tls or ssl.create_default_context()
        self._local = threading.local()
        self._all: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()

    def get(self, scheme: str, host: str, port: int | None = None) -> http.client.HTTPConnection:
        """This thread's connection to `host`, made on first use (not yet connected: `sock` is None)."""
        connections: dict[tuple[str, str, int | None], http.client.HTTPConnection] = self._local.__dict__.setdefault(
            "connections", {}
        )
        key = (scheme, host, port)
        connection = connections.get(key)
        if connection is None:
            if scheme == "https":
                connection = http.client.HTTPSConnection(host, port, timeout=self._timeout, context=self._tls)
            else:
                connection = http.client.HTTPConnection(host, port, timeout=self._timeout)
            connections[key] = connection
            with self._lock:
                self._all.append(connection)
        return connection

    def close(self) -> None:
        with self._lock:
            connections, self._all = self._all, []
        for connection in connections:
            connection.close()
