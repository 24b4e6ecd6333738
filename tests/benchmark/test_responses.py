from __future__ import annotations

import pytest

from benchmark.responses import check_scores, server_time_us


@pytest.mark.parametrize(
    ("body", "content_type", "rows"),
    [
        (b"0.25\n", "text/csv", 1),
        (b"0.25\n0.75\n", "text/csv; charset=utf-8", 2),
        (b"1,0.9\n0,0.1\n", "text/csv", 2),  # selectable outputs: label and probability
        (b'{"predictions":[{"score":0.1},{"score":1.0}]}', "application/json", 2),
        (
            b'{"predictions":[{"predicted_label":1,"probabilities":[0.2,0.8]}]}',
            "application/json",
            1,
        ),
        (b"[0.5, 0.0]", "application/json", 2),
        (b'{"score":0.1}\n{"score":0.2}\n', "application/jsonlines", 2),
        (b"0.5", None, 1),
    ],
)
def test_valid_answers_pass(body: bytes, content_type: str | None, rows: int) -> None:
    assert check_scores(body, content_type=content_type, rows=rows) is None


@pytest.mark.parametrize(
    ("body", "content_type", "rows", "fault"),
    [
        (b"0.25\n", "text/csv", 2, "expected 2 predictions, got 1"),
        (b"1.5\n", "text/csv", 1, "outside [0, 1]"),
        (b"-0.1\n", "text/csv", 1, "outside [0, 1]"),
        (b"nan\n", "text/csv", 1, "outside [0, 1]"),
        (b"body", "text/csv", 1, "unreadable"),
        (b'{"predictions":[{"score":"x"}]}', "application/json", 1, "not a number"),
        (b'{"predictions":[{"score":true}]}', "application/json", 1, "not a number"),
        (b'{"predictions":[{}]}', "application/json", 1, "empty prediction"),
        (b'{"error":"bad"}', "application/json", 1, "unreadable"),
        (b"{", "application/json", 1, "unreadable"),
        (b"\xff\xfe", "text/csv", 1, "not UTF-8"),
        (b"0.5", "text/html", 1, "unexpected response content type"),
    ],
)
def test_bad_answers_are_described(body: bytes, content_type: str, rows: int, fault: str) -> None:
    message = check_scores(body, content_type=content_type, rows=rows)
    assert message is not None
    assert fault in message


def test_server_timing_is_read_in_microseconds() -> None:
    assert server_time_us("app;dur=0.25") == pytest.approx(250.0)
    assert server_time_us('db;dur=5, app;desc="x";dur=1.5', metric="app") == pytest.approx(1500.0)
    assert server_time_us("cache, app;dur=2") == pytest.approx(2000.0)  # first with a duration
    assert server_time_us("app;DUR=1") == pytest.approx(1000.0)


@pytest.mark.parametrize(
    "header", [None, "", "app", "app;dur=x", "app;dur=-1", "app;dur=inf", "db;dur=1"]
)
def test_missing_or_bad_server_timing_gives_none(header: str | None) -> None:
    assert server_time_us(header, metric="app") is None
