"""How SageMaker Batch Transform cuts an input file into request bodies (mini-batches).

With `SplitType=Line` and `BatchStrategy=MultiRecord`, a record is one line, and each request
carries as many whole records as fit in `MaxPayloadInMB` (a MiB, 1,048,576 bytes, as the
container's own /execution-parameters counts): a record is never split across two requests,
and a record larger than the limit fails the job. `SingleRecord` sends one record a request.
The responses are joined in order (`AssembleWith=Line`) into the output file.
"""

from __future__ import annotations

from collections.abc import Iterator

MIB = 1024 * 1024


class RecordTooLargeError(ValueError):
    """One record is larger than MaxPayloadInMB: Batch Transform fails the job."""


def split_lines(data: bytes, *, max_payload_bytes: int) -> Iterator[bytes]:
    """The bodies of a MultiRecord transform of `data`: whole lines (each with its `\\n`,
    the file's last line as it is), greedily packed, each body at most `max_payload_bytes`."""
    if max_payload_bytes < 1:
        raise ValueError(f"max_payload_bytes must be positive, got {max_payload_bytes}")
    start = 0  # first byte of the body being packed
    end = 0  # end of the last whole record in it
    size = len(data)
    while end < size:
        newline = data.find(b"\n", end)
        record_end = size if newline < 0 else newline + 1
        if record_end - start > max_payload_bytes:
            if end == start:
                raise RecordTooLargeError(
                    f"the record at byte {start} holds {record_end - start} bytes, more than "
                    f"the {max_payload_bytes}-byte MaxPayloadInMB"
                )
            yield data[start:end]
            start = end
            continue
        end = record_end
    if end > start:
        yield data[start:end]
