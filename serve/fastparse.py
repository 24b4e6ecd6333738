"""The bulk request parsers: a C library (fastparse.c), one call per request, and fast .npy.

`parse_csv`, `parse_json` and `parse_jsonlines` return the float32 matrix the decoders in
`serve.codecs` would return, or None; on None the decoder runs its own (exact, explaining)
Python code. The C parsers accept a strict subset of the bodies the decoders accept: plain
numbers read as correctly rounded doubles then rounded to float32, an empty CSV field or JSON
`null` as NaN. Anything else (a wrong field count, whitespace in a CSV field, `nan`, a value
outside float32, an unusual JSON shape, more rows than the limit) is None, so every error
message still comes from the decoder. Row limits are applied before the call: the matrix is
never larger than `max_rows` rows. `parse_npy` reads the header numpy writes without
`ast.literal_eval`, and float32 or float64 arrays without a float64 copy.

The library is found, in this order: `_fastparse.so` next to this file (built with the image,
or by `make fastparse`), if it was built from this very `fastparse.c` (its sha256 is compiled in);
else compiled with `cc` into a private temporary directory at import; else there is none and
the decoders run alone, with a WARNING. `python -m serve.fastparse OUTPUT` builds it.
"""

from __future__ import annotations

import ctypes
import hashlib
import logging
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

import numpy as np

from serve.features import FLOAT32_MAX, FeatureMatrix
from serve.shared_library import SharedLibraryError, check_shared_library

logger = logging.getLogger(__name__)


SOURCE: Final = Path(__file__).with_name("fastparse.c")
PREBUILT: Final = Path(__file__).with_name("_fastparse.so")
CFLAGS: Final = ("-O2", "-fPIC", "-shared", "-std=c11", "-ffp-contract=off", "-fno-fast-math")
"""Exact IEEE arithmetic: no contraction into FMA, no fast-math."""

_FALLBACK: Final = -1


def source_digest() -> str:
    """The sha256 of fastparse.c, compiled into the library so a stale build is never used."""
    return hashlib.sha256(SOURCE.read_bytes()).hexdigest()


def build(output: Path, *, compiler: str = "cc") -> None:
    """Compile fastparse.c into the shared library `output` (raises CalledProcessError)."""
    define = f'-DRTB_FASTPARSE_DIGEST="{source_digest()}"'
    command = [compiler, *CFLAGS, define, "-o", str(output), str(SOURCE), "-lm"]
    subprocess.run(command, check=True, capture_output=True, timeout=120)


@dataclass(frozen=True, slots=True)
class FastParser:
    """The loaded library's three entry points."""

    library: ctypes.CDLL
    path: Path
    """Where it was loaded from (a start-up build's file is removed once loaded)."""

    def __post_init__(self) -> None:
        for name in (
            "rtb_parse_csv",
            "rtb_parse_json",
            "rtb_parse_jsonlines",
            "rtb_parse_libsvm",
            "rtb_parse_recordio",
        ):
            function = getattr(self.library, name)
            function.restype = ctypes.c_long
            function.argtypes = (
                ctypes.c_char_p,
                ctypes.c_size_t,
                ctypes.c_long,
                ctypes.c_long,
                ctypes.c_void_p,
            )

    def parse(
        self, name: str, body: bytes, *, num_features: int, capacity: int, row_bytes: int = 0
    ) -> FeatureMatrix | None:
        """Call parser `name` into a fresh (capacity, num_features) matrix; None to fall back.
        `row_bytes`: the fewest bytes a row takes in that format (default num_features)."""
        if capacity <= 0 or num_features <= 0 or type(body) is not bytes:
            return None  # (c_char_p borrows the buffer of a bytes object only)
        # Every row holds num_features values and their separators: at least num_features - 1
        # bytes and a line end (CSV), more in JSON; so the matrix is never larger than the body
        # allows, whatever the feature count.
        capacity = min(capacity, len(body) // (row_bytes or num_features) + 1)
        out = np.empty((capacity, num_features), dtype=np.float32)
        rows: int = getattr(self.library, name)(
            body, len(body), num_features, capacity, out.ctypes.data
        )
        if rows == _FALLBACK:
            return None
        return out if rows == capacity else out[:rows]


def load() -> FastParser | None:
    """The library: the prebuilt one if current, else compiled now if a compiler exists.
    Never raises: without it, the decoders parse every body in Python (with a WARNING)."""
    try:
        digest = source_digest()
    except OSError as exc:
        logger.warning("no fast bulk parser (%s): bulk bodies are parsed in Python", exc)
        return None
    if PREBUILT.is_file():
        parser = _open(PREBUILT, digest)
        if parser is not None:
            return parser
        logger.info("%s was not built from %s; compiling it at start-up", PREBUILT, SOURCE)
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        logger.warning(
            "no fast bulk parser (no %s and no C compiler): bulk bodies are parsed in Python",
            PREBUILT.name,
        )
        return None
    try:
        with tempfile.TemporaryDirectory(prefix="rtb-fastparse-") as private:  # 0700, ours
            library = Path(private) / PREBUILT.name
            build(library, compiler=compiler)
            return _open(library, digest)  # dlopen keeps the mapping once the file is gone
    except (subprocess.SubprocessError, OSError) as exc:
        detail = getattr(exc, "stderr", b"") or b""
        logger.warning(
            "cannot compile %s (%s %s): bulk bodies are parsed in Python",
            SOURCE,
            exc,
            detail.decode(errors="replace")[-500:],
        )
        return None


def _open(path: Path, digest: str) -> FastParser | None:
    try:
        check_shared_library(path)
        library = ctypes.CDLL(str(path))
        library.rtb_fastparse_digest.restype = ctypes.c_char_p
        built_from = library.rtb_fastparse_digest()
        if built_from != digest.encode() or not library.rtb_fastparse_init():
            return None
        return FastParser(library, path)
    except (SharedLibraryError, OSError, AttributeError) as exc:
        logger.warning("cannot load %s: %s", path, exc)
        return None


# Not when run as `python -m serve.fastparse` (the build command).
PARSER: FastParser | None = load() if __name__ != "__main__" else None


def _parse(
    name: str, body: bytes, *, rows: int, num_features: int, max_rows: int
) -> FeatureMatrix | None:
    """Parser `name` with room for `rows` (at least the body's rows) but no more than
    `max_rows`; None without the library."""
    parser = PARSER
    if parser is None:
        return None
    matrix: FeatureMatrix | None = parser.parse(
        name, body, num_features=num_features, capacity=min(rows, max_rows)
    )
    return matrix


def parse_csv(body: bytes, *, num_features: int, max_rows: int) -> FeatureMatrix | None:
    rows = body.count(b"\n") + 1  # at most one more than the rows (a final line end)
    if rows > max_rows + 1:
        return None  # the decoder refuses it before parsing
    return _parse("rtb_parse_csv", body, rows=rows, num_features=num_features, max_rows=max_rows)


def parse_json(body: bytes, *, num_features: int, max_rows: int) -> FeatureMatrix | None:
    rows = max(1, body.count(b"["))  # every row opens a list
    return _parse("rtb_parse_json", body, rows=rows, num_features=num_features, max_rows=max_rows)


def parse_jsonlines(body: bytes, *, num_features: int, max_rows: int) -> FeatureMatrix | None:
    rows = body.count(b"\n") + 1
    return _parse(
        "rtb_parse_jsonlines", body, rows=rows, num_features=num_features, max_rows=max_rows
    )


def parse_libsvm(body: bytes, *, num_features: int, max_rows: int) -> FeatureMatrix | None:
    """`serve.libsvm.decode_libsvm`'s matrix (indices as written) for plain `label index:value`
    lines, or None; a body of more lines than `max_rows` is None before any parsing."""
    parser = PARSER
    if parser is None:
        return None
    rows = body.count(b"\n") + 1
    if rows > max_rows:
        rows = body.strip().count(b"\n") + 1  # the decoder's own count (outer lines stripped)
        if rows > max_rows:
            return None  # the decoder refuses it before parsing
    matrix: FeatureMatrix | None = parser.parse(
        "rtb_parse_libsvm", body, num_features=num_features, capacity=rows, row_bytes=1
    )
    return matrix


_RECORDIO_FRAME_BYTES: Final = 8  # the header; no record is shorter


def parse_recordio(body: bytes, *, num_features: int, max_rows: int) -> FeatureMatrix | None:
    """`serve.recordio.decode_recordio`'s matrix for whole frames each holding one Record of
    exactly `features["values"]` (a float32, float64 or int32 tensor, dense or sparse with
    increasing keys), or None. The frames are counted before any message is read."""
    parser = PARSER
    if parser is None:
        return None
    matrix: FeatureMatrix | None = parser.parse(
        "rtb_parse_recordio",
        body,
        num_features=num_features,
        capacity=max_rows,
        row_bytes=_RECORDIO_FRAME_BYTES,
    )
    return matrix


# The header numpy.save writes for a 1-D or 2-D array of a plain numeric type.
_NPY_HEADER: Final = re.compile(
    rb"\{'descr': '(?P<descr>[<>]f[48])', 'fortran_order': (?P<fortran>False|True), "
    rb"'shape': \((?P<rows>[0-9]{1,18}),(?: (?P<columns>[0-9]{1,18}))?\), \} *\n"
)
_NPY_MAGIC: Final = b"\x93NUMPY\x01\x00"
_NPY_HEADER_START: Final = 10


def parse_npy(body: bytes, *, num_features: int, max_rows: int) -> FeatureMatrix | None:
    """A version 1.0 .npy of `num_features` columns whose header numpy wrote, as float32;
    None for anything else (the decoder then reads the header with numpy and explains)."""
    if not body.startswith(_NPY_MAGIC) or len(body) < _NPY_HEADER_START:
        return None
    header_length = int.from_bytes(body[8:10], "little")
    offset = _NPY_HEADER_START + header_length
    found = _NPY_HEADER.fullmatch(body, _NPY_HEADER_START, offset)
    if found is None:
        return None
    if found["columns"] is None:
        rows, columns = 1, int(found["rows"])
    else:
        rows, columns = int(found["rows"]), int(found["columns"])
    if not 0 < rows <= max_rows or columns != num_features:
        return None
    dtype = np.dtype(found["descr"].decode())
    if len(body) - offset != rows * columns * dtype.itemsize:
        return None
    flat = np.frombuffer(body, dtype=dtype, count=rows * columns, offset=offset)
    order: Literal["C", "F"] = "F" if found["fortran"] == b"True" else "C"
    matrix = flat.reshape((rows, columns), order=order)
    if np.isinf(matrix).any() or (dtype.itemsize == 8 and (np.abs(matrix) > FLOAT32_MAX).any()):
        return None  # the decoder names the value
    return np.array(matrix, dtype=np.float32, order="C")  # one rounding, like the decoder


def main(argv: list[str] | None = None) -> int:
    """`python -m serve.fastparse OUTPUT`: build the library (the image, `make fastparse`)."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        sys.stderr.write("usage: python -m serve.fastparse OUTPUT.so\n")
        return 2
    build(Path(args[0]), compiler=shutil.which("cc") or "gcc")
    return 0


if __name__ == "__main__":
    sys.exit(main())
