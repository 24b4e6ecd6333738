"""uvicorn's httptools protocol with a deadline on the request head (slow-loris protection).

uvicorn times out idle keep-alive connections, but not a client that opens a connection and
then sends its request line and headers slowly (or never): such connections would hold the
worker's `limit_concurrency` slots forever, and every later client would get 503s. Here a
connection must deliver each complete request head within `head_timeout_s` of the connection
being made or of the request's first byte, or it is closed. Bodies have their own deadline in
the app (`serve.app.read_body`), which also times a body that never starts.
"""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

IMPORT_PATH = "container.http_protocol:GuardedHttpToolsProtocol"


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """HttpToolsProtocol that closes a connection whose request head is late."""

    head_timeout_s: ClassVar[float] = 10.0
    """Set per worker from `Settings.header_timeout_s` (`RTB_HEADER_TIMEOUT`)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_head_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_head_deadline()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm_head_deadline()

    def on_headers_complete(self) -> None:
        self._disarm_head_deadline()
        super().on_headers_complete()

    def _arm_head_deadline(self) -> None:
        self._disarm_head_deadline()
        self._head_deadline = self.loop.call_later(self.head_timeout_s, self._head_too_late)

    def _disarm_head_deadline(self) -> None:
        if self._head_deadline is not None:
            self._head_deadline.cancel()
            self._head_deadline = None

    def _head_too_late(self) -> None:
        self._head_deadline = None
        if not self.transport.is_closing():
            self.transport.close()
