"""A structural check of an ELF shared library before `dlopen`, which trusts its file blindly.

`ctypes.CDLL` maps the file's segments as its headers describe them; a truncated library whose
headers promise bytes past the end of the file faults (SIGBUS) the first time the loader
touches them, killing the process with nothing logged. `check_shared_library(path)` reads the
ELF header, the program header table and the section header table, and raises
`SharedLibraryError` (naming the file and the problem) unless the file is a shared object for
this interpreter's class, byte order and machine whose every segment and table lies inside it.
It proves nothing about the code; the manifest's sha256 does that.
"""

from __future__ import annotations

import struct
import sys
from pathlib import Path

_MAGIC = b"\x7fELF"
_ET_DYN = 3
_PT_LOAD = 1
_CLASS_64 = 2
_CLASSES = {1: "32-bit", 2: "64-bit"}
_ORDERS = {1: "little", 2: "big"}
_IDENT_BYTES = 16


class SharedLibraryError(Exception):
    """A file that dlopen must not be given."""


def check_shared_library(path: Path) -> None:
    """Raise `SharedLibraryError` unless `path` is a complete ELF shared object that this
    interpreter could load."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SharedLibraryError(f"{path}: cannot read the library: {exc}") from exc
    problem = _problem(data, expected_machine=_interpreter_machine())
    if problem is not None:
        raise SharedLibraryError(f"{path}: not a loadable shared library: {problem}")


def _problem(data: bytes, *, expected_machine: int | None) -> str | None:
    size = len(data)
    if size < _IDENT_BYTES or data[:4] != _MAGIC:
        return "no ELF header"
    elf_class, order = data[4], data[5]
    own_class = _CLASS_64 if sys.maxsize > 2**32 else 1
    if elf_class != own_class:
        found = _CLASSES.get(elf_class, elf_class)
        return f"ELF class {found}, this interpreter is {_CLASSES[own_class]}"
    if _ORDERS.get(order) != sys.byteorder:
        return f"byte order {_ORDERS.get(order, order)}, this machine is {sys.byteorder}-endian"
    endian = "<" if sys.byteorder == "little" else ">"
    wide = elf_class == _CLASS_64
    header = struct.Struct(endian + ("HHIQQQIHHHHHH" if wide else "HHIIIIIHHHHHH"))
    if size < _IDENT_BYTES + header.size:
        return f"the ELF header is truncated ({size} bytes)"
    (e_type, machine, _version, _entry, phoff, shoff, _flags, _ehsize, phentsize, phnum,
     shentsize, shnum, _shstrndx) = header.unpack_from(data, _IDENT_BYTES)  # fmt: skip
    if e_type != _ET_DYN:
        return f"ELF type {e_type}, not a shared object ({_ET_DYN})"
    if expected_machine is not None and machine != expected_machine:
        return f"built for ELF machine {machine}, this interpreter runs on {expected_machine}"
    program = struct.Struct(endian + ("IIQQQQQQ" if wide else "IIIIIIII"))
    if phnum == 0 or phentsize < program.size:
        return f"no usable program header table ({phnum} entries of {phentsize} bytes)"
    if phoff + phnum * phentsize > size:
        return f"the program header table ends past the end of the file ({size} bytes)"
    if shnum and (shentsize == 0 or shoff + shnum * shentsize > size):
        return f"the section header table ends past the end of the file ({size} bytes)"
    loads = 0
    for index in range(phnum):
        fields = program.unpack_from(data, phoff + index * phentsize)
        if wide:
            p_type, _p_flags, offset, _vaddr, _paddr, filesz = fields[:6]
        else:
            p_type, offset, _vaddr, _paddr, filesz = fields[:5]
        if offset + filesz > size:
            return (
                f"segment {index} (type {p_type}) spans bytes {offset}-{offset + filesz}, "
                f"past the end of the file ({size} bytes): truncated?"
            )
        loads += p_type == _PT_LOAD
    if loads == 0:
        return "no loadable segment"
    return None


def _interpreter_machine() -> int | None:
    """The ELF machine of the running interpreter's own executable (None if unreadable)."""
    try:
        with open("/proc/self/exe", "rb") as handle:
            head = handle.read(20)
    except OSError:
        return None
    if len(head) < 20 or head[:4] != _MAGIC:
        return None
    return int.from_bytes(head[18:20], sys.byteorder)
