"""Bounded HTTP/1.1 traffic with an exact outcome and a µs latency for every request.

The generator runs in its own process (`start_traffic`), so the caller's work (killing a worker,
sampling memory, probing `/ping`) never slows it, and its own event loop never slows the caller.
Every request is recorded: when it was due, when it was sent, how long it took, and how it ended
(an HTTP status, or one of the negative `Outcome` codes when no complete response came back).

Closed loop (`rate=None`): each connection sends its next request as soon as the last one is
answered, which measures capacity. Paced (`rate=R`): request *i* is due at ``start + i / R`` and
goes out on the first free connection; when the server falls behind, requests leave late and the
lag is recorded, so the run cannot quietly lower the load it claims to hold.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import itertools
import multiprocessing
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.synchronize import Event

import numpy as np
import numpy.typing as npt

__all__ = [
    "Outcome",
    "TrafficHandle",
    "TrafficPlan",
    "TrafficResult",
    "ResponseHead",
    "encode_request",
    "parse_response_head",
    "run_traffic",
    "start_traffic",
]


class Outcome(enum.IntEnum):
    """How a request ended when it got no complete HTTP response (HTTP statuses are positive)."""

    REFUSED = -1
    """The TCP connection could not be opened (nobody listening, or the backlog was full)."""
    CLOSED_BEFORE_RESPONSE = -2
    """The connection closed or reset before the first byte of the response."""
    CLOSED_MID_RESPONSE = -3
    """The connection closed or reset after part of the response arrived."""
    TIMEOUT = -4
    """No complete response within the plan's timeout."""
    MALFORMED = -5
    """The bytes that came back were not a parsable HTTP/1.1 response."""


def encode_request(
    *,
    method: str = "POST",
    path: str = "/invocations",
    host: str = "127.0.0.1",
    headers: Sequence[tuple[str, str]] = (),
    body: bytes = b"",
) -> bytes:
    """One HTTP/1.1 keep-alive request, ready to be written to a socket as is."""
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}"]
    lines += [f"{name}: {value}" for name, value in headers]
    if body or method not in {"GET", "HEAD"}:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


@dataclass(frozen=True, kw_only=True)
class ResponseHead:
    """What a response's status line and headers say, as far as reading it goes."""

    status: int
    content_length: int | None
    """None when the response names no length."""
    keep_alive: bool
    """HTTP/1.1 and no `Connection: close`: the server reads the next request on it."""
    chunked: bool


def parse_response_head(head: bytes) -> ResponseHead:
    """Parse a response head (the bytes up to the blank line; a trailing CRLF is ignored).

    Raises ValueError when it is not HTTP/1.x or a Content-Length is not a number.
    """
    lines = head.split(b"\r\n")
    parts = lines[0].split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
        raise ValueError(f"not an HTTP/1.x status line: {lines[0][:80]!r}")
    length: int | None = None
    keep_alive = parts[0] == b"HTTP/1.1"
    chunked = False
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value.strip())
        elif name == b"connection":
            keep_alive = value.strip().lower() != b"close"
        elif name == b"transfer-encoding":
            chunked = b"chunked" in value.lower()
    return ResponseHead(
        status=int(parts[1]), content_length=length, keep_alive=keep_alive, chunked=chunked
    )


@dataclass(frozen=True, kw_only=True)
class TrafficPlan:
    """What to send, where, how hard and for how long. Every field bounds the run."""

    port: int
    requests: tuple[bytes, ...]
    """Raw requests (see `encode_request`), sent in turn."""
    host: str = "127.0.0.1"
    connections: int = 8
    duration_s: float = 10.0
    rate: float | None = None
    """Requests per second over all connections; None sends as fast as the server answers."""
    max_requests: int = 10_000_000
    timeout_s: float = 10.0


@dataclass(frozen=True, kw_only=True)
class TrafficResult:
    """Per-request records, in the order requests were issued. Times are `time.monotonic()`."""

    started: float
    finished: float
    due: npt.NDArray[np.float64]
    sent: npt.NDArray[np.float64]
    latency_us: npt.NDArray[np.int64]
    outcome: npt.NDArray[np.int16]
    connection: npt.NDArray[np.int32]
    reused: npt.NDArray[np.bool_]
    """True when the request went out on a connection that had already carried one."""

    @property
    def total(self) -> int:
        return int(self.outcome.size)

    def counts(self) -> dict[str, int]:
        """Requests per outcome: ``"200"``, ``"503"``, ``"CLOSED_BEFORE_RESPONSE"``, ..."""
        values, numbers = np.unique(self.outcome, return_counts=True)
        return {_outcome_name(int(v)): int(n) for v, n in zip(values, numbers, strict=True)}

    def ok(self) -> npt.NDArray[np.bool_]:
        ok: npt.NDArray[np.bool_] = self.outcome == 200
        return ok

    def window(self, start: float, end: float) -> TrafficResult:
        """The requests sent in ``[start, end)`` (monotonic seconds)."""
        mask = (self.sent >= start) & (self.sent < end)
        return TrafficResult(
            started=start,
            finished=end,
            due=self.due[mask],
            sent=self.sent[mask],
            latency_us=self.latency_us[mask],
            outcome=self.outcome[mask],
            connection=self.connection[mask],
            reused=self.reused[mask],
        )

    def percentiles_us(self, quantiles: Sequence[float] = (50, 90, 99, 99.9)) -> dict[str, float]:
        """Latency percentiles of the successful requests, in µs (empty when none succeeded)."""
        good = self.latency_us[self.ok()]
        if good.size == 0:
            return {}
        values = np.percentile(good, quantiles)
        return {f"p{q:g}": float(v) for q, v in zip(quantiles, values, strict=True)}

    def throughput(self) -> float:
        """Successful requests per second over the run."""
        seconds = max(self.finished - self.started, 1e-9)
        return float(np.count_nonzero(self.ok())) / seconds

    def lag_p99_ms(self) -> float:
        """How late the 99th-percentile request left compared with when it was due, in ms."""
        if self.sent.size == 0:
            return 0.0
        return float(np.percentile(self.sent - self.due, 99) * 1e3)


def _outcome_name(value: int) -> str:
    return Outcome(value).name if value < 0 else str(value)


@dataclass
class _Recorder:
    due: list[float] = field(default_factory=list)
    sent: list[float] = field(default_factory=list)
    latency_us: list[int] = field(default_factory=list)
    outcome: list[int] = field(default_factory=list)
    connection: list[int] = field(default_factory=list)
    reused: list[bool] = field(default_factory=list)

    def add(
        self, *, due: float, sent: float, done: float, outcome: int, connection: int, reused: bool
    ) -> None:
        self.due.append(due)
        self.sent.append(sent)
        self.latency_us.append(int((done - sent) * 1e6))
        self.outcome.append(outcome)
        self.connection.append(connection)
        self.reused.append(reused)

    def result(self, *, started: float, finished: float) -> TrafficResult:
        return TrafficResult(
            started=started,
            finished=finished,
            due=np.asarray(self.due, dtype=np.float64),
            sent=np.asarray(self.sent, dtype=np.float64),
            latency_us=np.asarray(self.latency_us, dtype=np.int64),
            outcome=np.asarray(self.outcome, dtype=np.int16),
            connection=np.asarray(self.connection, dtype=np.int32),
            reused=np.asarray(self.reused, dtype=np.bool_),
        )


class _ResponseError(Exception):
    def __init__(self, outcome: Outcome) -> None:
        super().__init__(outcome.name)
        self.outcome = outcome


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bool]:
    """Read one response; return its status and whether the server keeps the connection open."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as exc:
        raise _ResponseError(
            Outcome.CLOSED_MID_RESPONSE if exc.partial else Outcome.CLOSED_BEFORE_RESPONSE
        ) from None
    except asyncio.LimitOverrunError:
        raise _ResponseError(Outcome.MALFORMED) from None
    except ConnectionError:
        raise _ResponseError(Outcome.CLOSED_BEFORE_RESPONSE) from None
    try:
        parsed = parse_response_head(head)
    except ValueError:
        raise _ResponseError(Outcome.MALFORMED) from None
    keep_alive = parsed.keep_alive
    try:
        if parsed.chunked:
            while True:
                size = int((await reader.readuntil(b"\r\n")).strip().split(b";")[0], 16)
                await reader.readexactly(size + 2)
                if size == 0:
                    break
        elif parsed.content_length is not None:
            await reader.readexactly(parsed.content_length)
        else:
            await reader.read()
            keep_alive = False
    except (asyncio.IncompleteReadError, ConnectionError):
        raise _ResponseError(Outcome.CLOSED_MID_RESPONSE) from None
    except ValueError:
        raise _ResponseError(Outcome.MALFORMED) from None
    return parsed.status, keep_alive


async def _connection_loop(
    *,
    plan: TrafficPlan,
    number: int,
    tickets: itertools.count[int],
    started: float,
    deadline: float,
    stop: Event | None,
    recorder: _Recorder,
) -> None:
    reader: asyncio.StreamReader | None = None
    writer: asyncio.StreamWriter | None = None
    carried = 0
    try:
        while True:
            index = next(tickets)
            if index >= plan.max_requests:
                return
            due = started if plan.rate is None else started + index / plan.rate
            now = time.monotonic()
            if due > now:
                await asyncio.sleep(due - now)
            if time.monotonic() >= deadline or (stop is not None and stop.is_set()):
                return
            request = plan.requests[index % len(plan.requests)]
            sent = time.monotonic()
            if writer is None:
                try:
                    reader, writer = await asyncio.wait_for(
                        asyncio.open_connection(plan.host, plan.port, limit=1 << 20),
                        plan.timeout_s,
                    )
                except (OSError, TimeoutError):
                    done = time.monotonic()
                    recorder.add(
                        due=due,
                        sent=sent,
                        done=done,
                        outcome=Outcome.REFUSED,
                        connection=number,
                        reused=False,
                    )
                    # Nobody is listening: back off a little so a dead server is not a busy loop.
                    await asyncio.sleep(0.01)
                    continue
                carried = 0
            assert reader is not None and writer is not None
            reused = carried > 0
            outcome: int
            keep_alive = False
            try:
                writer.write(request)
                status, keep_alive = await asyncio.wait_for(_read_response(reader), plan.timeout_s)
                outcome = status
            except _ResponseError as exc:
                outcome = exc.outcome
            except TimeoutError:
                outcome = Outcome.TIMEOUT
            except ConnectionError:
                outcome = Outcome.CLOSED_BEFORE_RESPONSE
            done = time.monotonic()
            recorder.add(
                due=due, sent=sent, done=done, outcome=outcome, connection=number, reused=reused
            )
            carried += 1
            if not keep_alive:
                writer.close()
                with contextlib.suppress(OSError):
                    await writer.wait_closed()
                reader = writer = None
    finally:
        if writer is not None:
            writer.close()


async def _run(plan: TrafficPlan, stop: Event | None) -> TrafficResult:
    recorder = _Recorder()
    tickets = itertools.count()
    started = time.monotonic()
    deadline = started + plan.duration_s
    await asyncio.gather(
        *(
            _connection_loop(
                plan=plan,
                number=number,
                tickets=tickets,
                started=started,
                deadline=deadline,
                stop=stop,
                recorder=recorder,
            )
            for number in range(plan.connections)
        )
    )
    return recorder.result(started=started, finished=time.monotonic())


def run_traffic(plan: TrafficPlan, *, stop: Event | None = None) -> TrafficResult:
    """Send the plan's traffic from this process and return every request's record."""
    if not plan.requests:
        raise ValueError("a traffic plan needs at least one request")
    if plan.rate is not None and plan.rate <= 0:
        raise ValueError(f"rate must be positive, got {plan.rate}")
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a locked runtime dependency
        return asyncio.run(_run(plan, stop))
    return uvloop.run(_run(plan, stop))


def _child(plan: TrafficPlan, stop: Event, ready: Event, sink: Connection) -> None:
    ready.set()
    try:
        sink.send(run_traffic(plan, stop=stop))
    except BaseException as exc:  # report any failure to the parent rather than hang it
        sink.send(exc)
        raise
    finally:
        sink.close()


class TrafficHandle:
    """A traffic run in a child process. Use as a context manager so the child never outlives it."""

    def __init__(self, plan: TrafficPlan) -> None:
        context = multiprocessing.get_context("spawn")
        self.plan = plan
        self._stop = context.Event()
        self._ready = context.Event()
        self._receiver, sender = context.Pipe(duplex=False)
        self._process = context.Process(
            target=_child, args=(plan, self._stop, self._ready, sender), daemon=True
        )
        self._process.start()
        sender.close()
        deadline = time.monotonic() + 60
        while not self._ready.wait(timeout=0.05):
            if not self._process.is_alive() or time.monotonic() > deadline:
                self.close()
                raise RuntimeError("the traffic process did not start (see its stderr)")

    def stop(self) -> None:
        """Ask the generator to stop issuing requests (those in flight still finish)."""
        self._stop.set()

    def result(self, *, timeout: float | None = None) -> TrafficResult:
        """Wait for the run to end and return its records."""
        limit = self.plan.duration_s + self.plan.timeout_s + 30 if timeout is None else timeout
        if not self._receiver.poll(limit):
            self.close()
            raise TimeoutError(f"the traffic process gave no result within {limit:.0f} s")
        payload = self._receiver.recv()
        self._process.join(timeout=10)
        if isinstance(payload, BaseException):
            raise RuntimeError("the traffic process failed") from payload
        if not isinstance(payload, TrafficResult):
            raise TypeError(f"unexpected result from the traffic process: {type(payload)!r}")
        return payload

    def close(self) -> None:
        self._stop.set()
        if self._process.is_alive():
            self._process.join(timeout=self.plan.timeout_s + 5)
        if self._process.is_alive():
            self._process.kill()
            self._process.join(timeout=5)
        self._receiver.close()

    def __enter__(self) -> TrafficHandle:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def start_traffic(plan: TrafficPlan) -> TrafficHandle:
    """Start the plan's traffic in a child process and return at once."""
    if not plan.requests:
        raise ValueError("a traffic plan needs at least one request")
    return TrafficHandle(plan)
