"""SIGTERM, as SageMaker sends it before it kills a container 30 s later: requests in flight
finish, none is lost, keep-alive clients are drained without a reset, and the container exits
on its own in time."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import pytest

from benchmark.faults import DrainTally, drain_client
from tests.contract import SEED_ROW, encode_rows

from .conftest import RunServer

pytestmark = pytest.mark.container

IN_FLIGHT = 8
ROWS = 500
SAGEMAKER_KILL_AFTER_S = 30


def read_response(connection: socket.socket) -> tuple[int, bytes]:
    """Status and body of one HTTP/1.1 response with a Content-Length."""
    connection.settimeout(SAGEMAKER_KILL_AFTER_S)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = connection.recv(65536)
        if not chunk:
            raise ConnectionError(f"connection closed after {data!r}")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    length = next(
        int(line.split(":", 1)[1])
        for line in lines[1:]
        if line.lower().startswith("content-length")
    )
    while len(body) < length:
        chunk = connection.recv(65536)
        if not chunk:
            raise ConnectionError("connection closed mid-body")
        body += chunk
    return status, body


def test_sigterm_with_requests_in_flight_loses_none_and_exits_in_time(
    run_server: RunServer, seed_artifact_dir: Path
) -> None:
    body = encode_rows([SEED_ROW] * ROWS, "text/csv")
    head = (
        "POST /invocations HTTP/1.1\r\nHost: test\r\nContent-Type: text/csv\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    half = len(body) // 2
    with run_server(model_dir=seed_artifact_dir) as server:
        connections = [
            socket.create_connection(("127.0.0.1", server.port), timeout=10)
            for _ in range(IN_FLIGHT)
        ]
        try:
            # Every request is in flight: headers and half of its body sent, the rest held back.
            for connection in connections:
                connection.sendall(head + body[:half])
            time.sleep(1.0)
            server.container.kill(signal="SIGTERM")
            signalled = time.monotonic()
            time.sleep(1.0)
            for connection in connections:
                connection.sendall(body[half:])
            answers = [read_response(connection) for connection in connections]
        finally:
            for connection in connections:
                connection.close()
        exit_status = server.container.wait(timeout=SAGEMAKER_KILL_AFTER_S)["StatusCode"]
        stopped_after = time.monotonic() - signalled
        log = server.logs()
    assert [status for status, _ in answers] == [200] * IN_FLIGHT, log[-3000:]
    for _, answer in answers:
        assert len(answer.decode().splitlines()) == ROWS
    assert exit_status == 0, log[-3000:]
    assert stopped_after < SAGEMAKER_KILL_AFTER_S


def test_sigterm_drains_keep_alive_clients_without_a_reset(
    run_server: RunServer, seed_artifact_dir: Path
) -> None:
    """Clients sending back to back on keep-alive connections across SIGTERM (2 workers): every
    request is answered, or refused once the listener is gone; none is reset."""
    clients = 4
    with run_server(model_dir=seed_artifact_dir) as server:
        tallies = [DrainTally() for _ in range(clients)]
        stop = threading.Event()
        threads = [
            threading.Thread(target=drain_client, args=(server.port, stop, tally))
            for tally in tallies
        ]
        for thread in threads:
            thread.start()
        try:
            time.sleep(1.0)
            server.container.kill(signal="SIGTERM")
            signalled = time.monotonic()
            exit_status = server.container.wait(timeout=SAGEMAKER_KILL_AFTER_S)["StatusCode"]
            stopped_after = time.monotonic() - signalled
        finally:
            stop.set()
            for thread in threads:
                thread.join(timeout=10)
        log = server.logs()
    total = DrainTally()
    for tally in tallies:
        total.add(tally)
    assert total.reset == 0 and total.disconnected == 0, (total, log[-3000:])
    assert total.answered > 0
    assert total.close_headers >= clients, total  # each client told to close, once at least
    assert exit_status == 0, log[-3000:]
    assert stopped_after < SAGEMAKER_KILL_AFTER_S
