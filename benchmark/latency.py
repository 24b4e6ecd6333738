"""Microsecond latency in HDR histograms, bucketed by wall-clock time, mergeable across processes.

Locust's own tables round to whole milliseconds below 100 ms; this recorder keeps microseconds at
three significant digits (HdrHistogram) for the client-side latency, and a second histogram for the
server's own time when the server reports it (e.g. a `Server-Timing` header).

Samples land in one histogram per time bucket (`bucket_seconds` wide, aligned on the Unix epoch),
so per-second timelines and per-step statistics can be rebuilt later, and so several load processes
(Locust workers) can be merged bucket by bucket: `drain()` hands out what was recorded since the
last call as plain JSON-able data, `merge()` adds such data into another recorder.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np
from hdrh.histogram import HdrHistogram

LOWEST_US: Final = 1
HIGHEST_US: Final = 60_000_000  # SageMaker's invocation timeout; longer values are clamped
SIGNIFICANT_DIGITS: Final = 3
PERCENTILES: Final = (50.0, 90.0, 99.0, 99.9)


def new_histogram() -> HdrHistogram:
    return HdrHistogram(LOWEST_US, HIGHEST_US, SIGNIFICANT_DIGITS)


def record(
    histogram: HdrHistogram, microseconds: float, *, expected_interval_us: float | None = None
) -> None:
    """Record one value, rounded to a whole microsecond and clamped into the histogram's range.

    With `expected_interval_us` (an open-loop rate), a value longer than the interval also records
    the requests that a stalled sender could not issue meanwhile (HdrHistogram's correction for
    coordinated omission).
    """
    value = min(max(round(microseconds), LOWEST_US), HIGHEST_US)
    if expected_interval_us:
        histogram.record_corrected_value(value, max(round(expected_interval_us), LOWEST_US))
    else:
        histogram.record_value(value)


def encode(histogram: HdrHistogram) -> str:
    encoded: bytes = histogram.encode()
    return encoded.decode("ascii")


def decode(encoded: str) -> HdrHistogram:
    histogram = new_histogram()
    histogram.decode_and_add(encoded.encode("ascii"))
    return histogram


def merged(histograms: Iterable[HdrHistogram]) -> HdrHistogram:
    """The sum of `histograms`; a lone non-empty one is returned as is (treat it as read-only)."""
    present = [h for h in histograms if h.get_total_count()]
    if len(present) == 1:
        return present[0]
    total = new_histogram()
    for histogram in present:
        total.add(histogram)
    return total


def values_at_percentiles(histogram: HdrHistogram, percentiles: Sequence[float]) -> list[int]:
    """`HdrHistogram.get_value_at_percentile` for each percentile, in one vectorised pass.

    hdrh scans its counts array in Python for every percentile (milliseconds per call); a cumulative
    sum and a binary search give the same values (the highest equivalent value of the first
    index whose cumulative count reaches the target).
    """
    cumulative = np.cumsum(np.ctypeslib.as_array(histogram.counts))
    values = []
    for percentile in percentiles:
        target = histogram.get_target_count_at_percentile(percentile)
        index = int(np.searchsorted(cumulative, target, side="left"))
        if index >= len(cumulative):
            values.append(0)
            continue
        value = histogram.get_value_from_index(index)
        if percentile:
            values.append(int(histogram.get_highest_equivalent_value(value)))
        else:  # hdrh's convention for the 0th percentile
            values.append(int(histogram.get_lowest_equivalent_value(value)))
    return values


@dataclass(frozen=True)
class Percentiles:
    """Summary of one histogram, in microseconds."""

    count: int
    p50: int
    p90: int
    p99: int
    p999: int
    max: int
    min: int

    @classmethod
    def of(cls, histogram: HdrHistogram) -> Percentiles | None:
        count = int(histogram.get_total_count())
        if count == 0:
            return None
        p50, p90, p99, p999 = values_at_percentiles(histogram, PERCENTILES)
        return cls(
            count=count,
            p50=p50,
            p90=p90,
            p99=p99,
            p999=p999,
            max=int(histogram.get_max_value()),
            min=int(histogram.get_min_value()),
        )

    def as_dict(self) -> dict[str, float]:
        return {
            "count": self.count,
            "p50_us": self.p50,
            "p90_us": self.p90,
            "p99_us": self.p99,
            "p99_9_us": self.p999,
            "max_us": self.max,
            "min_us": self.min,
        }


@dataclass
class Bucket:
    """What was recorded in one time bucket: successes, failures, client latency, server time.

    `requests` counts the successful requests themselves; the latency histogram can hold more
    values when corrected for coordinated omission.
    """

    latency: HdrHistogram = field(default_factory=new_histogram)
    server: HdrHistogram = field(default_factory=new_histogram)
    requests: int = 0
    failures: int = 0

    def is_empty(self) -> bool:
        return not (self.requests or self.failures)

    def to_json(self) -> dict[str, Any]:
        return {
            "latency": encode(self.latency),
            "server": encode(self.server) if self.server.get_total_count() else None,
            "requests": self.requests,
            "failures": self.failures,
        }

    def add_json(self, data: Mapping[str, Any]) -> None:
        self.latency.decode_and_add(str(data["latency"]).encode("ascii"))
        if data.get("server"):
            self.server.decode_and_add(str(data["server"]).encode("ascii"))
        self.requests += int(data.get("requests", 0))
        self.failures += int(data.get("failures", 0))


class LatencyRecorder:
    """Per-time-bucket histograms of successful requests' latency and server time; failures."""

    def __init__(self, *, bucket_seconds: float = 1.0) -> None:
        if not bucket_seconds > 0:
            raise ValueError(f"bucket_seconds must be > 0, got {bucket_seconds}")
        self.bucket_seconds = bucket_seconds
        self._buckets: dict[int, Bucket] = {}

    def bucket_of(self, timestamp: float) -> int:
        return math.floor(timestamp / self.bucket_seconds)

    def record_success(
        self,
        *,
        timestamp: float,
        latency_us: float,
        server_us: float | None = None,
        expected_interval_us: float | None = None,
    ) -> None:
        bucket = self._bucket(self.bucket_of(timestamp))
        bucket.requests += 1
        record(bucket.latency, latency_us, expected_interval_us=expected_interval_us)
        if server_us is not None:
            record(bucket.server, server_us)

    def record_failure(self, *, timestamp: float) -> None:
        self._bucket(self.bucket_of(timestamp)).failures += 1

    def _bucket(self, index: int) -> Bucket:
        bucket = self._buckets.get(index)
        if bucket is None:
            bucket = self._buckets[index] = Bucket()
        return bucket

    def drain(self) -> dict[str, dict[str, Any]]:
        """Hand out everything recorded so far as JSON-able data, and forget it."""
        data = {str(index): bucket.to_json() for index, bucket in self._buckets.items()}
        self._buckets = {}
        return data

    def merge(self, data: Mapping[str, Mapping[str, Any]]) -> None:
        """Add data from `drain()` (of a recorder with the same bucket width) into this recorder."""
        for index, bucket in data.items():
            self._bucket(int(index)).add_json(bucket)

    def buckets(self) -> dict[int, Bucket]:
        """The non-empty buckets by index, oldest first (bucket i starts at i * bucket_seconds)."""
        return {i: b for i, b in sorted(self._buckets.items()) if not b.is_empty()}
