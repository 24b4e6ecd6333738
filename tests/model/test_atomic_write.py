"""A file written atomically: the whole new file or the old one, and no temporary left behind."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from model.atomic_write import atomic_write


def test_the_new_file_replaces_the_old_world_readable(tmp_path: Path) -> None:
    target = tmp_path / "manifest.json"
    target.write_bytes(b"old")
    target.chmod(0o600)
    with atomic_write(target) as handle:
        handle.write(b"new")
        assert target.read_bytes() == b"old"  # nothing shows before the block ends
    assert target.read_bytes() == b"new"
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    assert [p.name for p in tmp_path.iterdir()] == ["manifest.json"]


def test_an_error_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "model.tar.gz"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError, match="cut"), atomic_write(target) as handle:
        handle.write(b"half")
        raise RuntimeError("cut")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["model.tar.gz"]
