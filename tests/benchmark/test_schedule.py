from __future__ import annotations

import pytest

from benchmark.schedule import Schedule, Step, parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90", 90), ("90s", 90), ("2m", 120), ("1h30m", 5400), ("1m30s", 90), ("0.5s", 0.5)],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "abc", "10x", "0", "0s", "-5s", "1d"])
def test_bad_durations_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


def test_step_schedule_climbs_to_the_maximum() -> None:
    schedule = Schedule.stepped(step_users=4, max_users=10, step_seconds=5)
    assert [step.users for step in schedule.steps] == [4, 8, 10]
    assert schedule.seconds == 15
    assert schedule.max_users == 10
    assert [schedule.step_at(t) for t in (0, 4.9, 5, 14.9, 15)] == [0, 0, 1, 2, None]


def test_schedule_travels_as_text() -> None:
    schedule = Schedule.stepped(step_users=2, max_users=6, step_seconds=2.5)
    assert schedule.to_text() == "2x2.5,4x2.5,6x2.5"
    assert Schedule.from_text(schedule.to_text()) == schedule
    assert Schedule.constant(users=3, seconds=60).to_text() == "3x60"


@pytest.mark.parametrize("text", ["", "3", "ax5", "3x", "0x5", "3x0", "3x-1"])
def test_bad_schedules_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        Schedule.from_text(text)


def test_bad_steps_are_refused() -> None:
    with pytest.raises(ValueError):
        Schedule(())
    with pytest.raises(ValueError):
        Schedule.stepped(step_users=5, max_users=4, step_seconds=1)
    with pytest.raises(ValueError):
        Schedule((Step(1, float("inf")),))
