"""`model.tar.gz` in and out: checked extraction of untrusted archives, deterministic packaging.

Extraction never trusts the archive: every member is checked before anything is written
(no absolute paths, no `..`, no links, no devices or fifos, bounded sizes and counts), and only
regular files and directories are created, inside a directory the caller owns. This does not
depend on `tarfile`'s `filter=` argument, which some Python 3.11 builds lack.

Packaging writes members at the top level in a fixed order with fixed metadata (owner 0,
mode 0644, mtime 0, gzip header without a timestamp), so the same files give the same bytes.
"""

from __future__ import annotations

import gzip
import os
import shutil
import tarfile
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

from model.atomic_write import atomic_write
from model.errors import UnsafeArchiveError, UnsupportedFormatError

__all__ = [
    "MAX_MEMBERS",
    "MAX_TOTAL_BYTES",
    "extract_archive",
    "is_tar_archive",
    "write_archive",
]

MAX_MEMBERS = 1_000
MAX_TOTAL_BYTES = 4 << 30  # 4 GiB: far above any XGBoost model SageMaker trains
_COPY_CHUNK = 1 << 20


def is_tar_archive(path: Path | str) -> bool:
    """True for a (possibly gzip-, bz2- or xz-compressed) tar file."""
    path = Path(path)
    if not path.is_file():
        return False
    try:
        return tarfile.is_tarfile(path)
    except OSError:
        return False


def extract_archive(
    archive: Path | str,
    target: Path | str,
    *,
    max_members: int = MAX_MEMBERS,
    max_total_bytes: int = MAX_TOTAL_BYTES,
) -> list[Path]:
    """Extract the regular files of `archive` into the empty directory `target`.

    Raises `UnsafeArchiveError` (naming the archive and the member) before writing anything
    when a member is absolute, climbs out with `..`, is a link, device or fifo, or when the
    archive has more than `max_members` members or `max_total_bytes` of content. Returns the
    extracted files.
    """
    archive = Path(archive)
    target = Path(target)
    target.mkdir(parents=True, exist_ok=True)
    if any(target.iterdir()):
        raise UnsafeArchiveError(f"{target}: extraction target must be an empty directory")
    try:
        with tarfile.open(archive, mode="r:*") as tar:
            members = _checked_members(
                archive, tar, max_members=max_members, max_total_bytes=max_total_bytes
            )
            written: list[Path] = []
            root = target.resolve()
            for member, relative in members:
                destination = root.joinpath(*relative.parts)
                if member.isdir():
                    destination.mkdir(parents=True, exist_ok=True)
                    continue
                destination.parent.mkdir(parents=True, exist_ok=True)
                source = tar.extractfile(member)
                if source is None:  # pragma: no cover - regular files always have data
                    raise UnsafeArchiveError(f"{archive}: member {member.name!r} has no data")
                fd = os.open(destination, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
                with source, os.fdopen(fd, "wb") as sink:
                    shutil.copyfileobj(source, sink, _COPY_CHUNK)
                written.append(destination)
    except (tarfile.TarError, EOFError, OSError) as exc:
        if isinstance(exc, FileNotFoundError) and not archive.exists():
            raise UnsupportedFormatError(f"{archive}: no such file") from None
        raise UnsupportedFormatError(
            f"{archive}: not a readable tar archive ({type(exc).__name__}: {exc})"
        ) from exc
    return written


def _checked_members(
    archive: Path,
    tar: tarfile.TarFile,
    *,
    max_members: int,
    max_total_bytes: int,
) -> list[tuple[tarfile.TarInfo, PurePosixPath]]:
    checked: list[tuple[tarfile.TarInfo, PurePosixPath]] = []
    seen: set[PurePosixPath] = set()
    total = 0
    for count, member in enumerate(tar, start=1):
        if count > max_members:
            raise UnsafeArchiveError(
                f"{archive}: more than {max_members} members; not a model archive"
            )
        name = member.name
        if member.issym() or member.islnk():
            raise UnsafeArchiveError(
                f"{archive}: member {name!r} is a link (to {member.linkname!r}); "
                "model archives hold regular files only"
            )
        if not (member.isfile() or member.isdir()):
            raise UnsafeArchiveError(
                f"{archive}: member {name!r} is a device, fifo or other special file; "
                "model archives hold regular files only"
            )
        relative = _safe_relative(archive, name)
        if relative is None:
            continue  # the archive root itself ("." or "./")
        if member.isfile():
            if relative in seen:
                raise UnsafeArchiveError(f"{archive}: member {name!r} appears twice")
            seen.add(relative)
            if member.size < 0:
                raise UnsafeArchiveError(f"{archive}: member {name!r} has a negative size")
            total += member.size
            if total > max_total_bytes:
                raise UnsafeArchiveError(
                    f"{archive}: members hold more than {max_total_bytes} bytes; "
                    "not a model archive"
                )
        checked.append((member, relative))
    return checked


def _safe_relative(archive: Path, name: str) -> PurePosixPath | None:
    if not name or "\x00" in name or "\\" in name:
        raise UnsafeArchiveError(f"{archive}: member name {name!r} is not a plain relative path")
    path = PurePosixPath(name)
    if path.is_absolute():
        raise UnsafeArchiveError(
            f"{archive}: member {name!r} has an absolute path; refusing to extract it"
        )
    if ".." in path.parts:
        raise UnsafeArchiveError(
            f"{archive}: member {name!r} climbs out of the target with `..`; refusing to extract it"
        )
    parts = [part for part in path.parts if part not in ("", ".")]
    return PurePosixPath(*parts) if parts else None


def write_archive(source_dir: Path | str, names: Sequence[str], *, output: Path | str) -> Path:
    """Write `names` (files in `source_dir`) to the gzip tar `output`, at its top level.

    Members keep the order of `names`; metadata is fixed, so identical files give an identical
    archive. The archive is written next to `output` and renamed into place.
    """
    source_dir = Path(source_dir)
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    with (
        atomic_write(output) as raw,
        gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as zipped,
        tarfile.open(fileobj=zipped, mode="w", format=tarfile.USTAR_FORMAT) as tar,
    ):
        for name in names:
            path = source_dir / name
            info = tarfile.TarInfo(name)
            info.size = path.stat().st_size
            info.mode = 0o644
            info.mtime = 0
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            with open(path, "rb") as handle:
                tar.addfile(info, handle)
    return output
