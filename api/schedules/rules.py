"""The assessment schedule's rules (the contract's "Schedules and reminders"), as pure functions of local dates.

Everything here works on the patient's local calendar days: the route and the worker's overdue sweep turn instants
into days in the patient's zone before calling these, so a score at 23:30 in Auckland counts on the Auckland day.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import NamedTuple

from api.outcomes import half_up

# Adherence looks back over the last 28 local days, today included.
ADHERENCE_WINDOW_DAYS = 28
_WINDOW_BEFORE_TODAY = dt.timedelta(days=ADHERENCE_WINDOW_DAYS - 1)


def next_due_on(start_date: dt.date, every_days: int, last_day: dt.date | None) -> dt.date:
    """The local day of the last score since the plan's start plus the interval; the start date itself when there
    is none since it. Never before the start: a score taken before the plan does not move its first due date."""
    if last_day is None or last_day < start_date:
        return start_date
    return last_day + dt.timedelta(days=every_days)


def overdue_days(due_on: dt.date, today: dt.date) -> int:
    """How many local days today is past the due date; 0 when it is not."""
    return max(0, (today - due_on).days)


def adherence_window(start_date: dt.date, today: dt.date) -> tuple[dt.date, dt.date] | None:
    """The last 28 local days, or the days since the start when that is shorter; None before the plan starts."""
    first = max(today - _WINDOW_BEFORE_TODAY, start_date)
    return None if first > today else (first, today)


def adherence(start_date: dt.date, every_days: int, today: dt.date, days_with_scores: LocalDays) -> float | None:
    """min(1, distinct local days with a score in the window ÷ the due dates in it, rounded up), to 2 decimals;
    None while the plan has not started (no due date yet)."""
    window = adherence_window(start_date, today)
    if window is None:
        return None
    first, last = window
    due_dates = -(-((last - first).days + 1) // every_days)  # rounded up, in integers
    completed = days_with_scores.count_between(first, last)
    return half_up(min(completed, due_dates), due_dates, places=2)


class LocalDays(NamedTuple):
    """A set of local calendar days as the bits of one integer: bit i is the day whose ordinal (`date.toordinal()`)
    is `origin + i`. Counting the days of a window is then one shift, one mask and a population count; and the
    dashboard reads each patient's recent days from PostgreSQL as one integer per instrument instead of a date per
    score (api/dashboard/queries.py)."""

    origin: int
    bits: int

    @classmethod
    def of(cls, days: Iterable[dt.date]) -> LocalDays:
        ordinals = {day.toordinal() for day in days}
        origin = min(ordinals, default=0)
        return cls(origin, sum(1 << (ordinal - origin) for ordinal in ordinals))

    def count_between(self, first: dt.date, last: dt.date) -> int:
        """How many of the days fall within [first, last]."""
        low, high = max(first.toordinal() - self.origin, 0), last.toordinal() - self.origin
        return 0 if high < low else (self.bits >> low & ((1 << (high - low + 1)) - 1)).bit_count()


NO_DAYS = LocalDays(0, 0)


def local_days(instants: Iterable[dt.datetime], zone: dt.tzinfo) -> LocalDays:
    """The patient's local calendar days of these instants."""
    return LocalDays.of(at.astimezone(zone).date() for at in instants)


class Entry(NamedTuple):
    """One line of the plan's `assessments`, as the schedule answers it."""

    instrument: str
    every_days: int
    last_completed_at: dt.datetime | None
    next_due_on: dt.date
    overdue_days: int
    adherence_28d: float | None


class State(NamedTuple):
    """Where one instrument's schedule stands today."""

    next_due_on: dt.date
    overdue_days: int
    adherence_28d: float | None


def state(every_days: int, start_date: dt.date, today: dt.date, last_day: dt.date | None, days: LocalDays) -> State:
    """From the local day of the instrument's last live score (any time; None without one) and the local days of
    its live scores over at least the adherence window (`local_days`)."""
    due = next_due_on(start_date, every_days, last_day)
    return State(due, overdue_days(due, today), adherence(start_date, every_days, today, days))


def entry(
    instrument: str, every_days: int, start_date: dt.date, today: dt.date, zone: dt.tzinfo,
    last_at: dt.datetime | None, days: LocalDays,
) -> Entry:
    """The schedule line of one instrument: `last_at` is its last live score (any time), `days` as for `state`."""
    last_day = last_at.astimezone(zone).date() if last_at is not None else None
    since_start = last_at if last_day is not None and last_day >= start_date else None
    return Entry(instrument, every_days, since_start, *state(every_days, start_date, today, last_day, days))
