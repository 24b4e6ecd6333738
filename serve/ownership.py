"""Whether a path is this server's alone: the test applied before trusting a directory or file
that names, or holds, a library the server will load (the raw-model import cache, the
multi-model registry)."""

from __future__ import annotations

import os
import stat
from pathlib import Path


def why_not_private(path: Path) -> str | None:
    """Why someone other than this process's user could have written `path`, or None: a
    symbolic link, another owner, or group/world write permission (the link itself is judged,
    never followed)."""
    try:
        info = os.lstat(path)
    except OSError as exc:
        return f"cannot inspect {path}: {exc}"
    if stat.S_ISLNK(info.st_mode):
        return f"{path} is a symbolic link"
    if info.st_uid != os.getuid():
        return f"{path} is owned by uid {info.st_uid}, not this server's uid {os.getuid()}"
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return f"{path} is writable by others (mode {stat.S_IMODE(info.st_mode):04o})"
    return None
