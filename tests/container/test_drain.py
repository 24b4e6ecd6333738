"""The draining server: once draining, no new connection enters the accept queue; connections
already in it are accepted and answered, not reset; a graceful stop exits 0."""

from __future__ import annotations

import asyncio
import signal
import socket
import subprocess
import sys
import textwrap
from typing import Any

import pytest
import uvicorn
import uvloop

from container.drain import DrainingServer, refuse_new_connections
from container.http_protocol import IMPORT_PATH

REQUEST = b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n1,2,3"


async def answer(scope: Any, receive: Any, send: Any) -> None:
    await receive()
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]}
    )
    await send({"type": "http.response.body", "body": b"ok"})


def test_a_refusing_listener_keeps_its_queue_and_takes_no_new_connection() -> None:
    listener = socket.create_server(("127.0.0.1", 0), backlog=16)
    port = listener.getsockname()[1]
    queued = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        if not refuse_new_connections(listener):
            pytest.skip("the kernel refuses a socket filter (recent ones want CAP_NET_ADMIN)")
        queued.sendall(b"sent after the filter")
        connection, _ = listener.accept()
        with connection:
            assert connection.recv(100) == b"sent after the filter"
        # A new client's SYN is dropped: it never connects (and never sends a request).
        with pytest.raises(TimeoutError):
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        listener.setblocking(False)
        with pytest.raises(BlockingIOError):
            listener.accept()
    finally:
        queued.close()
        listener.close()


def test_queued_connections_are_accepted_and_answered() -> None:
    config = uvicorn.Config(answer, http=IMPORT_PATH, lifespan="off", log_config=None)
    config.load()
    server = DrainingServer(config)
    server.lifespan = config.lifespan_class(config)
    listener = socket.create_server(("127.0.0.1", 0), backlog=16)
    port = listener.getsockname()[1]
    # Nobody accepts yet: the kernel completes the handshakes and queues the connections, and
    # their requests wait in the kernel too.
    clients = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(3)]
    for client in clients:
        client.sendall(REQUEST)

    async def scenario() -> tuple[int, list[bytes]]:
        loop = asyncio.get_running_loop()
        accepted = await server._accept_queued(listener)
        answers = [await loop.run_in_executor(None, client.recv, 65536) for client in clients]
        for client in clients:
            client.close()
        while server.server_state.connections:  # each closes on its client's EOF
            await asyncio.sleep(0.01)
        return accepted, answers

    try:
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:  # as served
            accepted, answers = runner.run(scenario())
    finally:
        listener.close()
        for client in clients:
            client.close()
    assert accepted == 3
    assert all(answer.startswith(b"HTTP/1.1 200 ") for answer in answers), answers


def test_a_graceful_stop_on_sigterm_exits_0() -> None:
    """uvicorn re-raises the signal after its graceful shutdown, so the process would die of
    SIGTERM (exit -15, 143 in a container); the draining server exits 0."""
    script = textwrap.dedent(
        """
        import os, signal, threading, uvicorn
        from container.drain import DrainingServer

        async def app(scope, receive, send):
            pass

        config = uvicorn.Config(app, port=0, lifespan="off", log_config=None)
        server = DrainingServer(config)
        def stop():
            while not server.started:
                threading.Event().wait(0.01)
            os.kill(os.getpid(), signal.SIGTERM)
        threading.Thread(target=stop, daemon=True).start()
        server.run()
        """
    )
    done = subprocess.run([sys.executable, "-c", script], timeout=60, capture_output=True)
    assert done.returncode == 0, (done.returncode, done.stderr.decode()[-2000:])
    assert done.returncode != -signal.SIGTERM
