"""Compile a treelite model to a shared library with tl2cgen and a C toolchain.

tl2cgen 1.0 embeds treelite 4.1 and, handed a model from a newer treelite, prints
"The model you are loading originated from a newer Treelite version" straight to file
descriptor 2 from C++; its log callback `print`s "Parallel compilation enabled" to stdout
(where our commands write results), and its warning callback calls `warnings.warn`.
Those known messages are harmless for the models we build and are dropped; anything else
tl2cgen prints is passed on to stderr, and failures still raise.
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import re
import shutil
import sys
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from model.errors import CompileError

if TYPE_CHECKING:
    import treelite

__all__ = [
    "DEFAULT_OPT_LEVEL",
    "DEFAULT_TOOLCHAIN",
    "compile_library",
    "default_units",
    "toolchain_available",
]

DEFAULT_TOOLCHAIN = "gcc"
DEFAULT_OPT_LEVEL = 1
"""`-O1`: measured 3x faster to compile than tl2cgen's `-O3` on 200-500 tree models and no
slower to predict (docs/model.md has the figures); identical results at every level."""
_TOOLCHAIN_NAME = re.compile(r"^[A-Za-z0-9_.+-]+$")
_MAX_UNITS = 64
_TREES_PER_UNIT = 100
_HARMLESS = (
    "originated from a newer Treelite version",
    "Currently running Treelite version",
    "The model checkpoint was generated from Treelite version",
    "Parallel compilation enabled",
)


def toolchain_available(toolchain: str = DEFAULT_TOOLCHAIN) -> bool:
    """True when `toolchain` (e.g. `gcc`, `clang`) is on PATH."""
    return shutil.which(toolchain) is not None


def default_units(num_trees: int, *, cpus: int | None = None) -> int:
    """Translation units to split the trees into: one per CPU, more for very large models."""
    cpus = cpus or os.cpu_count() or 1
    return max(1, min(_MAX_UNITS, max(cpus, math.ceil(num_trees / _TREES_PER_UNIT)), num_trees))


def compile_library(
    model: treelite.Model,
    *,
    libpath: Path,
    toolchain: str = DEFAULT_TOOLCHAIN,
    units: int | None = None,
    nthread: int | None = None,
    opt_level: int = DEFAULT_OPT_LEVEL,
) -> Path:
    """Generate C code for `model` and compile it to `libpath` (`-O{opt_level} -fPIC -std=c99`).

    tl2cgen's recipe says `-O3`; `opt_level` is appended and wins (gcc and clang honour the
    last `-O`). No `-march=native`: the library runs on any CPU of the build machine's
    architecture. Raises `CompileError` when the toolchain is missing or the compiler fails.
    """
    if opt_level not in (0, 1, 2, 3):
        raise ValueError(f"opt_level must be 0, 1, 2 or 3, not {opt_level!r}")
    if not _TOOLCHAIN_NAME.match(toolchain):
        # tl2cgen runs the toolchain through a shell: accept plain program names only.
        raise CompileError(
            f"toolchain {toolchain!r} is not a plain program name such as gcc, gcc-12 or clang"
        )
    if not toolchain_available(toolchain):
        raise CompileError(
            f"C compiler {toolchain!r} not found on PATH; install it (Debian: apt-get install "
            "gcc) or build without compiling (`--no-compile`: the server then predicts with "
            "treelite GTIL, several times slower)"
        )
    import tl2cgen

    units = units or default_units(model.num_tree)
    libpath = Path(libpath)
    with tempfile.TemporaryDirectory(prefix="rtb-compile-") as tmp, _filtered_stderr():
        try:
            tl2cgen.generate_c_code(model, dirpath=tmp, params={"parallel_comp": units})
            built = tl2cgen.create_shared(
                toolchain,
                tmp,
                nthread=nthread or os.cpu_count() or 1,
                options=[f"-O{opt_level}"],
                long_build_time_warning=False,
            )
        except (tl2cgen.TL2cgenError, ValueError) as exc:  # ValueError: `cc --version` failed
            raise CompileError(f"{libpath}: compiling with {toolchain} failed: {exc}") from exc
        libpath.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(built), libpath)
    return libpath


@contextlib.contextmanager
def _filtered_stderr() -> Iterator[None]:
    """Drop tl2cgen's known harmless messages; pass everything else it prints on to stderr.

    Covers the three ways they arrive: C++ writing to fd 2, `print` from tl2cgen's log
    callback, and `warnings.warn` from its warning callback. fd 2 is redirected for the whole
    process while the compiler runs: build before starting threads that write to stderr.
    """
    sys.stderr.flush()
    sys.stdout.flush()
    printed = io.StringIO()
    try:
        saved = os.dup(2)
    except OSError:  # no fd 2 (a detached daemon): filter what Python sees only
        with warnings.catch_warnings(), contextlib.redirect_stdout(printed):
            for marker in _HARMLESS:
                warnings.filterwarnings("ignore", message=f".*{marker}")
            yield
        return
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            with warnings.catch_warnings(), contextlib.redirect_stdout(printed):
                for marker in _HARMLESS:
                    warnings.filterwarnings("ignore", message=f".*{marker}")
                yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            text = capture.read().decode("utf-8", errors="replace") + printed.getvalue()
            kept = [
                line
                for line in text.splitlines()
                if line.strip() and not any(marker in line for marker in _HARMLESS)
            ]
            if kept:
                sys.stderr.write("\n".join(kept) + "\n")
                sys.stderr.flush()
