"""uvicorn's httptools protocol with a deadline and a size bound on the request head, and an
overload bound that leaves /ping alone.

uvicorn times out idle keep-alive connections, but not a client that opens a connection and
then sends its request line and headers slowly (or never): such connections would hold the
worker's concurrency slots forever, and every later client would get 503s. Here a connection
must deliver each complete request head within `head_timeout_s` of the connection being made or
of the request's first byte, or it is closed. Bodies have their own deadline in the app
(`serve.app.read_body`), which also times a body that never starts.

httptools accumulates a header name or value until it ends, with no bound, so a deadline alone
does not bound memory: a fast client sends hundreds of MiB before it fires. A request head
larger than `max_head_bytes` is answered 431 (JSON, `Connection: close`) and the connection
closed. The count is kept per `data_received` call (the read in which a head begins is not
counted), so at most two reads (uvloop reads up to 256 KiB) beyond the bound are ever parsed.

uvicorn's `limit_concurrency` answers every path with a plain-text 503 once a worker has that
many connections or unfinished requests, `/ping` included, so SageMaker would pull the instance
exactly when it is busiest. It is left off; this protocol applies the same test
(`max_concurrency`) but only marks the request's scope (`serve.errors.OVERLOADED_SCOPE_KEY`), and
the app sheds `/invocations` with a JSON 503 `overloaded` while `/ping` is answered as usual.
The queue it bounds is the worker's unfinished request tasks, visible here and not in the app
(a request's task runs to its end without yielding, so the app alone never sees two at once).
"""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from serve.errors import OVERLOADED_SCOPE_KEY, error_body

IMPORT_PATH = "container.http_protocol:GuardedHttpToolsProtocol"

_HEAD_TOO_LARGE_BODY = error_body(
    "request_header_fields_too_large", "The request line and headers are too large."
)
_HEAD_TOO_LARGE = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
    b"content-type: application/json\r\n"
    b"content-length: %d\r\n"
    b"connection: close\r\n\r\n%s" % (len(_HEAD_TOO_LARGE_BODY), _HEAD_TOO_LARGE_BODY)
)


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """HttpToolsProtocol that closes a connection whose request head is late or too large."""

    head_timeout_s: ClassVar[float] = 10.0
    """Set per worker from `Settings.header_timeout_s` (`RTB_HEADER_TIMEOUT`)."""
    max_head_bytes: ClassVar[int] = 64 * 1024
    """Set per worker from `Settings.max_header_bytes` (`RTB_MAX_HEADER_BYTES`)."""
    max_concurrency: ClassVar[int | None] = None
    """Set per worker from `Settings.max_concurrency` (`RTB_MAX_CONCURRENCY`); None: no bound."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_deadline: asyncio.TimerHandle | None = None
        self._in_head = False
        self._head_bytes = 0
        self._chunk_bytes = 0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_head_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_head_deadline()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        self._chunk_bytes = len(data)
        super().data_received(data)
        if self._in_head:
            # Every byte of this read after the head began is head; a head that began in this
            # read started its count at minus what came before it (see on_message_begin).
            self._head_bytes += self._chunk_bytes
            if self._head_bytes > self.max_head_bytes:
                self._head_too_large()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head = True
        self._head_bytes = -self._chunk_bytes  # this read's bytes before the head are not head
        self._arm_head_deadline()

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._disarm_head_deadline()
        limit = self.max_concurrency
        if limit is not None and (
            len(self.connections) >= limit or len(self.tasks) >= limit
        ):  # uvicorn's own bound (limit_concurrency), but marked for the app, not applied
            self.scope[OVERLOADED_SCOPE_KEY] = True  # type: ignore[literal-required]
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

    def _head_too_large(self) -> None:
        self._in_head = False
        self._disarm_head_deadline()
        if self.transport.is_closing():
            return
        self.logger.warning(
            "Request head over %d bytes; closing the connection.", self.max_head_bytes
        )
        if self.cycle is None or self.cycle.response_complete:
            self.transport.write(_HEAD_TOO_LARGE)  # no response of an earlier request is due
        self.transport.close()
