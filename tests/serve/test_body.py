"""The body reader: the body at once when it is here, the byte cap, the deadline when it waits."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import pytest
from asgi_messages import chunk, receiver

from serve.body import BodyReader, ClientDisconnectedError
from serve.errors import PayloadTooLargeError, RequestTimeoutError


def read(receive: Any, *, limit: int, timeout_s: float) -> bytes:
    """What the handler does: take the body, or await the rest under the deadline."""
    return asyncio.run(read_in_loop(receive, limit=limit, timeout_s=timeout_s)).body


@dataclass
class Outcome:
    at_once: bool
    """The body came back from `read` itself: nothing awaited, no deadline armed."""
    body: bytes


async def read_in_loop(receive: Any, *, limit: int, timeout_s: float) -> Outcome:
    body = BodyReader(limit=limit, timeout_s=timeout_s).read(receive)
    if isinstance(body, bytes):
        return Outcome(at_once=True, body=body)
    return Outcome(at_once=False, body=await body)


def test_joins_chunks() -> None:
    receive = receiver([chunk(b"1,", True), chunk(b"2,", True), chunk(b"3", False)])
    assert read(receive, limit=10, timeout_s=1) == b"1,2,3"


def test_stops_at_the_cap_without_reading_the_rest() -> None:
    consumed: list[int] = []

    async def receive() -> dict[str, Any]:
        consumed.append(1)
        return chunk(b"x" * 400, True)  # an endless stream

    with pytest.raises(PayloadTooLargeError):
        read(receive, limit=1000, timeout_s=1)
    assert len(consumed) == 3


def test_times_out_a_slow_client() -> None:
    receive = receiver([chunk(b"1,", True)] + [chunk(b"2", True)] * 100, delay=0.05)
    with pytest.raises(RequestTimeoutError):
        read(receive, limit=1000, timeout_s=0.2)


def test_times_out_a_body_that_never_arrives() -> None:
    """The first receive() waits and nothing ever comes: 408, and the receive is cleaned up."""
    cleaned: list[bool] = []

    async def receive() -> dict[str, Any]:
        try:
            await asyncio.Event().wait()  # never set
        finally:
            cleaned.append(True)
        raise AssertionError("unreachable")  # pragma: no cover

    with pytest.raises(RequestTimeoutError):
        read(receive, limit=1000, timeout_s=0.2)
    assert cleaned == [True]


def test_waits_for_a_late_first_message_and_delivers_its_errors() -> None:
    """A first receive() that has to wait still returns its message, or raises inside it."""
    late = receiver([chunk(b"1,", True), chunk(b"2", False)], delay=0.01)
    assert read(late, limit=10, timeout_s=5) == b"1,2"

    async def failing() -> dict[str, Any]:
        await asyncio.sleep(0.01)
        raise ConnectionResetError("gone")

    with pytest.raises(ConnectionResetError):
        read(failing, limit=10, timeout_s=5)


def test_a_body_already_here_is_returned_at_once_with_no_deadline_armed() -> None:
    """One complete message that is ready: bytes straight back, nothing awaited, no timer."""
    outcome = asyncio.run(read_in_loop(receiver([chunk(b"1,2,3", False)]), limit=10, timeout_s=1))
    assert outcome == Outcome(at_once=True, body=b"1,2,3")


@pytest.mark.parametrize(
    "receive",
    [
        receiver([chunk(b"1,", True), chunk(b"2", False)]),  # several messages
        receiver([chunk(b"1,2", False)], delay=0.01),  # not here yet
    ],
)
def test_a_body_in_several_messages_or_not_yet_here_is_read_under_the_deadline(
    receive: Any,
) -> None:
    outcome = asyncio.run(read_in_loop(receive, limit=10, timeout_s=1))
    assert outcome == Outcome(at_once=False, body=b"1,2")


def test_a_single_message_over_the_cap_is_refused_at_once() -> None:
    with pytest.raises(PayloadTooLargeError, match="10-byte limit"):
        read(receiver([chunk(b"x" * 11, False)]), limit=10, timeout_s=1)


def test_a_client_that_leaves_mid_body_raises_client_disconnected() -> None:
    gone = receiver([chunk(b"1,", True), {"type": "http.disconnect"}])
    with pytest.raises(ClientDisconnectedError):
        read(gone, limit=10, timeout_s=1)
    with pytest.raises(ClientDisconnectedError):
        read(receiver([{"type": "http.disconnect"}]), limit=10, timeout_s=1)
