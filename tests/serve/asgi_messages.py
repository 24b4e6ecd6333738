"""ASGI request messages for tests that drive a handler or the body reader by hand, and an
httpx client over an ASGI app."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import httpx


def receiver(
    messages: list[dict[str, Any]], *, delay: float = 0.0
) -> Callable[[], Awaitable[dict[str, Any]]]:
    """A receive() that returns `messages` in order, each after `delay` seconds."""
    iterator: Iterator[dict[str, Any]] = iter(messages)

    async def receive() -> dict[str, Any]:
        if delay:
            await asyncio.sleep(delay)
        return next(iterator)

    return receive


def chunk(body: bytes, more: bool) -> dict[str, Any]:
    """An `http.request` message: `body`, with `more` to follow or not."""
    return {"type": "http.request", "body": body, "more_body": more}


def client_for(app: Any) -> httpx.AsyncClient:
    """An httpx client that calls `app` in process."""
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")
