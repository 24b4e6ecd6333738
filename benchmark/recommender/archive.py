"""The sample payload archive: one gzip tar of request bodies, as Inference Recommender wants it.

Inference Recommender unpacks `SamplePayloadUrl` and sends its files as `/invocations` bodies,
so each member is one request in the served content type, drawn from the same seeded RTB row
generator as the Locust traffic (`benchmark.payloads`). The archive is byte-for-byte
reproducible: the same options give the same bytes (fixed member times, gzip mtime 0).
"""

from __future__ import annotations

import gzip
import io
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from benchmark.payloads import CONTENT_TYPES, encode_rows, load_reference, make_rows
from deploy import validation
from deploy.errors import InvalidInputError

EXTENSIONS: Final = {
    "text/csv": "csv",
    "application/json": "json",
    "application/jsonlines": "jsonl",
    "application/x-npy": "npy",
}
MAX_FILES: Final = 1000
MAX_ROWS_PER_FILE: Final = 10_000
# SageMaker real-time invocations accept at most 6 MiB per body.
MAX_BODY_BYTES: Final = 6 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class SamplePayload:
    """The archive bytes and what is in them."""

    data: bytes
    content_type: str
    members: tuple[str, ...]
    rows_per_file: int


def build_archive(
    *,
    content_type: str,
    files: int,
    rows_per_file: int,
    seed: int,
    reference: str | Path | None = None,
) -> SamplePayload:
    """Encode `files` request bodies of `rows_per_file` rows each into a gzip tar.

    Rows are synthetic, or drawn with replacement from a `reference.csv`-like file (as the Locust
    traffic's `--rtb-reference` does).
    """
    if content_type not in CONTENT_TYPES:
        raise InvalidInputError(
            f"--content-type: {content_type!r} is not served; "
            f"choose one of {', '.join(CONTENT_TYPES)}"
        )
    if not 1 <= files <= MAX_FILES:
        raise InvalidInputError(f"--payload-files: must be 1-{MAX_FILES}, got {files}")
    if not 1 <= rows_per_file <= MAX_ROWS_PER_FILE:
        raise InvalidInputError(
            f"--payload-rows: must be 1-{MAX_ROWS_PER_FILE}, got {rows_per_file}"
        )
    reference_rows = None
    if reference is not None:
        try:
            reference_rows = load_reference(reference)
        except (OSError, ValueError) as exc:
            raise InvalidInputError(f"--payload-reference: {exc}") from None
    rows = make_rows(files * rows_per_file, seed=seed, reference=reference_rows)
    extension = EXTENSIONS.get(content_type, "bin")
    width = max(3, len(str(files - 1)))
    members: list[str] = []
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for index in range(files):
            body = encode_rows(
                rows[index * rows_per_file : (index + 1) * rows_per_file], content_type
            )
            if len(body) > MAX_BODY_BYTES:
                raise InvalidInputError(
                    f"--payload-rows: one request body is {len(body)} bytes, above SageMaker's "
                    f"{MAX_BODY_BYTES}-byte limit"
                )
            name = f"request-{index:0{width}d}.{extension}"
            info = tarfile.TarInfo(name)
            info.size = len(body)
            info.mode = 0o644
            info.mtime = 0
            tar.addfile(info, io.BytesIO(body))
            members.append(name)
    data = gzip.compress(raw.getvalue(), mtime=0)
    return SamplePayload(
        data=data, content_type=content_type, members=tuple(members), rows_per_file=rows_per_file
    )


def upload_request(payload: SamplePayload, *, uri: str) -> dict[str, Any]:
    """The `s3.put_object` parameters that store the archive at `uri` (s3://BUCKET/KEY)."""
    where = validation.check_s3_uri(uri, what="--payload-uri", object_key=True)
    return {
        "Bucket": where.bucket,
        "Key": where.key,
        "Body": payload.data,
        "ContentType": "application/gzip",
    }
