"""The one reader of a request body: a byte cap, and a deadline armed only when it must wait.

`BodyReader(limit=..., timeout_s=...).read(receive)` returns the body when it is already here
(nearly always: one message that arrived with the headers), or else an awaitable of it. The first
`receive()` is stepped by hand (`receive().__await__().send(None)`): when it completes at once no
timer is armed and nothing is awaited. Only when it suspends, or the body comes in several
messages, is the rest read under `asyncio.timeout(timeout_s)`, so a client that sends headers and
then nothing (or a trickle) cannot hold the worker: 408 `request_timeout`. More than `limit`
bytes is 413 `payload_too_large`, without buffering past the cap.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Generator
from dataclasses import dataclass
from typing import Any

from starlette.types import Message, Receive

from serve.errors import PayloadTooLargeError, RequestTimeoutError


class ClientDisconnectedError(Exception):
    """The client went away before sending its whole body: there is no one to answer."""


@dataclass(frozen=True, slots=True)
class _Pending:
    """A receive() stepped once that did not complete: its iterator and what it yielded."""

    step: Generator[Any, None, Message]
    waiting: Any


@dataclass(frozen=True, slots=True, kw_only=True)
class BodyReader:
    """Reads request bodies of at most `limit` bytes, each within `timeout_s` of its first wait."""

    limit: int
    timeout_s: float

    def read(self, receive: Receive) -> bytes | Coroutine[Any, Any, bytes]:
        """The body if it is already here, else a coroutine that reads it under the deadline.

        Raises (or the coroutine raises) `PayloadTooLargeError`, `RequestTimeoutError`, or
        `ClientDisconnectedError` when the client goes away mid-body.
        """
        step = receive().__await__()
        try:
            waiting = step.send(None)
        except StopIteration as received:
            message: Message = received.value
        else:
            return self._read_rest(first=None, pending=_Pending(step, waiting), receive=receive)
        if message.get("more_body", False) or message["type"] != "http.request":
            return self._read_rest(first=message, pending=None, receive=receive)
        body: bytes = message["body"]
        if len(body) > self.limit:
            raise PayloadTooLargeError(f"The body is larger than the {self.limit}-byte limit.")
        return body

    async def _read_rest(
        self, *, first: Message | None, pending: _Pending | None, receive: Receive
    ) -> bytes:
        """The body after its first message (`first`), or after a first receive() that is still
        waiting (`pending`), all within `timeout_s`."""
        try:
            async with asyncio.timeout(self.timeout_s):
                if first is None:
                    assert pending is not None
                    first = await _finish(pending)
                return await self._read_chunks(first, receive)
        except TimeoutError:
            raise RequestTimeoutError(
                f"The body did not arrive within {self.timeout_s:g} s; send it faster or smaller."
            ) from None

    async def _read_chunks(self, first: Message, receive: Receive) -> bytes:
        message = first
        chunks: list[bytes] = []
        size = 0
        while True:
            if message["type"] == "http.disconnect":
                raise ClientDisconnectedError
            chunk: bytes = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                raise PayloadTooLargeError(f"The body is larger than the {self.limit}-byte limit.")
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)
            message = await receive()


async def _finish(pending: _Pending) -> Message:
    """Drive a stepped receive() to its message from this task, as the task itself would:
    wait until what it yielded is done (a future, or None for a bare yield), then resume it,
    so its result or exception is delivered inside it. If this task is cancelled (by the
    deadline), the receive() is closed, running its cleanup."""
    step, waiting = pending.step, pending.waiting
    try:
        while True:
            if waiting is None:
                await asyncio.sleep(0)
            else:
                await asyncio.wait((waiting,))
            waiting = step.send(None)
    except StopIteration as received:
        message: Message = received.value
        return message
    except BaseException:
        step.close()
        raise
