"""`python -m benchmark ...` run as a user runs it: from the repository root, output captured."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_benchmark(
    *args: str, timeout: float, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`env` is the whole environment (default: this process's), `PYTHONPATH` set to the root."""
    return subprocess.run(
        [sys.executable, "-m", "benchmark", *args],
        cwd=ROOT,
        env={**(os.environ if env is None else env), "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
