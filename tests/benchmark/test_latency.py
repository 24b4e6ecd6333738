from __future__ import annotations

import json

import numpy as np
import pytest

from benchmark.latency import (
    HIGHEST_US,
    LatencyRecorder,
    Percentiles,
    decode,
    encode,
    merged,
    new_histogram,
    record,
    values_at_percentiles,
)


def test_percentiles_keep_microseconds() -> None:
    histogram = new_histogram()
    for value in range(1, 1001):  # 1..1000 µs
        record(histogram, value + 0.4)
    summary = Percentiles.of(histogram)
    assert summary is not None
    assert summary.count == 1000
    assert summary.p50 == pytest.approx(500, abs=1)
    assert summary.p99 == pytest.approx(990, abs=1)
    assert summary.p999 == pytest.approx(999, abs=1)
    assert summary.max == pytest.approx(1000, abs=1)
    assert summary.min == 1
    assert summary.p50 <= summary.p90 <= summary.p99 <= summary.p999 <= summary.max


def test_empty_histogram_has_no_percentiles() -> None:
    assert Percentiles.of(new_histogram()) is None


def test_values_out_of_range_are_clamped_not_lost() -> None:
    histogram = new_histogram()
    record(histogram, 0.0)
    record(histogram, -5.0)
    record(histogram, 1e12)
    assert histogram.get_total_count() == 3
    assert histogram.get_max_value() >= HIGHEST_US


def test_coordinated_omission_correction_adds_the_missed_requests() -> None:
    plain, corrected = new_histogram(), new_histogram()
    record(plain, 10_000)
    record(corrected, 10_000, expected_interval_us=1_000)
    assert plain.get_total_count() == 1
    assert corrected.get_total_count() == 10  # 10 ms stall at one request per ms


def test_encode_decode_and_merge_round_trip() -> None:
    a, b = new_histogram(), new_histogram()
    record(a, 100)
    record(b, 300)
    record(b, 500)
    total = merged([decode(encode(a)), decode(encode(b)), new_histogram()])
    assert total.get_total_count() == 3
    assert total.get_max_value() == pytest.approx(500, rel=1e-3)


def test_recorder_buckets_by_time_and_merges_drained_data_across_processes() -> None:
    worker_a, worker_b = LatencyRecorder(), LatencyRecorder()
    master = LatencyRecorder()
    worker_a.record_success(timestamp=100.2, latency_us=250, server_us=40)
    worker_a.record_success(timestamp=101.9, latency_us=260)
    worker_b.record_success(timestamp=100.7, latency_us=900, server_us=50)
    worker_b.record_failure(timestamp=100.8)
    for worker in (worker_a, worker_b):
        master.merge(json.loads(json.dumps(worker.drain())))  # what travels is plain JSON
    assert worker_a.drain() == {}  # drained data is handed out once
    buckets = master.buckets()
    assert list(buckets) == [100, 101]
    assert buckets[100].latency.get_total_count() == 2
    assert buckets[100].server.get_total_count() == 2
    assert buckets[100].failures == 1
    assert buckets[101].latency.get_total_count() == 1
    assert buckets[101].server.get_total_count() == 0
    assert [b.requests for b in buckets.values()] == [2, 1]


def test_corrected_latency_does_not_inflate_the_request_count() -> None:
    recorder = LatencyRecorder()
    recorder.record_success(timestamp=5.0, latency_us=10_000, expected_interval_us=1_000)
    bucket = recorder.buckets()[5]
    assert bucket.requests == 1
    assert bucket.latency.get_total_count() == 10


def test_bucket_width_must_be_positive() -> None:
    with pytest.raises(ValueError):
        LatencyRecorder(bucket_seconds=0)
    assert LatencyRecorder(bucket_seconds=0.5).bucket_of(10.6) == 21


def test_fast_percentiles_match_hdrh_exactly() -> None:
    rng = np.random.default_rng(3)
    histogram = new_histogram()
    for value in rng.lognormal(mean=6.0, sigma=1.5, size=20_000):
        record(histogram, value + 5_000)  # above 2,048 µs, values share buckets
    levels = [0.0, 1.0, 50.0, 90.0, 99.0, 99.9, 99.99, 100.0]
    expected = [int(histogram.get_value_at_percentile(p)) for p in levels]
    assert values_at_percentiles(histogram, levels) == expected
