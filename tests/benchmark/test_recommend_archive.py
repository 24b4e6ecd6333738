"""The sample payload archive and the local capacity file `benchmark recommend` reads."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from benchmark.recommender import archive
from benchmark.recommender.archive import build_archive, upload_request
from benchmark.recommender.estimate import load_estimate
from deploy.errors import InvalidInputError


def test_archive_is_reproducible_and_seeded() -> None:
    first = build_archive(content_type="text/csv", files=5, rows_per_file=2, seed=3)
    assert (
        first.data == build_archive(content_type="text/csv", files=5, rows_per_file=2, seed=3).data
    )
    assert (
        first.data != build_archive(content_type="text/csv", files=5, rows_per_file=2, seed=4).data
    )
    assert first.members == tuple(f"request-{i:03d}.csv" for i in range(5))


def test_npy_archive_members_load_as_float32_rows() -> None:
    payload = build_archive(content_type="application/x-npy", files=2, rows_per_file=4, seed=0)
    with tarfile.open(fileobj=io.BytesIO(payload.data), mode="r:gz") as tar:
        member = tar.extractfile("request-000.npy")
        assert member is not None
        array = np.load(io.BytesIO(member.read()), allow_pickle=False)
    assert array.shape == (4, 7) and array.dtype == np.float32


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"content_type": "text/plain", "files": 1, "rows_per_file": 1}, "not served"),
        ({"content_type": "text/csv", "files": 0, "rows_per_file": 1}, "--payload-files"),
        ({"content_type": "text/csv", "files": 1, "rows_per_file": 0}, "--payload-rows"),
    ],
)
def test_archive_rejects_bad_options(options: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        build_archive(seed=0, **options)


def test_a_request_body_above_the_invocation_limit_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The row cap keeps real bodies far below 6 MiB; lower the limit to see the check bite.
    assert archive.MAX_BODY_BYTES == 6 * 1024 * 1024
    monkeypatch.setattr(archive, "MAX_BODY_BYTES", 100)
    build_archive(content_type="text/csv", files=1, rows_per_file=1, seed=0)
    with pytest.raises(InvalidInputError, match="above SageMaker's 100-byte limit"):
        build_archive(content_type="text/csv", files=1, rows_per_file=50, seed=0)


def test_archive_rows_can_come_from_a_reference_file(tmp_path: Path) -> None:
    reference = tmp_path / "reference.csv"
    reference.write_text(
        "dow,hour,IndexAdvertiserID,IndexDomain,IndexRegionID,IndexCityID,device_type_id,probability\n"
        "2,0,0,7,3,20,2,0.00084757\n"
        "5,13,1,,9,101,1,0.5\n"
    )
    payload = build_archive(
        content_type="text/csv", files=6, rows_per_file=2, seed=1, reference=reference
    )
    with tarfile.open(fileobj=io.BytesIO(payload.data), mode="r:gz") as tar:
        lines = {
            line
            for name in tar.getnames()
            for line in tar.extractfile(name).read().decode().splitlines()  # type: ignore[union-attr]
        }
    assert lines == {"2,0,0,7,3,20,2", "5,13,1,,9,101,1"}


def test_upload_needs_an_object_key() -> None:
    payload = build_archive(content_type="text/csv", files=1, rows_per_file=1, seed=0)
    with pytest.raises(InvalidInputError, match="must name an object"):
        upload_request(payload, uri="s3://rtb-bench/prefix/")
    assert upload_request(payload, uri="s3://rtb-bench/a/p.tar.gz")["Key"] == "a/p.tar.gz"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("not json", "not JSON"),
        ("[1, 2]", "expected a JSON object"),
        (
            '{"workers": 2, "p99_bound_ms": 5}',
            "'max_invocations_per_minute_per_worker' must be a number",
        ),
        (
            '{"workers": 0, "p99_bound_ms": 5, "max_invocations_per_minute_per_worker": 1}',
            "'workers'",
        ),
        (
            '{"workers": true, "p99_bound_ms": 5, "max_invocations_per_minute_per_worker": 1}',
            "'workers'",
        ),
        (
            '{"workers": 2, "p99_bound_ms": -5, "max_invocations_per_minute_per_worker": 1}',
            "must be positive",
        ),
        (
            '{"workers": 1, "p99_bound_ms": 5, "max_invocations_per_minute_per_worker": 0,'
            ' "within_bound": false}',
            "no load step within its p99 bound",
        ),
    ],
)
def test_capacity_file_errors_say_what_is_wrong(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "capacity.json"
    path.write_text(content)
    with pytest.raises(InvalidInputError, match=message):
        load_estimate(path)
