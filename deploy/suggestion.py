"""``autoscaling.json``: ``benchmark recommend`` writes it, ``deploy autoscale`` reads it.

``autoscaling.json``::

    {"metric": "SageMakerVariantInvocationsPerInstance", "target_value": 1234.0,
     "min_capacity": 1, "max_capacity": 4, "scale_in_cooldown": 300, "scale_out_cooldown": 60,
     "source": "inference recommender job NAME, recommendation ID"}

``metric`` and ``target_value`` are required; a missing capacity or cooldown means "the
``deploy autoscale`` default" and ``source`` defaults to the file's path. Both sides use this one
model, so what the writer writes is what the reader accepts.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Final, Literal, get_args

from deploy.errors import DeployError

Metric = Literal[
    "SageMakerVariantInvocationsPerInstance",
    "SageMakerVariantConcurrentRequestsPerModelHighResolution",
]
INVOCATIONS: Final[Metric] = "SageMakerVariantInvocationsPerInstance"
CONCURRENCY: Final[Metric] = "SageMakerVariantConcurrentRequestsPerModelHighResolution"
METRICS: Final[tuple[Metric, ...]] = get_args(Metric)
MAX_COOLDOWN_S: Final = 86_400
_WHOLE_NUMBERS: Final = ("min_capacity", "max_capacity", "scale_in_cooldown", "scale_out_cooldown")


@dataclass(frozen=True, kw_only=True)
class AutoscaleSuggestion:
    """A target-tracking policy to put on an endpoint variant, checked when made."""

    metric: Metric
    target_value: float
    min_capacity: int | None = None
    max_capacity: int | None = None
    scale_in_cooldown: int | None = None
    scale_out_cooldown: int | None = None
    source: str

    def __post_init__(self) -> None:
        if self.metric not in METRICS:
            raise DeployError(f"metric {self.metric!r} is not one of {', '.join(METRICS)}")
        if not math.isfinite(self.target_value) or self.target_value <= 0:
            raise DeployError(f"target value must be a positive number, got {self.target_value}")
        if self.min_capacity is not None and self.min_capacity < 1:
            raise DeployError(f"min_capacity must be at least 1, got {self.min_capacity}")
        if (
            self.min_capacity is not None
            and self.max_capacity is not None
            and self.max_capacity < self.min_capacity
        ):
            raise DeployError(
                f"max_capacity ({self.max_capacity}) is below min_capacity ({self.min_capacity})"
            )
        for name in ("scale_in_cooldown", "scale_out_cooldown"):
            value = getattr(self, name)
            if value is not None and not 0 <= value <= MAX_COOLDOWN_S:
                raise DeployError(f"{name} must be 0-{MAX_COOLDOWN_S} seconds, got {value}")

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str, *, source: str) -> AutoscaleSuggestion:
        """Parse and check a suggestion; ``source`` names it in errors and when it names none."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DeployError(f"recommendation {source} is not JSON: {exc}") from None
        if not isinstance(data, dict):
            raise DeployError(f"recommendation {source} must be a JSON object")
        missing = {"metric", "target_value"} - set(data)
        if missing:
            raise DeployError(f"recommendation {source} lacks {', '.join(sorted(missing))}")
        fields: dict[str, Any] = {"source": source}
        for key in ("metric", "source"):
            if key in data:
                if not isinstance(data[key], str):
                    raise DeployError(f"recommendation {source}: {key} must be a string")
                fields[key] = data[key]
        target = data["target_value"]
        if isinstance(target, bool) or not isinstance(target, int | float):
            raise DeployError(f"recommendation {source}: target_value must be a number")
        fields["target_value"] = float(target)
        for key in _WHOLE_NUMBERS:
            value = data.get(key)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int):
                raise DeployError(f"recommendation {source}: {key} must be a whole number")
            fields[key] = value
        try:
            return cls(**fields)
        except DeployError as exc:
            raise DeployError(f"recommendation {source}: {exc}") from None

    @classmethod
    def read(cls, path: Path) -> AutoscaleSuggestion:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise DeployError(f"cannot read recommendation {path}: {exc}") from None
        return cls.from_json(text, source=str(path))


def as_metric(value: str) -> Metric:
    """``value`` as a Metric, or DeployError naming the choices."""
    if value not in METRICS:
        raise DeployError(f"metric {value!r} is not one of {', '.join(METRICS)}")
    return value
