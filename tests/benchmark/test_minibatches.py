"""Batch Transform's MultiRecord split of a file into request bodies."""

from __future__ import annotations

import numpy as np
import pytest

from benchmark.minibatches import RecordTooLargeError, split_lines


def lines_file(count: int, *, seed: int = 3, trailing_newline: bool = True) -> bytes:
    rng = np.random.default_rng(seed)
    lines = [b"x" * int(n) for n in rng.integers(1, 40, size=count)]
    return b"\n".join(lines) + (b"\n" if trailing_newline else b"")


@pytest.mark.parametrize("limit", [40, 41, 100, 1000, 10**9])
@pytest.mark.parametrize("trailing_newline", [True, False])
def test_bodies_are_whole_lines_in_order_within_the_limit(
    limit: int, trailing_newline: bool
) -> None:
    data = lines_file(2_000, trailing_newline=trailing_newline)
    bodies = list(split_lines(data, max_payload_bytes=limit))
    assert b"".join(bodies) == data  # nothing lost, nothing reordered
    assert all(0 < len(body) <= limit for body in bodies)
    assert all(body.endswith(b"\n") for body in bodies[:-1])  # never a split record
    # Greedy: the next body's first record would not have fitted in this one.
    for body, following in zip(bodies, bodies[1:], strict=False):
        first = following.split(b"\n", 1)[0] + b"\n"
        assert len(body) + len(first) > limit


def test_a_record_over_the_limit_fails_like_the_job() -> None:
    with pytest.raises(RecordTooLargeError, match="41 bytes"):
        list(split_lines(b"a\n" + b"x" * 40 + b"\n", max_payload_bytes=40))


def test_empty_file_sends_nothing() -> None:
    assert list(split_lines(b"", max_payload_bytes=10)) == []
