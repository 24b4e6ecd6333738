"""The load schedule of a Locust run: a sequence of user levels, each held for a while.

A constant run is one step. A step run climbs `step_users, 2 * step_users, ...` up to the maximum,
so the knee (the highest throughput at which p99 stays under a bound) can be read off one run. The
schedule travels to Locust's processes as text (`"8x10,16x10"`: users x seconds per step).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

_DURATION = re.compile(
    r"^\s*(?:(\d+(?:\.\d+)?)\s*h)?\s*(?:(\d+(?:\.\d+)?)\s*m)?\s*(?:(\d+(?:\.\d+)?)\s*s?)?\s*$"
)


def parse_duration(text: str) -> float:
    """Seconds in `text`: `90`, `90s`, `2m`, `1h30m`, `1m30s`, `0.5s`."""
    match = _DURATION.match(text)
    if not text.strip() or match is None or not any(match.groups()):
        raise ValueError(f"invalid duration {text!r}; use e.g. 90, 90s, 2m, 1h30m")
    hours, minutes, seconds = (float(group) if group else 0.0 for group in match.groups())
    total = hours * 3600 + minutes * 60 + seconds
    if total <= 0:
        raise ValueError(f"duration must be positive, got {text!r}")
    return total


@dataclass(frozen=True)
class Step:
    users: int
    seconds: float


@dataclass(frozen=True)
class Schedule:
    steps: tuple[Step, ...]

    def __post_init__(self) -> None:
        if not self.steps:
            raise ValueError("a schedule needs at least one step")
        for step in self.steps:
            if step.users < 1 or not step.seconds > 0 or not math.isfinite(step.seconds):
                raise ValueError(f"each step needs users >= 1 and seconds > 0, got {step}")

    @classmethod
    def constant(cls, *, users: int, seconds: float) -> Schedule:
        return cls((Step(users, seconds),))

    @classmethod
    def stepped(cls, *, step_users: int, max_users: int, step_seconds: float) -> Schedule:
        """Levels `step_users, 2 * step_users, ...`, then `max_users` if it is not a multiple."""
        if step_users < 1 or max_users < step_users:
            raise ValueError(f"need 1 <= step users ({step_users}) <= users ({max_users})")
        levels = list(range(step_users, max_users + 1, step_users))
        if levels[-1] != max_users:
            levels.append(max_users)
        return cls(tuple(Step(users, step_seconds) for users in levels))

    @property
    def seconds(self) -> float:
        return sum(step.seconds for step in self.steps)

    @property
    def max_users(self) -> int:
        return max(step.users for step in self.steps)

    def step_at(self, elapsed: float) -> int | None:
        """Index of the step running `elapsed` seconds after the start; None once it is over."""
        end = 0.0
        for index, step in enumerate(self.steps):
            end += step.seconds
            if elapsed < end:
                return index
        return None

    def to_text(self) -> str:
        return ",".join(f"{step.users}x{step.seconds:g}" for step in self.steps)

    @classmethod
    def from_text(cls, text: str) -> Schedule:
        steps = []
        for part in text.split(","):
            users, sep, seconds = part.strip().partition("x")
            if not sep:
                raise ValueError(f"invalid step {part!r}; expected USERSxSECONDS")
            try:
                steps.append(Step(int(users), float(seconds)))
            except ValueError:
                raise ValueError(f"invalid step {part!r}; expected USERSxSECONDS") from None
        return cls(tuple(steps))
