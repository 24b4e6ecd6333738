"""Call an ASGI app in-process with exactly the header bytes and body chunks a test chooses.

Test clients (httpx, Starlette's) normalise or refuse odd headers; uvicorn hands the app raw
bytes, so this driver does too. Disconnects after the body, like a client that went away.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, kw_only=True)
class AsgiResponse:
    status: int
    headers: tuple[tuple[bytes, bytes], ...]
    body: bytes


async def _call(
    app: Any,
    *,
    method: str,
    path: str,
    headers: Sequence[tuple[bytes, bytes]],
    chunks: Sequence[bytes],
) -> AsgiResponse:
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode("latin-1"),
        "query_string": b"",
        "root_path": "",
        "headers": [(name.lower(), value) for name, value in headers],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8080),
        "state": {},
    }
    pending = list(chunks) or [b""]
    messages: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        if pending:
            body = pending.pop(0)
            return {"type": "http.request", "body": body, "more_body": bool(pending)}
        await asyncio.sleep(3600)  # a client that sent everything waits for the answer
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        messages.append(message)

    await asyncio.wait_for(app(scope, receive, send), timeout=30)
    start = next(m for m in messages if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.response.body")
    return AsgiResponse(status=start["status"], headers=tuple(start.get("headers", ())), body=body)


def call(
    app: Any,
    *,
    method: str = "POST",
    path: str = "/invocations",
    headers: Sequence[tuple[bytes, bytes]] = (),
    chunks: Sequence[bytes] = (),
) -> AsgiResponse:
    """One request through `app`, on a fresh event loop."""
    return asyncio.run(_call(app, method=method, path=path, headers=headers, chunks=chunks))
