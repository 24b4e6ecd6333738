"""The guarded httptools protocol, fed bytes directly: the request head's size bound, the
overload mark, the lingering close and the drain on shutdown."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest
import uvicorn
from uvicorn.server import ServerState

from container.http_protocol import GuardedHttpToolsProtocol
from serve.errors import OVERLOADED_SCOPE_KEY

KIB = 1024


class RecordingTransport(asyncio.Transport):
    """What the protocol wrote, whether it shut its write side (FIN) and whether it closed
    the socket."""

    def __init__(self) -> None:
        super().__init__()
        self.written = bytearray()
        self.eof_written = False
        self.closed = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        assert not self.eof_written, "written after the write side was shut"
        self.written += data

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        self.eof_written = True

    @property
    def finished(self) -> bool:
        """The server is done with the connection: FIN sent, or closed."""
        return self.eof_written or self.closed

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return default

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


async def answer(scope: Any, receive: Any, send: Any) -> None:
    """Reads the whole body, then answers 200 with its length."""
    size = 0
    while True:
        message = await receive()
        size += len(message.get("body", b""))
        if not message.get("more_body", False):
            break
    body = b"%d" % size
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-length", b"%d" % len(body))],
        }
    )
    await send({"type": "http.response.body", "body": body})


def feed(pieces: list[bytes], *, app: Any = answer) -> tuple[RecordingTransport, int]:
    """Feed `pieces` to a fresh protocol until it closes; returns the transport and the bytes
    fed."""

    async def scenario() -> tuple[RecordingTransport, int]:
        config = uvicorn.Config(app, http="httptools", lifespan="off", log_config=None)
        config.load()
        protocol = GuardedHttpToolsProtocol(config=config, server_state=ServerState(), app_state={})
        transport = RecordingTransport()
        protocol.connection_made(transport)
        fed = 0
        for piece in pieces:
            if transport.finished:
                break
            protocol.data_received(piece)
            fed += len(piece)
            await asyncio.sleep(0)  # let the request's task run
        for _ in range(10):
            await asyncio.sleep(0)
        finished_by_server = transport.finished
        protocol.connection_lost(None)  # the client goes away; uvicorn then closes too
        transport.closed = finished_by_server
        return transport, fed

    return asyncio.run(scenario())


def request(body: bytes, *, extra: bytes = b"") -> bytes:
    return b"POST /invocations HTTP/1.1\r\nHost: x\r\n%sContent-Length: %d\r\n\r\n%s" % (
        extra,
        len(body),
        body,
    )


def test_an_endless_header_is_answered_431_and_closed_after_a_bounded_size() -> None:
    piece = b"a" * (4 * KIB)
    pieces = [b"POST /invocations HTTP/1.1\r\nHost: x\r\nX-Long: "] + [piece] * 1000
    transport, fed = feed(pieces)
    assert transport.closed
    assert transport.written.startswith(b"HTTP/1.1 431 ")
    body = bytes(transport.written).partition(b"\r\n\r\n")[2]
    assert orjson.loads(body)["error"] == "request_header_fields_too_large"
    bound = GuardedHttpToolsProtocol.max_head_bytes
    assert bound < fed <= bound + 2 * len(piece) + len(pieces[0])


def test_many_headers_count_as_one_head() -> None:
    headers = b"".join(b"X-H%d: %s\r\n" % (i, b"v" * 100) for i in range(1000))  # ~110 KiB
    transport, _ = feed(
        [request(b"1", extra=headers)[i : i + 8 * KIB] for i in range(0, 120 * KIB, 8 * KIB)]
    )
    assert transport.written.startswith(b"HTTP/1.1 431 ")
    assert transport.closed


def test_a_large_body_in_the_same_read_as_a_small_head_is_not_refused() -> None:
    transport, _ = feed([request(b"x" * (300 * KIB))])
    assert transport.written.startswith(b"HTTP/1.1 200 "), bytes(transport.written[:100])
    assert not transport.closed


def test_a_pipelined_head_after_a_large_body_in_one_read_is_not_refused() -> None:
    first = request(b"x" * (200 * KIB))
    second = request(b"1,2,3")
    transport, _ = feed([first + second[:10], second[10:]])
    assert bytes(transport.written).count(b"HTTP/1.1 200 ") == 2, bytes(transport.written)
    assert not transport.closed


def test_over_the_concurrency_bound_the_scope_is_marked_not_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """uvicorn's own bound would answer 503 to every path; ours only marks the scope, and the
    app decides (it sheds /invocations and answers /ping)."""
    seen: list[dict[str, Any]] = []

    async def record(scope: Any, receive: Any, send: Any) -> None:
        seen.append(scope)
        await answer(scope, receive, send)

    ping = b"GET /ping HTTP/1.1\r\nHost: x\r\n\r\n"
    monkeypatch.setattr(GuardedHttpToolsProtocol, "max_concurrency", None)
    feed([request(b"1,2,3"), ping], app=record)
    monkeypatch.setattr(GuardedHttpToolsProtocol, "max_concurrency", 1)  # this connection
    transport, _ = feed([request(b"1,2,3"), ping], app=record)
    assert [OVERLOADED_SCOPE_KEY in scope for scope in seen] == [False, False, True, True]
    assert bytes(transport.written).count(b"HTTP/1.1 200 ") == 2  # the app answered both


# ---------------------------------------------------------------------------------------------
# Lingering close and drain.

MIB = 1024 * KIB


async def refuse_at_once(scope: Any, receive: Any, send: Any) -> None:
    """Answers 413 with `Connection: close` before reading any of the body, as the app does
    when Content-Length is over the limit."""
    body = b'{"error":"payload_too_large"}'
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [(b"content-length", b"%d" % len(body)), (b"connection", b"close")],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def connect(app: Any) -> tuple[GuardedHttpToolsProtocol, RecordingTransport]:
    config = uvicorn.Config(app, http="httptools", lifespan="off", log_config=None)
    config.load()
    protocol = GuardedHttpToolsProtocol(config=config, server_state=ServerState(), app_state={})
    transport = RecordingTransport()
    protocol.connection_made(transport)
    return protocol, transport


async def settle() -> None:
    for _ in range(10):
        await asyncio.sleep(0)


def responses(transport: RecordingTransport) -> list[bytes]:
    """The heads of the responses written, lower-cased."""
    parts = bytes(transport.written).split(b"HTTP/1.1 ")[1:]
    return [part.partition(b"\r\n\r\n")[0].lower() for part in parts]


def test_a_refused_body_is_read_and_discarded_after_the_413_not_reset() -> None:
    async def scenario() -> None:
        protocol, transport = await connect(refuse_at_once)
        body = b"x" * (7 * MIB)
        protocol.data_received(request(body)[: 64 * KIB])
        await settle()
        assert responses(transport) == [
            b"413 request entity too large\r\ncontent-length: 29\r\nconnection: close"
        ]
        assert transport.eof_written and not transport.closed  # FIN, then keep reading
        for start in range(64 * KIB, len(body), 256 * KIB):
            protocol.data_received(body[start : start + 256 * KIB])
        await settle()
        assert not transport.closed, "closed with the client still sending: a reset"
        assert len(responses(transport)) == 1  # discarded, not parsed
        protocol.connection_lost(None)  # the client read the 413 and closed

    asyncio.run(scenario())


def test_lingering_stops_at_its_byte_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(GuardedHttpToolsProtocol, "linger_max_bytes", 1 * MIB)

    async def scenario() -> None:
        protocol, transport = await connect(refuse_at_once)
        protocol.data_received(request(b"x" * (64 * MIB))[: 64 * KIB])
        await settle()
        fed = 0
        while not transport.closed and fed < 64 * MIB:
            protocol.data_received(b"x" * (256 * KIB))
            fed += 256 * KIB
        assert transport.closed
        assert 1 * MIB < fed <= 1 * MIB + 256 * KIB
        protocol.connection_lost(None)

    asyncio.run(scenario())


def test_lingering_stops_at_its_time_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(GuardedHttpToolsProtocol, "linger_s", 0.01)

    async def scenario() -> None:
        protocol, transport = await connect(refuse_at_once)
        protocol.data_received(request(b"x" * MIB)[: 64 * KIB])
        await settle()
        assert transport.eof_written and not transport.closed
        await asyncio.sleep(0.2)
        assert transport.closed
        protocol.connection_lost(None)

    asyncio.run(scenario())


def test_on_shutdown_an_idle_connection_answers_its_next_request_with_connection_close() -> None:
    async def scenario() -> None:
        protocol, transport = await connect(answer)
        protocol.data_received(request(b"1,2,3"))
        await settle()
        protocol.shutdown()
        await settle()
        assert not transport.finished, "an idle connection was closed at once"
        protocol.data_received(request(b"4,5,6"))  # was on its way when SIGTERM came
        await settle()
        first, second = responses(transport)
        assert b"connection: close" not in first
        assert second.startswith(b"200 ") and b"connection: close" in second
        assert transport.eof_written
        protocol.connection_lost(None)

    asyncio.run(scenario())


def test_on_shutdown_an_idle_connection_is_closed_after_the_grace_period(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(GuardedHttpToolsProtocol, "drain_idle_s", 0.01)

    async def scenario() -> None:
        protocol, transport = await connect(answer)
        protocol.data_received(request(b"1,2,3"))
        await settle()
        protocol.shutdown()
        await asyncio.sleep(0.2)
        assert transport.eof_written, "an idle connection was kept past the grace period"
        assert len(responses(transport)) == 1
        protocol.connection_lost(None)

    asyncio.run(scenario())


def test_on_shutdown_the_request_in_progress_is_answered_with_connection_close() -> None:
    async def scenario() -> None:
        protocol, transport = await connect(answer)
        whole = request(b"1,2,3,4,5,6")
        protocol.data_received(whole[:-3])
        await settle()
        protocol.shutdown()
        protocol.data_received(whole[-3:])
        await settle()
        (head,) = responses(transport)
        assert head.startswith(b"200 ") and b"connection: close" in head
        assert transport.eof_written
        protocol.connection_lost(None)

    asyncio.run(scenario())
