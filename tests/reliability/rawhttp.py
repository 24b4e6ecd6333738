"""Raw-socket HTTP/1.1 clients for what well-behaved libraries refuse to send.

Slow-loris header trickles, bodies streamed far past the size limit, CR/LF in header values,
duplicate and absurd headers: each function bounds its own time and bytes, and closes its socket.
"""

from __future__ import annotations

import contextlib
import select
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass

MIB = 1024 * 1024


@dataclass(frozen=True, kw_only=True)
class RawResponse:
    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes

    def header(self, name: str) -> str | None:
        lowered = name.lower()
        return next((value for key, value in self.headers if key.lower() == lowered), None)


class NoResponse(Exception):
    """The server closed the connection (or stayed silent) without a complete response."""


@contextlib.contextmanager
def connect(port: int, *, timeout: float = 10.0) -> Iterator[socket.socket]:
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        yield sock
    finally:
        sock.close()


def read_response(sock: socket.socket, *, timeout: float = 10.0) -> RawResponse:
    """Read one response with a Content-Length body (the server always sends one)."""
    deadline = time.monotonic() + timeout
    data = b""
    while b"\r\n\r\n" not in data:
        data += _recv(sock, deadline)
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[1].isdigit():
        raise NoResponse(f"not an HTTP status line: {lines[0]!r}")
    headers = tuple(
        (name.strip(), value.strip())
        for name, _, value in (line.partition(":") for line in lines[1:])
    )
    length = next((int(v) for k, v in headers if k.lower() == "content-length"), 0)
    while len(rest) < length:
        rest += _recv(sock, deadline)
    return RawResponse(status=int(parts[1]), headers=headers, body=rest[:length])


def _recv(sock: socket.socket, deadline: float) -> bytes:
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise NoResponse("no complete response before the deadline")
    sock.settimeout(remaining)
    try:
        chunk = sock.recv(65536)
    except TimeoutError:
        raise NoResponse("no complete response before the deadline") from None
    except ConnectionError as exc:
        raise NoResponse(f"connection reset: {exc}") from None
    if not chunk:
        raise NoResponse("the server closed the connection")
    return chunk


def exchange(port: int, request: bytes, *, timeout: float = 10.0) -> RawResponse:
    """Send raw bytes on a fresh connection and read one response."""
    with connect(port, timeout=timeout) as sock:
        sock.sendall(request)
        return read_response(sock, timeout=timeout)


def request_bytes(
    *,
    body: bytes = b"",
    headers: tuple[tuple[str, str], ...] = (("Content-Type", "text/csv"),),
    method: str = "POST",
    path: str = "/invocations",
    content_length: int | None = None,
) -> bytes:
    """A request; `content_length` overrides the true length (None: the body's own length)."""
    length = len(body) if content_length is None else content_length
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1"]
    lines += [f"{name}: {value}" for name, value in headers]
    lines.append(f"Content-Length: {length}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


@dataclass(frozen=True, kw_only=True)
class StreamOutcome:
    status: int | None
    """The status the server answered, or None when it closed without one."""
    bytes_sent: int
    """Body bytes the server took before it answered or closed."""
    seconds: float


def stream_body(
    port: int,
    *,
    total_bytes: int,
    chunked: bool = False,
    chunk_bytes: int = MIB,
    timeout: float = 30.0,
) -> StreamOutcome:
    """POST a body of `total_bytes` (generated lazily, never held in memory) and stop at the
    server's first answer or close. With `chunked`, no Content-Length announces the size."""
    started = time.monotonic()
    deadline = started + timeout
    head = ["POST /invocations HTTP/1.1", "Host: 127.0.0.1", "Content-Type: text/csv"]
    head.append("Transfer-Encoding: chunked" if chunked else f"Content-Length: {total_bytes}")
    row = b"1,2,3.0,4.0,5.0,6.0,7\n"
    piece = row * (chunk_bytes // len(row))
    sent = 0
    with connect(port, timeout=timeout) as sock:
        sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode("latin-1"))
        sock.setblocking(False)
        pending = b""
        while time.monotonic() < deadline:
            readable, writable, _ = select.select([sock], [sock], [], 0.5)
            if readable:
                break
            if not writable:
                continue
            if not pending:
                if sent >= total_bytes:
                    if chunked:
                        sock.setblocking(True)
                        with contextlib.suppress(OSError):
                            sock.sendall(b"0\r\n\r\n")
                    break
                size = min(len(piece), total_bytes - sent)
                pending = piece[:size]
                if chunked:
                    pending = f"{size:x}\r\n".encode() + pending + b"\r\n"
                sent += size
            try:
                written = sock.send(pending)
            except BlockingIOError:
                continue
            except OSError:
                break  # reset by the server: it refused the rest, read what it said
            pending = pending[written:]
        sock.setblocking(True)
        try:
            status: int | None = read_response(
                sock, timeout=max(deadline - time.monotonic(), 1)
            ).status
        except NoResponse:
            status = None
    return StreamOutcome(status=status, bytes_sent=sent, seconds=time.monotonic() - started)


def slowloris(port: int, *, interval: float = 1.0, limit_s: float = 30.0) -> float | None:
    """Trickle a request's headers one byte every `interval` seconds, never finishing them.

    Return how long the server kept the connection before closing it, or None if it was still
    open after `limit_s` (the server has no header timeout).
    """
    header = b"POST /invocations HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 10_000
    started = time.monotonic()
    with connect(port, timeout=limit_s) as sock:
        for byte in header:
            if time.monotonic() - started > limit_s:
                return None
            try:
                sock.sendall(bytes([byte]))
            except OSError:
                return time.monotonic() - started
            readable, _, _ = select.select([sock], [], [], interval)
            if readable:
                try:
                    data = sock.recv(65536)
                except OSError:
                    data = b""
                if not data or data.startswith(b"HTTP/1.1 4"):
                    return time.monotonic() - started
    return None
