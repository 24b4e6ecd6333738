"""uvicorn's httptools protocol with a deadline and a size bound on the request head, and an
overload bound that leaves /ping alone.

uvicorn times out idle keep-alive connections, but not a client that opens a connection and
then sends its request line and headers slowly (or never): such connections would hold the
worker's concurrency slots forever, and every later client would get 503s. Here a connection
must deliver each complete request head within `head_timeout_s` of the connection being made or
of the request's first byte, or it is closed. Bodies have their own deadline in the app
(`serve.body.BodyReader`), which also times a body that never starts.

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

Closing a socket whose receive buffer holds unread bytes makes the kernel send a reset, and a
reset discards whatever the client had not read yet: a 413 answered before a large body was
read, or the response before a request that crossed the close. So every close here is a
lingering close (`LingeringTransport`): the response is flushed, the write side shut (FIN), and
what the client still sends is read and thrown away (never parsed or buffered) until it closes
its side, `linger_max_bytes` were discarded, or `linger_s` passed; only then is the socket
closed.

On SIGTERM (uvicorn calls `shutdown` on every connection, see `container.drain`) a connection
is drained, never closed under a client that may be sending: a request in progress, or one that
arrives later, is answered with `Connection: close`; a connection idle throughout
`drain_idle_s` is then closed, lingering.
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


class LingeringTransport(asyncio.Transport):
    """The socket's transport as uvicorn sees it: `close` asks the protocol to close lingering
    (`GuardedHttpToolsProtocol.close_lingering`), after which this transport reports closing
    and drops writes."""

    def __init__(self, transport: asyncio.Transport, protocol: GuardedHttpToolsProtocol) -> None:
        super().__init__()
        self._transport = transport
        self._protocol = protocol
        self._closing = False
        # The hot path (two writes per response) calls the socket's transport directly.
        self.write = transport.write  # type: ignore[method-assign]

    def close(self) -> None:
        if not self._closing:
            self._closing = True
            del self.write  # from now on the method below: nothing more is written
            self._protocol.close_lingering()

    def is_closing(self) -> bool:
        return self._closing or self._transport.is_closing()

    def write(self, data: bytes | bytearray | memoryview) -> None:
        """Only after `close` (before, the socket transport's own `write` is called)."""

    def abort(self) -> None:
        self._closing = True
        self._transport.abort()

    def pause_reading(self) -> None:
        if not self._closing:
            self._transport.pause_reading()

    def resume_reading(self) -> None:
        if not self._closing:
            self._transport.resume_reading()

    def is_reading(self) -> bool:
        return self._transport.is_reading()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._transport.get_extra_info(name, default)

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size()

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._transport.set_write_buffer_limits(high, low)

    def can_write_eof(self) -> bool:
        return False  # uvicorn's protocol never half-closes; the lingering close does


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """HttpToolsProtocol that closes a connection whose request head is late or too large,
    closes lingering, and drains on shutdown."""

    head_timeout_s: ClassVar[float] = 10.0
    """Set per worker from `Settings.header_timeout_s` (`RTB_HEADER_TIMEOUT`)."""
    max_head_bytes: ClassVar[int] = 64 * 1024
    """Set per worker from `Settings.max_header_bytes` (`RTB_MAX_HEADER_BYTES`)."""
    max_concurrency: ClassVar[int | None] = None
    """Set per worker from `Settings.max_concurrency` (`RTB_MAX_CONCURRENCY`); None: no bound."""
    linger_s: ClassVar[float] = 5.0
    """Longest a closing connection is read (and discarded) before the socket is closed."""
    linger_max_bytes: ClassVar[int] = 16 * 1024 * 1024
    """Most bytes discarded while lingering; set per worker to twice the body limit."""
    drain_idle_s: ClassVar[float] = 2.0
    """On shutdown, how long an idle keep-alive connection stays open for a request that may be
    on its way (answered with `Connection: close`) before it is closed."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_deadline: asyncio.TimerHandle | None = None
        self._in_head = False
        self._head_bytes = 0
        self._chunk_bytes = 0
        self._socket: asyncio.Transport | None = None
        self._lingering = False
        self._linger_left = 0
        self._linger_end: asyncio.TimerHandle | None = None
        self._draining = False
        self._drain_idle: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._socket = transport
        super().connection_made(LingeringTransport(transport, self))
        self._arm_head_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_head_deadline()
        self._cancel_drain_idle()
        if self._linger_end is not None:
            self._linger_end.cancel()
            self._linger_end = None
        self._lingering = False
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._lingering:
            self._linger_left -= len(data)
            if self._linger_left < 0:
                self._stop_lingering()  # a client that will not stop: close (a reset)
            return
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
        self._cancel_drain_idle()  # a request came: its response will carry Connection: close

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._disarm_head_deadline()
        limit = self.max_concurrency
        if limit is not None and (
            len(self.connections) >= limit or len(self.tasks) >= limit
        ):  # uvicorn's own bound (limit_concurrency), but marked for the app, not applied
            self.scope[OVERLOADED_SCOPE_KEY] = True  # type: ignore[literal-required]
        super().on_headers_complete()
        if self._draining and self.cycle is not None:
            self.cycle.keep_alive = False

    def shutdown(self) -> None:
        """Drain (uvicorn calls this on SIGTERM, and expects the connection to close soon):
        the response in progress, or the next one, says `Connection: close`; a connection with
        no request in progress is closed only after `drain_idle_s` without a request."""
        if self._draining:
            return
        self._draining = True
        if self.cycle is not None and not self.cycle.response_complete:
            self.cycle.keep_alive = False
            for cycle, _ in self.pipeline:
                cycle.keep_alive = False
        elif not self._in_head and not self.transport.is_closing():
            self._drain_idle = self.loop.call_later(self.drain_idle_s, self._close_if_idle)

    def close_lingering(self) -> None:
        """Close without a reset: flush, shut the write side, then read and discard until the
        client closes or a bound (`linger_s`, `linger_max_bytes`) is reached."""
        self._disarm_head_deadline()
        self._cancel_drain_idle()
        socket = self._socket
        if socket is None or socket.is_closing() or self._lingering:
            return
        if not socket.can_write_eof():
            socket.close()
            return
        self._lingering = True
        self._linger_left = self.linger_max_bytes
        socket.write_eof()  # after what is buffered: the response goes out first
        socket.resume_reading()
        self._linger_end = self.loop.call_later(self.linger_s, self._stop_lingering)

    def _stop_lingering(self) -> None:
        self._linger_end = None
        if self._socket is not None and not self._socket.is_closing():
            self._socket.close()

    def _close_if_idle(self) -> None:
        self._drain_idle = None
        if (self.cycle is None or self.cycle.response_complete) and not self._in_head:
            self.transport.close()

    def _cancel_drain_idle(self) -> None:
        if self._drain_idle is not None:
            self._drain_idle.cancel()
            self._drain_idle = None

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
