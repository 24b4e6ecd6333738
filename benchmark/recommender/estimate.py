"""The local capacity estimate that `benchmark capacity` writes as `capacity.json`.

At least `{"max_invocations_per_minute_per_worker": float, "p99_bound_ms": float, "workers": int,
"measured_at": "...", "host": "..."}`; `within_bound` (false: no usable figure) and
`rows_per_request` are read when present, other keys are ignored.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deploy.errors import InvalidInputError


@dataclass(frozen=True, slots=True)
class LocalEstimate:
    max_invocations_per_minute_per_worker: float
    p99_bound_ms: float
    workers: int
    measured_at: str
    host: str
    path: str
    rows_per_request: int | None = None

    @property
    def max_invocations_per_minute(self) -> float:
        return self.max_invocations_per_minute_per_worker * self.workers


def _positive_number(data: dict[str, Any], key: str, path: Path) -> float:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidInputError(f"--capacity {path}: {key!r} must be a number, got {value!r}")
    if not math.isfinite(value) or value <= 0:
        raise InvalidInputError(f"--capacity {path}: {key!r} must be positive, got {value!r}")
    return float(value)


def load_estimate(path: str | Path) -> LocalEstimate:
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InvalidInputError(f"--capacity: cannot read {path}: {exc.strerror}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvalidInputError(f"--capacity {path}: not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise InvalidInputError(f"--capacity {path}: expected a JSON object")
    if data.get("within_bound") is False:
        raise InvalidInputError(
            f"--capacity {path}: the local run found no load step within its p99 bound "
            f"({data.get('p99_bound_ms')} ms), so it has no capacity to compare; rerun "
            "`benchmark capacity` with a looser --p99-bound or lighter steps"
        )
    workers = data.get("workers")
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise InvalidInputError(
            f"--capacity {path}: 'workers' must be a positive integer, got {workers!r}"
        )
    rows = data.get("rows_per_request")
    return LocalEstimate(
        max_invocations_per_minute_per_worker=_positive_number(
            data, "max_invocations_per_minute_per_worker", path
        ),
        p99_bound_ms=_positive_number(data, "p99_bound_ms", path),
        workers=workers,
        measured_at=str(data.get("measured_at", "unknown")),
        host=str(data.get("host", "unknown")),
        path=str(path),
        rows_per_request=rows if isinstance(rows, int) and not isinstance(rows, bool) else None,
    )
