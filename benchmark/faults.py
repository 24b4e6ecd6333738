"""`python -m benchmark faults`: kill -9 a worker and SIGTERM the server under load, count losses.

kill-worker: two workers under paced load; each original worker in turn is killed with SIGKILL,
3 s apart. The supervisor must start a replacement each time, /ping (probed every 100 ms with
SageMaker's 2 s timeout) must keep answering 200, the only failed requests must be the ones on
the killed worker's connections at that instant (at most one per connection), and once both
originals are dead the replacements alone must answer every request.

sigterm: the same load, then SIGTERM to the supervisor (what `docker stop` and SageMaker send).
A probe request is half-sent before the signal and finished after it: it must still get its 200.
No request the server had started may fail, and the server must exit 0 within 30 s. Requests
that raced the close of an idle keep-alive connection (no response byte: the server never read
them) and connections refused after the listener closed are counted apart.

drain: SIGTERM with 1 and with 2 workers, each `--drain-runs` times (10), while keep-alive
clients on plain sockets send back to back (each reconnects after a `Connection: close`), and
other clients open a new connection for every request (they land in the accept queue). Every
request a client began is counted once: answered, refused (the connection was never made), or
reset/disconnected after the connection was made (ECONNRESET, EPIPE or an EOF before the whole
response). The target is no reset in any run, and every exit 0 within 30 s.

    python -m benchmark faults --model-dir build/default-model [--scenario all]

Exit 0 when every check holds, 1 otherwise; tables on stdout, progress on stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from benchmark.payloads import GUIDANCE_ROW
from benchmark.server import ServerProcess, ping
from benchmark.soak import DEFAULT_MODEL_DIR, soak_requests
from benchmark.traffic import (
    Outcome,
    ResponseHead,
    TrafficPlan,
    TrafficResult,
    encode_request,
    parse_response_head,
    start_traffic,
)

SIGTERM_DEADLINE_S = 30.0


@dataclass(frozen=True, kw_only=True)
class SigtermExit:
    """How the server ended after SIGTERM: its exit code and the seconds it took, both None
    when it had not exited when the wait ended."""

    exit_code: int | None
    exit_s: float | None

    @property
    def exited_in_time(self) -> bool:
        """After SIGTERM the server must exit 0 within SIGTERM_DEADLINE_S."""
        return self.exit_code == 0 and self.exit_s is not None and self.exit_s < SIGTERM_DEADLINE_S


def wait_for_exit(server: ServerProcess, *, signalled: float, timeout: float) -> SigtermExit:
    """Wait up to `timeout` seconds for the server signalled at `signalled` (monotonic) to exit."""
    try:
        exit_code = server.wait(timeout=timeout)
    except Exception:
        return SigtermExit(exit_code=None, exit_s=None)
    return SigtermExit(exit_code=exit_code, exit_s=time.monotonic() - signalled)


Progress = Callable[[str], None]


@dataclass(frozen=True, kw_only=True)
class PingRecord:
    at: float
    status: int | None
    ms: float


class PingMonitor:
    """GET /ping every `interval` seconds with a 2 s timeout, in a background thread."""

    def __init__(self, port: int, *, interval: float = 0.1) -> None:
        self.port = port
        self.interval = interval
        self.records: list[PingRecord] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="ping-monitor", daemon=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            status = ping(self.port, timeout=2.0)
            self.records.append(
                PingRecord(at=started, status=status, ms=(time.monotonic() - started) * 1e3)
            )
            self._stop.wait(self.interval)

    def __enter__(self) -> PingMonitor:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def summary(self) -> dict[str, Any]:
        statuses = [r.status for r in self.records]
        return {
            "pings": len(statuses),
            "ok": statuses.count(200),
            "not_ok": len(statuses) - statuses.count(200),
            "worst_ms": max((r.ms for r in self.records), default=0.0),
        }


FAILED_IN_FLIGHT = {Outcome.CLOSED_MID_RESPONSE, Outcome.TIMEOUT, Outcome.MALFORMED}


def _count(result: TrafficResult, outcomes: set[Outcome]) -> int:
    return int(np.isin(result.outcome, [int(o) for o in outcomes]).sum())


@dataclass(frozen=True, kw_only=True)
class KillReport:
    workers: int
    connections: int
    rate: float
    killed_pids: list[int]
    """The original workers, killed one after the other."""
    replacement_pids: list[int]
    """The process the supervisor started after each kill (missing: not replaced in time)."""
    replacement_s: list[float]
    """From each kill until the supervisor had a new worker process running."""
    requests: int
    outcomes: dict[str, int]
    failed: int
    failed_connections: int
    """Distinct client connections that saw a failure, summed over the kills."""
    failed_later: int
    """Failures more than a second after every kill: must be zero."""
    served_by_replacements: int
    """Requests answered 200 after every original worker was dead: proof the replacements serve."""
    server_errors: int
    ping: dict[str, Any]
    ping_failed_at_kill: int
    """Probes that failed within a second of a kill (accepted by the dying worker): one per kill
    at most."""
    ping_failed_otherwise: int
    """Probes that failed at any other time: must be zero."""

    @property
    def passed(self) -> bool:
        return (
            len(self.replacement_pids) == len(self.killed_pids)
            and self.failed <= self.failed_connections <= self.connections * len(self.killed_pids)
            and self.failed_later == 0
            and self.served_by_replacements > 0
            and self.server_errors == 0
            and self.ping_failed_at_kill <= len(self.killed_pids)
            and self.ping_failed_otherwise == 0
            and self.ping["worst_ms"] < 2000
        )


def _await_replacement(
    server: ServerProcess, *, victim: int, known: set[int], workers: int, until: float
) -> int | None:
    while time.monotonic() < until:
        now = server.worker_pids()
        fresh = [pid for pid in now if pid not in known]
        if len(now) == workers and victim not in now and fresh:
            return fresh[0]
        time.sleep(0.02)
    return None


@dataclass(frozen=True, kw_only=True)
class Load:
    """The server and the paced traffic the kill-worker and SIGTERM scenarios run under."""

    model_dir: Path
    log_dir: Path
    workers: int = 2
    connections: int = 16
    rate: float = 400.0
    before_s: float = 3.0
    """Seconds of load before the first signal."""

    def server(self, scenario: str) -> ServerProcess:
        log_path = self.log_dir / f"{scenario}.log"
        return ServerProcess(model_dir=self.model_dir, workers=self.workers, log_path=log_path)

    def traffic(self, port: int, *, duration_s: float) -> TrafficPlan:
        return TrafficPlan(
            port=port,
            requests=soak_requests(200),
            connections=self.connections,
            duration_s=duration_s,
            rate=self.rate,
            timeout_s=5.0,
        )


def kill_worker(
    load: Load,
    *,
    between_s: float = 3.0,
    after_s: float = 4.0,
    progress: Progress | None = None,
) -> KillReport:
    """Under paced load, SIGKILL every original worker in turn (`between_s` apart), so that in
    the end only replacements are left to serve; watch for `after_s` after the last kill."""
    say = progress or (lambda message: None)
    workers, before_s = load.workers, load.before_s
    if workers < 2:
        raise ValueError("kill-worker needs at least 2 workers (one must keep serving)")
    with load.server("kill-worker") as server:
        server.wait_healthy(timeout=120)
        originals = server.worker_pids()
        plan = load.traffic(
            server.port, duration_s=before_s + between_s * (len(originals) - 1) + after_s
        )
        known = set(originals)
        kills: list[float] = []
        replacements: list[int] = []
        replacement_s: list[float] = []
        with PingMonitor(server.port) as pings, start_traffic(plan) as traffic:
            time.sleep(before_s)
            for turn, victim in enumerate(originals):
                if turn:
                    time.sleep(max(0.0, kills[-1] + between_s - time.monotonic()))
                say(f"kill -9 worker {victim} (workers {server.worker_pids()})")
                kills.append(time.monotonic())
                os.kill(victim, signal.SIGKILL)
                fresh = _await_replacement(
                    server, victim=victim, known=known, workers=workers, until=kills[-1] + 10
                )
                if fresh is None:
                    say(f"worker {victim} was not replaced within 10 s")
                    break
                known.add(fresh)
                replacements.append(fresh)
                replacement_s.append(time.monotonic() - kills[-1])
                say(f"replaced by {fresh} after {replacement_s[-1]:.2f} s")
            result = traffic.result()
    failed = ~result.ok()
    near_a_kill = np.zeros(result.total, dtype=bool)
    failed_connections = 0
    for killed_at in kills:
        window = (result.sent >= killed_at - 0.05) & (result.sent <= killed_at + 1.0)
        near_a_kill |= window
        failed_connections += int(np.unique(result.connection[failed & window]).size)
    bad_pings = [r.at for r in pings.records if r.status != 200]
    at_kill = sum(1 for at in bad_pings if any(k - 0.1 <= at <= k + 1.0 for k in kills))
    last_kill = kills[-1]
    return KillReport(
        workers=workers,
        connections=load.connections,
        rate=load.rate,
        killed_pids=originals[: len(kills)],
        replacement_pids=replacements,
        replacement_s=replacement_s,
        requests=result.total,
        outcomes=result.counts(),
        failed=int(failed.sum()),
        failed_connections=failed_connections,
        failed_later=int((failed & ~near_a_kill).sum()),
        served_by_replacements=int((result.ok() & (result.sent > last_kill + 1.0)).sum()),
        server_errors=int((result.outcome >= 500).sum()),
        ping=pings.summary(),
        ping_failed_at_kill=at_kill,
        ping_failed_otherwise=len(bad_pings) - at_kill,
    )


@dataclass(frozen=True, kw_only=True)
class SigtermReport(SigtermExit):
    workers: int
    connections: int
    rate: float
    requests: int
    outcomes: dict[str, int]
    ok: int
    failed_in_flight: int
    """Cut mid-response, timed out, garbled, or a 5xx: must be zero."""
    closed_idle: int
    """Sent on a keep-alive connection the server closed while idle: never read, retryable."""
    refused: int
    """New connections after the listener closed."""
    probe_status: int | None
    """The request half-sent before SIGTERM and finished after it."""

    @property
    def passed(self) -> bool:
        return self.failed_in_flight == 0 and self.probe_status == 200 and self.exited_in_time


class _Broken(Exception):
    """The connection was reset or closed before the whole response arrived."""

    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind


def _read_one(sock: socket.socket, buffer: bytearray) -> ResponseHead:
    """Read one response from `sock` (`buffer` holds what was read past the last one); raise
    `_Broken` when the connection ends first, ValueError when the head is not HTTP/1.x."""
    while b"\r\n\r\n" not in buffer:
        chunk = sock.recv(65536)
        if not chunk:
            raise _Broken("disconnected")
        buffer += chunk
    head, _, _ = bytes(buffer).partition(b"\r\n\r\n")
    response = parse_response_head(head)
    end = len(head) + 4 + (response.content_length or 0)
    while len(buffer) < end:
        chunk = sock.recv(65536)
        if not chunk:
            raise _Broken("disconnected")
        buffer += chunk
    del buffer[:end]
    return response


def _half_sent_probe(port: int, body: bytes) -> tuple[socket.socket, bytes]:
    """Send a CSV request up to half its body; return the socket and the rest of the body."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=SIGTERM_DEADLINE_S)
    rest = body[len(body) // 2 :]
    request = encode_request(headers=(("Content-Type", "text/csv"),), body=body)
    sock.sendall(request[: len(request) - len(rest)])
    return sock, rest


def _finish_probe(sock: socket.socket, rest: bytes) -> int | None:
    """Send the rest of the body and read the status; None when the connection broke."""
    try:
        sock.sendall(rest)
        return _read_one(sock, bytearray()).status
    except (_Broken, OSError, ValueError):
        return None
    finally:
        sock.close()


def sigterm(load: Load, *, progress: Progress | None = None) -> SigtermReport:
    """SIGTERM the supervisor after `before_s` of paced load; keep sending until it is gone."""
    say = progress or (lambda message: None)
    with load.server("sigterm") as server:
        server.wait_healthy(timeout=120)
        plan = load.traffic(server.port, duration_s=load.before_s + SIGTERM_DEADLINE_S + 5)
        with start_traffic(plan) as traffic:
            time.sleep(load.before_s)
            probe, rest = _half_sent_probe(server.port, (GUIDANCE_ROW + b"\n") * 10)
            say(f"SIGTERM to the supervisor {server.pid}")
            signalled = time.monotonic()
            server.signal(signal.SIGTERM)
            time.sleep(1.0)
            probe_status = _finish_probe(probe, rest)
            exited = wait_for_exit(server, signalled=signalled, timeout=SIGTERM_DEADLINE_S)
            if exited.exit_s is not None:
                say(f"exited {exited.exit_code} after {exited.exit_s:.2f} s")
            traffic.stop()
            result = traffic.result()
    return SigtermReport(
        workers=load.workers,
        connections=load.connections,
        rate=load.rate,
        requests=result.total,
        outcomes=result.counts(),
        ok=int(result.ok().sum()),
        failed_in_flight=_count(result, FAILED_IN_FLIGHT) + int((result.outcome >= 500).sum()),
        closed_idle=_count(result, {Outcome.CLOSED_BEFORE_RESPONSE}),
        refused=_count(result, {Outcome.REFUSED}),
        probe_status=probe_status,
        exit_code=exited.exit_code,
        exit_s=exited.exit_s,
    )


# ---------------------------------------------------------------------------------------------
# drain: keep-alive clients across SIGTERM, repeated.

DRAIN_REQUEST = encode_request(headers=(("Content-Type", "text/csv"),), body=GUIDANCE_ROW)
DRAIN_REQUEST_CLOSE = encode_request(
    headers=(("Content-Type", "text/csv"), ("Connection", "close")), body=GUIDANCE_ROW
)


@dataclass(kw_only=True)
class DrainTally:
    answered: int = 0
    refused: int = 0
    reset: int = 0
    """ECONNRESET or EPIPE after the connection was made."""
    disconnected: int = 0
    """EOF, a timeout or an unreadable head before the whole response, after the connection
    was made."""
    close_headers: int = 0
    """Responses that carried `Connection: close` to a request that did not ask for it."""

    def add(self, other: DrainTally) -> None:
        for name in ("answered", "refused", "reset", "disconnected", "close_headers"):
            setattr(self, name, getattr(self, name) + getattr(other, name))


def drain_client(
    port: int, stop: threading.Event, tally: DrainTally, *, keep_alive: bool = True
) -> None:
    """Back-to-back requests on one keep-alive connection at a time (or, without `keep_alive`,
    a new connection for each) until the first refusal (the listener is gone) or `stop`."""
    request = DRAIN_REQUEST if keep_alive else DRAIN_REQUEST_CLOSE
    sock: socket.socket | None = None
    buffer = bytearray()
    try:
        while not stop.is_set():
            if sock is None:
                try:
                    sock = socket.create_connection(("127.0.0.1", port), timeout=5.0)
                except OSError:
                    tally.refused += 1
                    return
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                buffer.clear()
            try:
                sock.sendall(request)
                close = not _read_one(sock, buffer).keep_alive
            except _Broken as broken:
                tally.disconnected += broken.kind == "disconnected"
                sock.close()
                sock = None
                continue
            except (ConnectionResetError, BrokenPipeError):
                tally.reset += 1
                sock.close()
                sock = None
                continue
            except (OSError, ValueError):  # a timeout (no answer, no close), or not HTTP/1.x
                tally.disconnected += 1
                sock.close()
                sock = None
                continue
            tally.answered += 1
            if close:
                tally.close_headers += keep_alive
                sock.close()
                sock = None
    finally:
        if sock is not None:
            sock.close()


@dataclass(frozen=True, kw_only=True)
class DrainRun(SigtermExit):
    workers: int
    answered: int
    answered_after_sigterm: int
    refused: int
    reset: int
    disconnected: int
    close_headers: int

    @property
    def passed(self) -> bool:
        return self.reset == 0 and self.disconnected == 0 and self.exited_in_time


def drain_run(
    *,
    model_dir: Path,
    log_path: Path,
    workers: int,
    clients: int = 8,
    fresh_clients: int = 0,
    before_s: float = 0.5,
) -> DrainRun:
    """One server, `clients` keep-alive clients and `fresh_clients` that connect for each
    request, all sending back to back, SIGTERM after `before_s`; the clients go on until each
    is refused or the server has exited."""
    with ServerProcess(model_dir=model_dir, workers=workers, log_path=log_path) as server:
        server.wait_healthy(timeout=120)
        tallies = [DrainTally() for _ in range(clients + fresh_clients)]
        stop = threading.Event()
        threads = [
            threading.Thread(
                target=drain_client,
                args=(server.port, stop, tally),
                kwargs={"keep_alive": i < clients},
                name=f"drain-{i}",
            )
            for i, tally in enumerate(tallies)
        ]
        for thread in threads:
            thread.start()
        time.sleep(before_s)
        before = sum(t.answered for t in tallies)
        signalled = time.monotonic()
        server.signal(signal.SIGTERM)
        exited = wait_for_exit(server, signalled=signalled, timeout=SIGTERM_DEADLINE_S + 5)
        stop.set()
        for thread in threads:
            thread.join(timeout=10)
    total = DrainTally()
    for tally in tallies:
        total.add(tally)
    return DrainRun(
        workers=workers,
        answered=total.answered,
        answered_after_sigterm=total.answered - before,
        refused=total.refused,
        reset=total.reset,
        disconnected=total.disconnected,
        close_headers=total.close_headers,
        exit_code=exited.exit_code,
        exit_s=exited.exit_s,
    )


@dataclass(frozen=True, kw_only=True)
class DrainReport:
    clients: int
    fresh_clients: int
    runs: list[DrainRun]

    @property
    def passed(self) -> bool:
        return bool(self.runs) and all(run.passed for run in self.runs)


def drain(
    *,
    model_dir: Path,
    log_dir: Path,
    workers: tuple[int, ...] = (1, 2),
    runs: int = 10,
    clients: int = 8,
    fresh_clients: int = 4,
    progress: Progress | None = None,
) -> DrainReport:
    """`drain_run` `runs` times for each worker count."""
    say = progress or (lambda message: None)
    done: list[DrainRun] = []
    for count in workers:
        for index in range(runs):
            run = drain_run(
                model_dir=model_dir,
                log_path=log_dir / f"drain-{count}-{index}.log",
                workers=count,
                clients=clients,
                fresh_clients=fresh_clients,
            )
            say(
                f"drain {count} worker(s) run {index + 1}: answered {run.answered}, "
                f"reset {run.reset}, disconnected {run.disconnected}, exit {run.exit_code}"
            )
            done.append(run)
    return DrainReport(clients=clients, fresh_clients=fresh_clients, runs=done)


def render_drain(report: DrainReport) -> str:
    lines = [
        f"SIGTERM with {report.clients} keep-alive clients and {report.fresh_clients} that "
        f"connect for each request, sending back to back ({len(report.runs)} runs)",
        "",
        "| workers | runs | answered | of which after SIGTERM | `Connection: close` seen "
        "| refused | reset | disconnected | exit 0 | slowest exit |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for count in sorted({run.workers for run in report.runs}):
        runs = [run for run in report.runs if run.workers == count]
        exits = [run.exit_s for run in runs if run.exit_s is not None]
        slowest = f"{max(exits):.2f} s" if exits else "none"
        lines.append(
            f"| {count} | {len(runs)} | {sum(r.answered for r in runs):,} "
            f"| {sum(r.answered_after_sigterm for r in runs):,} "
            f"| {sum(r.close_headers for r in runs):,} | {sum(r.refused for r in runs):,} "
            f"| {sum(r.reset for r in runs)} | {sum(r.disconnected for r in runs)} "
            f"| {sum(r.exit_code == 0 for r in runs)} / {len(runs)} | {slowest} |"
        )
    lines += [
        "",
        "reset/disconnected per run: "
        + ", ".join(f"{run.workers}w {run.reset}/{run.disconnected}" for run in report.runs),
        "",
        f"{'PASS' if report.passed else 'FAIL'}",
    ]
    return "\n".join(lines)


def render_kill(report: KillReport) -> str:
    replaced = ", ".join(
        f"{old} -> {new} after {seconds:.2f} s"
        for old, new, seconds in zip(
            report.killed_pids, report.replacement_pids, report.replacement_s, strict=False
        )
    )
    return "\n".join(
        [
            f"kill -9 each of {report.workers} workers in turn under {report.rate:,.0f} req/s "
            f"on {report.connections} connections",
            "",
            "| figure | value |",
            "|---|---|",
            f"| killed -> replaced | {replaced or 'none replaced'} |",
            f"| requests | {report.requests:,} |",
            f"| outcomes | {_outcomes(report.outcomes)} |",
            f"| failed (connections) | {report.failed} ({report.failed_connections}) |",
            f"| failed more than 1 s after a kill | {report.failed_later} |",
            f"| answered by replacements alone | {report.served_by_replacements:,} |",
            f"| /ping 200 / probes, worst | {report.ping['ok']} / {report.ping['pings']}, "
            f"{report.ping['worst_ms']:.0f} ms |",
            f"| /ping failed at a kill / otherwise | {report.ping_failed_at_kill} / "
            f"{report.ping_failed_otherwise} |",
            "",
            f"{'PASS' if report.passed else 'FAIL'}",
        ]
    )


def render_sigterm(report: SigtermReport) -> str:
    exited = "no" if report.exit_s is None else f"{report.exit_code} after {report.exit_s:.2f} s"
    return "\n".join(
        [
            f"SIGTERM under {report.rate:,.0f} req/s on {report.connections} connections, "
            f"{report.workers} workers",
            "",
            "| figure | value |",
            "|---|---|",
            f"| requests | {report.requests:,} |",
            f"| outcomes | {_outcomes(report.outcomes)} |",
            f"| answered 200 | {report.ok:,} |",
            f"| failed in flight | {report.failed_in_flight} |",
            f"| raced an idle keep-alive close (never read) | {report.closed_idle} |",
            f"| refused after the listener closed | {report.refused} |",
            f"| half-sent probe finished after SIGTERM | {report.probe_status} |",
            f"| exit | {exited} |",
            "",
            f"{'PASS' if report.passed else 'FAIL'}",
        ]
    )


def _outcomes(outcomes: dict[str, int]) -> str:
    return ", ".join(f"{name}: {count:,}" for name, count in sorted(outcomes.items()))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmark faults",
        description="kill -9 a worker and SIGTERM the server under load: requests lost.",
    )
    parser.add_argument(
        "--model-dir",
        type=Path,
        default=DEFAULT_MODEL_DIR,
        help=f"artifact or raw SageMaker model directory (default {DEFAULT_MODEL_DIR})",
    )
    parser.add_argument(
        "--scenario",
        choices=["kill-worker", "sigterm", "drain", "all"],
        default="all",
        help="(all)",
    )
    parser.add_argument("--workers", type=int, default=2, help="server workers (default 2)")
    parser.add_argument("--rate", type=float, default=400.0, help="req/s held (default 400)")
    parser.add_argument("--connections", type=int, default=16, help="keep-alive connections")
    parser.add_argument(
        "--drain-runs", type=int, default=10, help="drain: runs per worker count (default 10)"
    )
    parser.add_argument(
        "--drain-clients", type=int, default=8, help="drain: keep-alive clients (default 8)"
    )
    parser.add_argument(
        "--drain-fresh-clients",
        type=int,
        default=4,
        help="drain: clients that connect for each request (default 4)",
    )
    parser.add_argument("--json", type=Path, help="write the reports as JSON here")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.model_dir.is_dir():
        parser.error(f"{args.model_dir} is not a model directory (run `make model` first)")
    if args.workers < 2 and args.scenario in {"kill-worker", "all"}:
        parser.error("kill-worker needs --workers 2 or more (one keeps serving while one dies)")
    if args.workers < 1:
        parser.error("--workers must be at least 1")
    if args.rate <= 0 or args.connections < 1:
        parser.error("--rate and --connections must be positive")
    if args.drain_runs < 1 or args.drain_clients < 1 or args.drain_fresh_clients < 0:
        parser.error(
            "--drain-runs and --drain-clients must be positive, --drain-fresh-clients not negative"
        )

    def say(message: str) -> None:
        print(message, file=sys.stderr)

    reports: dict[str, Any] = {}

    def record(name: str, report: KillReport | SigtermReport | DrainReport, text: str) -> None:
        print(("\n" if reports else "") + text)
        reports[name] = {**asdict(report), "passed": report.passed}

    with tempfile.TemporaryDirectory(prefix="rtb-faults-") as tmp:
        load = Load(
            model_dir=args.model_dir,
            log_dir=Path(tmp),
            workers=args.workers,
            connections=args.connections,
            rate=args.rate,
        )
        if args.scenario in {"kill-worker", "all"}:
            kill = kill_worker(load, progress=say)
            record("kill_worker", kill, render_kill(kill))
        if args.scenario in {"sigterm", "all"}:
            term = sigterm(load, progress=say)
            record("sigterm", term, render_sigterm(term))
        if args.scenario in {"drain", "all"}:
            drained = drain(
                model_dir=args.model_dir,
                log_dir=Path(tmp),
                runs=args.drain_runs,
                clients=args.drain_clients,
                fresh_clients=args.drain_fresh_clients,
                progress=say,
            )
            record("drain", drained, render_drain(drained))
    if args.json is not None:
        args.json.write_text(json.dumps(reports, indent=2) + "\n", encoding="utf-8")
    return 0 if all(report["passed"] for report in reports.values()) else 1
