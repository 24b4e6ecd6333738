"""The load generator's own accounting, against small servers whose behaviour is known exactly.

Every figure in docs/reliability.md rests on `benchmark.traffic` classifying each request right:
a refused connection, a close before or during the response, a timeout, a status.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator

import numpy as np
import pytest

from benchmark.server import free_port
from benchmark.traffic import (
    Outcome,
    ResponseHead,
    TrafficPlan,
    encode_request,
    parse_response_head,
    run_traffic,
    start_traffic,
)

REQUEST = encode_request(body=b"1,2,3", headers=(("Content-Type", "text/csv"),))
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"

Behaviour = Callable[[socket.socket, int], bool]
"""Answer the n-th request (0-based, counted over the server) on a socket; False closes it."""


@pytest.fixture
def scripted_server() -> Iterator[Callable[[Behaviour], int]]:
    """A threaded raw HTTP server that reads one request at a time and follows a script."""
    stop = threading.Event()
    listeners: list[socket.socket] = []
    threads: list[threading.Thread] = []

    def start(behaviour: Behaviour) -> int:
        listener = socket.create_server(("127.0.0.1", 0))
        listener.settimeout(0.2)
        listeners.append(listener)
        counter = iter(range(10**9))
        lock = threading.Lock()

        def serve(conn: socket.socket) -> None:
            with conn:
                buffer = b""
                while not stop.is_set():
                    while b"\r\n\r\n" not in buffer or len(buffer.split(b"\r\n\r\n", 1)[1]) < 5:
                        chunk = conn.recv(65536)
                        if not chunk:
                            return
                        buffer += chunk
                    buffer = buffer.split(b"\r\n\r\n", 1)[1][5:]
                    with lock:
                        number = next(counter)
                    if not behaviour(conn, number):
                        return

        def accept() -> None:
            while not stop.is_set():
                try:
                    conn, _ = listener.accept()
                except TimeoutError:
                    continue
                except OSError:
                    return
                thread = threading.Thread(target=serve, args=(conn,), daemon=True)
                thread.start()
                threads.append(thread)

        acceptor = threading.Thread(target=accept, daemon=True)
        acceptor.start()
        threads.append(acceptor)
        port: int = listener.getsockname()[1]
        return port

    try:
        yield start
    finally:
        stop.set()
        for listener in listeners:
            listener.close()
        for thread in threads:
            thread.join(timeout=5)


def test_nobody_listening_is_refused_every_time() -> None:
    result = run_traffic(
        TrafficPlan(port=free_port(), requests=(REQUEST,), connections=2, duration_s=0.5)
    )
    assert result.total > 0
    assert result.counts() == {"REFUSED": result.total}


def test_each_failure_mode_is_counted_exactly(scripted_server: Callable[[Behaviour], int]) -> None:
    def behaviour(conn: socket.socket, number: int) -> bool:
        kind = number % 4
        if kind == 0:
            conn.sendall(OK)
            return True
        if kind == 1:
            conn.sendall(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n")
            return True
        if kind == 2:
            return False  # close before any response byte
        conn.sendall(OK[:-1])  # close mid-body
        return False

    port = scripted_server(behaviour)
    result = run_traffic(
        TrafficPlan(port=port, requests=(REQUEST,), connections=1, duration_s=10, max_requests=40)
    )
    assert result.counts() == {
        "200": 10,
        "503": 10,
        "CLOSED_BEFORE_RESPONSE": 10,
        "CLOSED_MID_RESPONSE": 10,
    }
    # After each close the generator reconnects, so the request after a close (and the very
    # first) goes out on a fresh connection: requests 0, 3, 4, 7, 8, ... of 40.
    fresh = ~result.reused
    assert int(fresh.sum()) == 20


@pytest.mark.parametrize(
    ("head", "status", "length", "keep_alive", "chunked"),
    [
        (OK.partition(b"\r\n\r\n")[0], 200, 2, True, False),
        (b"HTTP/1.1 503 x\r\nconnection: Close\r\ncontent-length: 0\r\n\r\n", 503, 0, False, False),
        (b"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked", 200, None, False, True),
    ],
)
def test_a_response_head_says_how_to_read_the_body(
    head: bytes, status: int, length: int | None, keep_alive: bool, chunked: bool
) -> None:
    expected = ResponseHead(
        status=status, content_length=length, keep_alive=keep_alive, chunked=chunked
    )
    assert parse_response_head(head) == expected


@pytest.mark.parametrize(
    "head", [b"", b"garbage", b"HTTP/2 200", b"HTTP/1.1 OK", b"HTTP/1.1 200\r\nContent-Length: x"]
)
def test_a_head_that_is_not_http_1_is_a_value_error(head: bytes) -> None:
    with pytest.raises(ValueError):
        parse_response_head(head)


def test_a_silent_server_times_out(scripted_server: Callable[[Behaviour], int]) -> None:
    port = scripted_server(lambda conn, number: (threading.Event().wait(3), True)[1])
    result = run_traffic(
        TrafficPlan(port=port, requests=(REQUEST,), connections=1, duration_s=1, timeout_s=0.3)
    )
    assert result.total >= 1
    assert result.counts() == {"TIMEOUT": result.total}
    assert Outcome.TIMEOUT.name in result.counts()


def test_paced_traffic_issues_exactly_the_scheduled_requests(
    scripted_server: Callable[[Behaviour], int],
) -> None:
    def answer(conn: socket.socket, number: int) -> bool:
        conn.sendall(OK)
        return True

    port = scripted_server(answer)
    with start_traffic(
        TrafficPlan(
            port=port,
            requests=(REQUEST,),
            connections=4,
            duration_s=30.0,  # far beyond the schedule: the count bound ends the run
            rate=100.0,
            max_requests=200,
        )
    ) as handle:
        result = handle.result()
    assert result.counts() == {"200": 200}
    # Request i is due at start + i / rate, whichever connection sends it.
    offsets = np.sort(result.due) - result.started
    assert np.allclose(offsets, np.arange(200) / 100.0)
