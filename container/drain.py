"""The server's drain on SIGTERM: no client that reached the server sees a reset.

SageMaker sends SIGTERM on every blue/green update and scale-in, and SIGKILL 30 s later. uvicorn
alone closes the listening socket, which resets the connections still in its accept queue, and
closes every idle keep-alive connection at once, which resets (or leaves unanswered) a request
that was on its way. Here, in order:

1. The listening socket stops taking new connections (`refuse_new_connections`: a socket filter
   drops each new SYN, so no connection can enter the accept queue after this; the client's
   SYN retransmit, a second later, finds the socket closed and is refused). The supervisor does
   this, and closes its copy of the socket, as it forwards SIGTERM to the workers
   (`DrainingMultiprocess`); a single-process server does it as it starts to shut down.
   Recent Linux kernels want CAP_NET_ADMIN to attach a filter to a TCP socket, which a container
   lacks unless given it; without the filter, step 2 still drains the queue right before the
   close, and only a connection that completes its handshake in that instant can be reset.
2. Each worker (`DrainingServer`) keeps accepting for `HANDSHAKE_SETTLE_S`, so handshakes that
   were past their SYN complete, then stops accepting, accepts what is still in the kernel's
   accept queue and serves it, and closes its last copy, with no await between the last
   accept and the close. Closing a listening socket resets every connection in its queue; here
   the queue is empty then, so a client either connected and is answered, or never connected.
3. Each connection drains (`GuardedHttpToolsProtocol.shutdown`): the next response says
   `Connection: close`, an idle connection is closed after a grace period, and every close
   lingers (see `container.http_protocol`).
4. uvicorn waits for the connections to close, at most `RTB_GRACEFUL_TIMEOUT` (25 s, under
   SageMaker's 30 s), then cancels what is left, and the process exits 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import socket
import struct
from collections.abc import Generator

from uvicorn import Server
from uvicorn.supervisors import multiprocess

logger = logging.getLogger("container")

HANDSHAKE_SETTLE_S = 0.1
"""After new SYNs are dropped, how long the loop keeps accepting before the queue is drained:
handshakes already past their SYN need one round trip to complete."""

SO_ATTACH_FILTER = 26  # Linux, <asm-generic/socket.h>
_DROP_NEW_SYN = (  # classic BPF over the TCP header (the filter runs on the listening socket)
    (0x30, 0, 0, 13),  # A = TCP flags byte
    (0x54, 0, 0, 0x12),  # A &= SYN | ACK
    (0x15, 0, 1, 0x02),  # SYN without ACK: a new connection
    (0x06, 0, 0, 0),  # drop it
    (0x06, 0, 0, 0xFFFFFFFF),  # keep everything else (handshakes completing, data)
)


def refuse_new_connections(sock: socket.socket) -> bool:
    """Drop every new SYN that reaches this listening socket (shared by all processes that
    hold it); connections already queued, or completing their handshake, are untouched.
    False where the kernel refuses (recent kernels, without CAP_NET_ADMIN) or has no filters."""
    program = b"".join(struct.pack("HBBI", *instruction) for instruction in _DROP_NEW_SYN)
    code = ctypes.create_string_buffer(program, len(program))
    fprog = struct.pack("HL", len(_DROP_NEW_SYN), ctypes.addressof(code))  # struct sock_fprog
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)
    except OSError as exc:
        logger.info(
            "draining: no socket filter (%s); the accept queue is drained just before the close",
            exc,
        )
        return False
    return True


class DrainingServer(Server):
    """uvicorn's Server that serves its accept queue before it lets the listener go, and
    exits 0 after a graceful stop (uvicorn re-raises the signal, so the process would die of
    SIGTERM)."""

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        listening = [sock.fileno() for sock in sockets] if sockets is not None else []
        listening += [sock.fileno() for server in self.servers for sock in server.sockets]
        # A copy of each, so the listening socket outlives uvicorn's close until the queue is
        # served (the fds may repeat: the kernel socket is the same).
        held = [socket.socket(fileno=os.dup(fd)) for fd in dict.fromkeys(listening)]
        filtered = [refuse_new_connections(sock) for sock in held]
        if any(filtered):
            await asyncio.sleep(HANDSHAKE_SETTLE_S)  # the loop goes on accepting meanwhile
        for server in self.servers:
            server.close()  # no more accepts by the event loop
        for sock in sockets or []:
            sock.close()
        accepted = 0
        for sock in held:
            accepted += await self._accept_queued(sock)
            sock.close()  # this process's last copy of the listening socket
        if accepted:
            logger.info("draining: accepted %d queued connection(s)", accepted)
        await super().shutdown(sockets=sockets)  # drains every connection, these included

    async def _accept_queued(self, listener: socket.socket) -> int:
        loop = asyncio.get_running_loop()
        config = self.config

        def create_protocol() -> asyncio.Protocol:
            return config.http_protocol_class(  # type: ignore[call-arg]
                config=config, server_state=self.server_state, app_state=self.lifespan.state
            )

        listener.setblocking(False)
        count = 0
        while True:
            try:
                connection, _ = listener.accept()
            except (BlockingIOError, InterruptedError):
                return count
            except OSError as exc:  # e.g. out of file descriptors: leave the rest
                logger.warning("draining: accept failed: %s", exc)
                return count
            connection.setblocking(False)
            await loop.connect_accepted_socket(create_protocol, connection)
            count += 1

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        with super().capture_signals():
            try:
                yield
            finally:
                self._captured_signals.clear()  # handled: shut down gracefully, exit 0


class DrainingProcess(multiprocess.Process):
    """A worker process whose server is a `DrainingServer`."""

    @property
    def server(self) -> Server:
        if self._server is None:
            self._server = DrainingServer(config=self.config)
        return self._server


class DrainingMultiprocess(multiprocess.Multiprocess):
    """uvicorn's supervisor, whose workers are `DrainingProcess`es and which lets its copy of
    the listening socket go on SIGTERM or SIGINT (it would keep it until every worker exited,
    so the kernel would queue connections nobody accepts, and reset them at exit)."""

    def run(self) -> None:
        # uvicorn builds each worker, first and replacement, from this module's `Process`.
        original = multiprocess.Process
        multiprocess.Process = DrainingProcess  # type: ignore[misc]
        try:
            super().run()
        finally:
            multiprocess.Process = original  # type: ignore[misc]

    def handle_term(self) -> None:
        self._close_listeners()
        super().handle_term()

    def handle_int(self) -> None:
        self._close_listeners()
        super().handle_int()

    def _close_listeners(self) -> None:
        for sock in self.sockets:
            if sock.fileno() != -1:
                refuse_new_connections(sock)
                sock.close()
