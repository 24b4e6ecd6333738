"""A path is private when this user owns it, no one else can write it, and it is not a link."""

from __future__ import annotations

import os
from pathlib import Path

from serve.ownership import why_not_private


def test_a_private_directory_and_file_pass(tmp_path: Path) -> None:
    directory = tmp_path / "private"
    directory.mkdir(mode=0o700)
    (directory / "model.so").write_bytes(b"x")
    os.chmod(directory / "model.so", 0o644)
    assert why_not_private(directory) is None
    assert why_not_private(directory / "model.so") is None


def test_group_or_world_writable_is_refused_with_the_mode(tmp_path: Path) -> None:
    path = tmp_path / "shared"
    path.mkdir()
    os.chmod(path, 0o777)
    assert why_not_private(path) == f"{path} is writable by others (mode 0777)"


def test_a_symbolic_link_is_judged_not_followed(tmp_path: Path) -> None:
    target = tmp_path / "target"
    target.mkdir(mode=0o700)
    link = tmp_path / "link"
    link.symlink_to(target)
    assert why_not_private(link) == f"{link} is a symbolic link"


def test_a_missing_path_says_it_cannot_be_inspected(tmp_path: Path) -> None:
    problem = why_not_private(tmp_path / "missing")
    assert problem is not None and problem.startswith(f"cannot inspect {tmp_path / 'missing'}")
