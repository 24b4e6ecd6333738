"""Untrusted tar archives: nothing outside the target is ever written; odd members are refused."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from model.archive import extract_archive, write_archive
from model.build import build_artifact
from model.errors import UnsafeArchiveError, UnsupportedFormatError


def _tarball(path: Path, members: list[tuple[tarfile.TarInfo, bytes | None]]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for info, data in members:
            if data is not None:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            else:
                tar.addfile(info)
    return path


def _file(name: str, data: bytes = b"x") -> tuple[tarfile.TarInfo, bytes]:
    return tarfile.TarInfo(name), data


def _special(name: str, kind: bytes, link: str = "") -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = link
    return info, None


def test_dot_dot_member_is_refused_and_nothing_is_written_outside(tmp_path: Path) -> None:
    archive = _tarball(
        tmp_path / "model.tar.gz",
        [_file("xgboost-model", b"first"), _file("../escaped", b"pwned")],
    )
    target = tmp_path / "deep" / "target"
    with pytest.raises(UnsafeArchiveError, match=r"'\.\./escaped' climbs out"):
        extract_archive(archive, target)
    assert not (tmp_path / "deep" / "escaped").exists()
    assert not (target / "xgboost-model").exists(), "members are checked before any write"
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["deep", "model.tar.gz", "target"]


def test_dot_dot_member_is_refused_by_build(tmp_path: Path) -> None:
    archive = _tarball(tmp_path / "model.tar.gz", [_file("a/../../escaped", b"pwned")])
    with pytest.raises(UnsafeArchiveError, match="climbs out"):
        build_artifact(archive, output_dir=tmp_path / "out", compile=False)
    assert not (tmp_path / "escaped").exists()
    assert not (tmp_path / "out" / "manifest.json").exists()


@pytest.mark.parametrize(
    ("member", "message"),
    [
        (_file("/etc/evil"), "absolute path"),
        (_special("link", tarfile.SYMTYPE, "/etc/passwd"), "is a link"),
        (_special("hard", tarfile.LNKTYPE, "xgboost-model"), "is a link"),
        (_special("dev", tarfile.CHRTYPE), "device, fifo"),
        (_special("blk", tarfile.BLKTYPE), "device, fifo"),
        (_special("pipe", tarfile.FIFOTYPE), "device, fifo"),
        (_file("a\\..\\b"), "not a plain relative path"),
    ],
)
def test_unsafe_members_are_refused(
    tmp_path: Path, member: tuple[tarfile.TarInfo, bytes | None], message: str
) -> None:
    archive = _tarball(tmp_path / "model.tar.gz", [_file("xgboost-model"), member])
    with pytest.raises(UnsafeArchiveError, match=message) as caught:
        extract_archive(archive, tmp_path / "target")
    assert str(archive) in str(caught.value)
    assert list((tmp_path / "target").iterdir()) == []


def test_limits_on_members_and_size(tmp_path: Path) -> None:
    many = _tarball(tmp_path / "many.tar.gz", [_file(f"f{i}") for i in range(6)])
    with pytest.raises(UnsafeArchiveError, match="more than 5 members"):
        extract_archive(many, tmp_path / "t1", max_members=5)
    big = _tarball(tmp_path / "big.tar.gz", [_file("a", b"x" * 600), _file("b", b"y" * 600)])
    with pytest.raises(UnsafeArchiveError, match="more than 1000 bytes"):
        extract_archive(big, tmp_path / "t2", max_total_bytes=1000)


def test_duplicate_members_are_refused(tmp_path: Path) -> None:
    archive = _tarball(tmp_path / "dup.tar.gz", [_file("m", b"1"), _file("./m", b"2")])
    with pytest.raises(UnsafeArchiveError, match="appears twice"):
        extract_archive(archive, tmp_path / "t")


def test_regular_files_and_directories_are_extracted(tmp_path: Path) -> None:
    directory = tarfile.TarInfo("sub")
    directory.type = tarfile.DIRTYPE
    archive = _tarball(
        tmp_path / "ok.tar.gz",
        [(tarfile.TarInfo("."), None), (directory, None), _file("sub/m", b"1"), _file("./n", b"2")],
    )
    written = extract_archive(archive, tmp_path / "t")
    assert sorted(p.relative_to(tmp_path / "t").as_posix() for p in written) == ["n", "sub/m"]
    assert (tmp_path / "t" / "sub" / "m").read_bytes() == b"1"


def test_target_must_be_empty(tmp_path: Path) -> None:
    archive = _tarball(tmp_path / "ok.tar.gz", [_file("m")])
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "existing").write_text("keep")
    with pytest.raises(UnsafeArchiveError, match="must be an empty directory"):
        extract_archive(archive, tmp_path / "t")


def test_corrupt_archive_is_a_format_error(tmp_path: Path) -> None:
    good = _tarball(tmp_path / "ok.tar.gz", [_file("m", b"z" * 5000)])
    broken = tmp_path / "broken.tar.gz"
    broken.write_bytes(good.read_bytes()[:60])
    with pytest.raises(UnsupportedFormatError, match="not a readable tar archive"):
        extract_archive(broken, tmp_path / "t")


def test_written_archives_are_deterministic(tmp_path: Path) -> None:
    (tmp_path / "b").write_bytes(b"bee")
    (tmp_path / "a").write_bytes(b"ay")
    one = write_archive(tmp_path, ["b", "a"], output=tmp_path / "out" / "one.tar.gz")
    (tmp_path / "a").touch()  # a new mtime changes nothing
    two = write_archive(tmp_path, ["b", "a"], output=tmp_path / "out" / "two.tar.gz")
    assert one.read_bytes() == two.read_bytes()
    with tarfile.open(one) as tar:
        assert tar.getnames() == ["b", "a"]
