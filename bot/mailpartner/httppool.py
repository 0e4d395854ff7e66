"""One keep-alive HTTP client per thread, all configured alike.

httpx's connection pool scans every pooled connection (a socket check each) whenever a response is
closed, so one shared pool sized for hundreds of concurrent calls costs more CPU than the calls
themselves. The bot's calls run on fixed pools of threads; a client per thread keeps each pool at one
or two connections, reused call after call, with no lock shared between threads.
"""

from __future__ import annotations

import ssl
import threading
from typing import Any

import httpx


class PerThreadClient:
    def __init__(self, **options: Any) -> None:
        # One TLS context for all: building one costs milliseconds and memory.
        options.setdefault("verify", ssl.create_default_context())
        options.setdefault("limits", httpx.Limits(max_connections=2, max_keepalive_connections=2))
        self._options = options
        self._local = threading.local()
        self._clients: list[httpx.Client] = []
        self._lock = threading.Lock()

    @property
    def client(self) -> httpx.Client:
        """This thread's client, made on first use."""
        client = getattr(self._local, "client", None)
        if client is None:
            client = httpx.Client(**self._options)
            self._local.client = client
            with self._lock:
                self._clients.append(client)
        return client

    def close(self) -> None:
        with self._lock:
            clients, self._clients = self._clients, []
        for client in clients:
            client.close()
