"""The guarded httptools protocol, fed bytes directly: the request head's size bound and the
overload mark."""

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
    """What the protocol wrote, and whether it closed the connection."""

    def __init__(self) -> None:
        super().__init__()
        self.written = bytearray()
        self.closed = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written += data

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
            if transport.closed:
                break
            protocol.data_received(piece)
            fed += len(piece)
            await asyncio.sleep(0)  # let the request's task run
        for _ in range(10):
            await asyncio.sleep(0)
        closed_by_server = transport.closed
        protocol.connection_lost(None)  # the client goes away; uvicorn then closes too
        transport.closed = closed_by_server
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
