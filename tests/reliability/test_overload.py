"""Overload: beyond its concurrency bound the server sheds load with 503s at once instead of
queueing without bound, and /ping keeps answering inside SageMaker's 2 s timeout.

One worker with `RTB_MAX_CONCURRENCY=8` is flooded by 64 closed-loop connections (8x its bound)
for 5 s while /ping is probed every 100 ms. Latencies are printed, never asserted.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from benchmark.faults import PingMonitor, PingRecord
from benchmark.server import ServerProcess
from benchmark.soak import soak_requests
from benchmark.traffic import TrafficPlan, TrafficResult, start_traffic

BOUND = 8
CONNECTIONS = 64


@dataclass(frozen=True)
class Flood:
    result: TrafficResult
    pings: list[PingRecord]


@pytest.fixture(scope="module")
def flood(artifact_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flood]:
    server = ServerProcess(
        model_dir=artifact_dir,
        workers=1,
        env={"RTB_MAX_CONCURRENCY": str(BOUND)},
        log_path=tmp_path_factory.mktemp("overload") / "server.log",
    )
    try:
        server.start()
        server.wait_healthy(timeout=60)
        plan = TrafficPlan(
            port=server.port,
            requests=soak_requests(100),
            connections=CONNECTIONS,
            duration_s=6.0,
            timeout_s=10.0,
        )
        with start_traffic(plan) as traffic:
            time.sleep(1.0)  # every connection is open and busy before the probes start
            with PingMonitor(server.port, interval=0.1) as monitor:
                time.sleep(4.0)
            result = traffic.result()
        yield Flood(result=result, pings=monitor.records)
    finally:
        server.stop()


def _percentiles(values: npt.NDArray[np.int64]) -> str:
    if values.size == 0:
        return "-"
    p50, p99 = np.percentile(values, [50, 99])
    return f"p50 {p50 / 1e3:.1f} ms, p99 {p99 / 1e3:.1f} ms"


def test_overload_is_shed_with_503s_not_queued(flood: Flood) -> None:
    result = flood.result
    counts = result.counts()
    print(
        f"\n{CONNECTIONS} connections against a bound of {BOUND}: {counts}, "
        f"{result.throughput():,.0f} req/s answered 200; "
        f"200s {_percentiles(result.latency_us[result.outcome == 200])}, "
        f"503s {_percentiles(result.latency_us[result.outcome == 503])}"
    )
    assert set(counts) <= {"200", "503"}, counts  # no timeouts, resets or refusals
    assert counts.get("503", 0) > 0, "nothing was shed at 8x the concurrency bound"
    assert counts.get("200", 0) > 0, "nothing was served under overload"


def test_ping_answers_within_2_s_under_overload(flood: Flood) -> None:
    worst = max(record.ms for record in flood.pings)
    statuses = [record.status for record in flood.pings]
    print(f"\n/ping under overload: {len(statuses)} probes, worst {worst:.0f} ms, {statuses}")
    assert flood.pings, "no /ping probe ran"
    assert None not in statuses, "a /ping probe got no answer within 2 s"


def test_ping_stays_healthy_under_overload(flood: Flood) -> None:
    statuses = [record.status for record in flood.pings]
    assert statuses.count(200) == len(statuses), statuses
