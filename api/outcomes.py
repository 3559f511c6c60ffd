"""Outcome measures of one instrument's scores: the baseline, change, percent change, response, remission and
clinically meaningful change, and the one rounding rule for every number derived from totals.

Plain functions of plain values (totals, instants, an `Instrument`), with no database and no HTTP, so that every
feature that reports outcomes (the chart, and the progress report through the chart service; the dashboard when
it comes) computes them the same way. The rules and their sources are in docs/charts.md.
"""

from __future__ import annotations

import bisect
import datetime as dt
from collections.abc import Sequence
from typing import TypeVar
from zoneinfo import ZoneInfo

from api.instruments.registry import Instrument

_DAY = dt.timedelta(days=1)
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
Instant = TypeVar("Instant", dt.datetime, int)
_MICROSECOND = dt.timedelta(microseconds=1)


def half_up(numerator: int, denominator: int = 1, places: int = 1) -> float:
    """numerator ÷ denominator rounded to `places` decimals, halves away from zero (−6.25 → −6.3, 10.25 → 10.3,
    0.375 → 0.38).

    Exact, in integers: Python's `round` on a float rounds halves to even and sees the binary approximation
    (round(0.15, 1) is 0.1), which is not what a clinician computing by hand gets. Integer arithmetic rather than
    `fractions.Fraction`, because a chart rounds a mean per bucket and Fraction costs ten times as much.
    """
    scale = 10 ** places
    size = abs(denominator)
    magnitude = (2 * abs(numerator) * scale + size) // (2 * size)  # floor(|value| × scale + 1/2)
    rounded = magnitude / scale  # int / int: the float nearest to the decimal
    return -rounded if magnitude and (numerator < 0) != (denominator < 0) else rounded


def mean(total_sum: int, n: int) -> float:
    """The mean of `n` totals summing to `total_sum`, rounded half up to one decimal: `half_up(total_sum, n)`,
    written out for sums of totals (never negative), because a chart takes a mean per bucket on every request."""
    if total_sum < 0:
        return half_up(total_sum, n)
    return (20 * total_sum + n) // (2 * n) / 10


def epoch_micros(instant: dt.datetime) -> int:
    """Microseconds since the Unix epoch: an instant as an exact integer (charts compare and digest a year of them)."""
    return (instant - _EPOCH) // _MICROSECOND


def instant_of(micros: int) -> dt.datetime:
    """The UTC instant `epoch_micros` came from."""
    return _EPOCH + dt.timedelta(microseconds=micros)


def days_between(later: dt.datetime, earlier: dt.datetime) -> float:
    """Fractional days from `earlier` to `later`, rounded half up to two decimals (6 hours → 0.25)."""
    return half_up((later - earlier) // _MICROSECOND, _DAY // _MICROSECOND, places=2)


def first_dose(first_session_at: dt.datetime | None, plan_start: dt.date | None,
               zone: ZoneInfo) -> dt.datetime | None:
    """When treatment began: the start of the plan's first signed session; while it has none, the end of the plan's
    start date in the patient's zone (so that scores on the start day still count as before treatment). None
    without a plan."""
    if first_session_at is not None:
        return first_session_at
    if plan_start is None:
        return None
    return dt.datetime.combine(plan_start + _DAY, dt.time(), zone)


def baseline(recorded_at: Sequence[Instant], dose: Instant | None) -> tuple[int, bool] | None:
    """(index, pre_treatment) of the baseline among scores in time order: the last one strictly before the first
    dose (pre_treatment True); without one, or without a first dose, the first score (pre_treatment False). None
    without scores. Instants as datetimes, or as epoch microseconds (the chart's), `dose` alike."""
    if not recorded_at:
        return None
    before = 0 if dose is None else bisect.bisect_left(recorded_at, dose)
    return (before - 1, True) if before else (0, False)


def judged(instrument: Instrument, baseline_total: int) -> bool:
    """Whether response and remission mean anything for this instrument and baseline: GAD-7 and PHQ-9 from a
    baseline of at least mild severity (below it there is nothing to respond or remit from)."""
    return instrument.response_baseline_min is not None and baseline_total >= instrument.response_baseline_min


def responds(baseline_total: int, total_sum: int, n: int = 1) -> bool:
    """Whether a total (or the mean `total_sum / n`) is reduced by at least 50 % from the baseline; exact integer
    arithmetic, so exactly half the baseline is a response. Callers check `judged` first."""
    return 2 * total_sum <= baseline_total * n


def highest_responding(baseline_total: int) -> int:
    """The highest single total that `responds` to this baseline (2t ≤ b ⟺ t ≤ ⌊b/2⌋ in integers): a chart compares
    a year of totals with it instead of calling `responds` for each."""
    return baseline_total // 2


def response(instrument: Instrument, baseline_total: int, latest_total: int) -> bool | None:
    return responds(baseline_total, latest_total) if judged(instrument, baseline_total) else None


def remission(instrument: Instrument, baseline_total: int, latest_total: int) -> bool | None:
    if not judged(instrument, baseline_total) or instrument.remission_below is None:
        return None
    return latest_total < instrument.remission_below


def percent_change(baseline_total: int, latest_total: int) -> float | None:
    """(latest − baseline) ÷ baseline × 100, rounded half up to one decimal; None from a baseline of 0."""
    if baseline_total == 0:
        return None
    return half_up(100 * (latest_total - baseline_total), baseline_total)


def clinically_meaningful(instrument: Instrument, change: int) -> bool | None:
    """|change| ≥ the instrument's minimal clinically important difference (either direction); None without one."""
    mcid = instrument.clinically_meaningful_change
    return None if mcid is None else abs(change) >= mcid


TREND_WINDOW = dt.timedelta(days=14)


def trend_windows(now: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    """(start, split) of the trend's two fortnights: the prior one is (start, split], the recent one (split, now]."""
    return now - 2 * TREND_WINDOW, now - TREND_WINDOW


def trend(instrument: Instrument, scores: Sequence[tuple[dt.datetime, int]], now: dt.datetime) -> str | None:
    """The contract's dashboard `trend` from (instant, total) scores: see `trend_of`."""
    start, split = trend_windows(now)
    recent = [total for at, total in scores if split < at <= now]
    prior = [total for at, total in scores if start < at <= split]
    return trend_of(instrument, sum(recent), len(recent), sum(prior), len(prior))


def trend_of(instrument: Instrument, recent_sum: int, recent_n: int, prior_sum: int, prior_n: int) -> str | None:
    """The contract's dashboard `trend`: the mean total of the last 14 days (after now − 14 d, up to now) against
    the mean of the 14 days before (`trend_windows`), judged by the instrument's clinically meaningful change. Higher
    totals are worse on every instrument: a rise of at least the MCID is "worsening", a fall of at least it
    "improving", anything else "stable". None when either fortnight has no score, or the instrument has no MCID.

    Exact integer arithmetic: mean_recent − mean_prior ≥ mcid ⇔ Σr·np − Σp·nr ≥ mcid·nr·np.
    """
    mcid = instrument.clinically_meaningful_change
    if mcid is None or not recent_n or not prior_n:
        return None
    difference = recent_sum * prior_n - prior_sum * recent_n
    threshold = mcid * recent_n * prior_n
    if difference >= threshold:
        return "worsening"
    if difference <= -threshold:
        return "improving"
    return "stable"
