"""The ELF check run before dlopen: a complete library passes, a damaged one is named."""

from __future__ import annotations

import struct
import sys
from pathlib import Path

import pytest

from serve.shared_library import SharedLibraryError, check_shared_library

pytestmark = pytest.mark.skipif(
    sys.platform != "linux" or sys.maxsize < 2**32, reason="64-bit Linux ELF only"
)

# Offsets of the 64-bit ELF header fields (after the 16-byte e_ident).
E_TYPE, E_MACHINE, E_SHOFF, E_SHNUM = 16, 18, 40, 60


@pytest.fixture
def library(tiny_artifact: Path) -> bytes:
    return (tiny_artifact / "model.so").read_bytes()


def write(tmp_path: Path, content: bytes | bytearray) -> Path:
    path = tmp_path / "model.so"
    path.write_bytes(bytes(content))
    return path


def patched(content: bytes, offset: int, fmt: str, value: int) -> bytearray:
    data = bytearray(content)
    struct.pack_into("<" + fmt, data, offset, value)
    return data


def test_a_complete_library_passes(library: bytes, tmp_path: Path) -> None:
    check_shared_library(write(tmp_path, library))


@pytest.mark.parametrize("fraction", [0.99, 0.66, 1 / 3, 0.05])
def test_a_truncated_library_is_refused(library: bytes, tmp_path: Path, fraction: float) -> None:
    path = write(tmp_path, library[: int(len(library) * fraction)])
    with pytest.raises(SharedLibraryError, match=r"model\.so.*past the end of the file"):
        check_shared_library(path)


def test_a_truncated_segment_is_refused_even_without_a_section_table(
    library: bytes, tmp_path: Path
) -> None:
    data = patched(library, E_SHNUM, "H", 0)  # no section table to give the truncation away
    path = write(tmp_path, data[: len(data) // 2])
    with pytest.raises(SharedLibraryError, match=r"segment \d+ .* past the end of the file"):
        check_shared_library(path)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "no ELF header"),
        (b"not a shared library", "no ELF header"),
        (b"\x7fELF\x02\x01\x01" + b"\0" * 20, "ELF header is truncated"),
    ],
)
def test_what_is_not_elf_is_refused(tmp_path: Path, content: bytes, message: str) -> None:
    with pytest.raises(SharedLibraryError, match=message):
        check_shared_library(write(tmp_path, content))


def test_another_class_byte_order_type_or_machine_is_refused(
    library: bytes, tmp_path: Path
) -> None:
    other_class = bytearray(library)
    other_class[4] = 1
    other_order = bytearray(library)
    other_order[5] = 2 if sys.byteorder == "little" else 1
    cases = {
        "ELF class 32-bit": other_class,
        "byte order": other_order,
        "not a shared object": patched(library, E_TYPE, "H", 2),  # an executable
        "ELF machine": patched(library, E_MACHINE, "H", 0xF00),
    }
    for message, content in cases.items():
        with pytest.raises(SharedLibraryError, match=message):
            check_shared_library(write(tmp_path, content))


def test_an_unreadable_path_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SharedLibraryError, match="cannot read"):
        check_shared_library(tmp_path / "missing.so")
