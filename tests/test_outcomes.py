"""api.outcomes: the outcome rules every feature shares (the chart's HTTP tests cover them in context), checked here
against independent computations: Decimal's ROUND_HALF_UP for rounding, a linear scan for the baseline."""

from __future__ import annotations

import datetime as dt
from fractions import Fraction
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from api import outcomes
from api.instruments.registry import GAD2, GAD7, PHQ9, SUDS

EPOCH = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


@given(numerator=st.integers(-10**6, 10**6), denominator=st.integers(-1000, 1000).filter(bool),
       places=st.sampled_from([1, 2]))
def test_half_up_is_decimals_round_half_up(numerator, denominator, places):
    expected = (Decimal(numerator) / Decimal(denominator)).quantize(Decimal(1).scaleb(-places), ROUND_HALF_UP)
    assert outcomes.half_up(numerator, denominator, places) == float(expected)


@pytest.mark.parametrize(("value", "places", "expected"), [
    ((-625, 100), 1, -6.3), ((625, 100), 1, 6.3), ((41, 4), 1, 10.3), ((3, 8), 2, 0.38), ((-1, 100), 1, 0.0),
    ((15, 100), 1, 0.2), ((7, 1), 1, 7.0), ((625, -100), 1, -6.3), ((-625, -100), 1, 6.3),
])
def test_half_up_examples(value, places, expected):
    result = outcomes.half_up(*value, places=places)
    assert result == expected and str(result) != "-0.0"


@pytest.mark.parametrize(("baseline", "latest", "expected"), [
    (16, 15, -6.3), (16, 8, -50.0), (15, 7, -53.3), (1, 0, -100.0), (10, 14, 40.0), (0, 3, None),
])
def test_percent_change(baseline, latest, expected):
    assert outcomes.percent_change(baseline, latest) == expected


def test_mean_and_days():
    assert (outcomes.mean(41, 4), outcomes.mean(17, 3), outcomes.mean(-5, 2)) == (10.3, 5.7, -2.5)
    assert outcomes.days_between(EPOCH + dt.timedelta(hours=9), EPOCH) == 0.38
    assert outcomes.days_between(EPOCH + dt.timedelta(days=7, hours=23), EPOCH) == 7.96


@pytest.mark.parametrize(("instrument", "baseline", "latest", "response", "remission"), [
    (GAD7, 16, 8, True, False), (GAD7, 16, 9, False, False), (GAD7, 8, 4, True, True), (GAD7, 5, 2, True, True),
    (GAD7, 4, 0, None, None), (GAD7, 1, 0, None, None), (PHQ9, 5, 3, False, True), (PHQ9, 4, 0, None, None),
    (GAD2, 6, 3, None, None), (SUDS, 80, 40, None, None),
])
def test_response_and_remission_are_judged_for_gad7_and_phq9_from_mild(instrument, baseline, latest, response,
                                                                       remission):
    assert outcomes.response(instrument, baseline, latest) is response
    assert outcomes.remission(instrument, baseline, latest) is remission


@pytest.mark.parametrize(("instrument", "change", "expected"), [
    (GAD7, -4, True), (GAD7, 3, False), (GAD7, 4, True), (PHQ9, -4, False), (PHQ9, -5, True), (SUDS, -50, None),
])
def test_clinically_meaningful(instrument, change, expected):
    assert outcomes.clinically_meaningful(instrument, change) is expected


@given(offsets=st.lists(st.integers(0, 1000), max_size=30).map(sorted), dose=st.none() | st.integers(0, 1000))
def test_the_baseline_is_the_last_score_before_the_dose_else_the_first(offsets, dose):
    recorded_at = [EPOCH + dt.timedelta(hours=h) for h in offsets]
    dose_at = None if dose is None else EPOCH + dt.timedelta(hours=dose)
    before = [i for i, at in enumerate(recorded_at) if dose_at is not None and at < dose_at]
    expected = None if not recorded_at else (before[-1], True) if before else (0, False)
    assert outcomes.baseline(recorded_at, dose_at) == expected


def test_the_first_dose_is_the_first_session_else_the_end_of_the_start_day_in_the_patients_zone():
    new_york = ZoneInfo("America/New_York")
    session = dt.datetime(2026, 11, 2, 14, tzinfo=dt.UTC)
    assert outcomes.first_dose(session, dt.date(2026, 11, 5), new_york) == session
    # 2026-10-31 ends at local midnight, 04:00Z (EDT); 2026-11-01 (25 hours long) ends at 05:00Z (EST).
    assert outcomes.first_dose(None, dt.date(2026, 10, 31), new_york) == dt.datetime(2026, 11, 1, 4, tzinfo=dt.UTC)
    assert outcomes.first_dose(None, dt.date(2026, 11, 1), new_york) == dt.datetime(2026, 11, 2, 5, tzinfo=dt.UTC)
    assert outcomes.first_dose(None, None, new_york) is None


NOW = dt.datetime(2026, 11, 20, 12, tzinfo=dt.UTC)


def days_before(days: float) -> dt.datetime:
    return NOW - dt.timedelta(days=days)


@pytest.mark.parametrize(("instrument", "recent", "prior", "expected"), [
    (GAD7, [14, 14], [10], "worsening"),       # +4: exactly the MCID
    (GAD7, [13, 14], [10], "stable"),          # +3.5
    (GAD7, [6], [10, 10, 11], "improving"),    # −4.33
    (PHQ9, [14], [10], "stable"),              # +4 < 5
    (PHQ9, [15], [10], "worsening"),
    (GAD7, [], [10], None), (GAD7, [10], [], None),
    (SUDS, [90], [10], None),                  # no MCID
])
def test_trend_compares_two_fortnights(instrument, recent, prior, expected):
    scores = [(days_before(1 + i), total) for i, total in enumerate(recent)]
    scores += [(days_before(15 + i), total) for i, total in enumerate(prior)]
    assert outcomes.trend(instrument, scores, NOW) == expected


def test_trend_window_edges():
    # Exactly 14 days ago belongs to the earlier fortnight; exactly 28 days ago to neither; the future to neither.
    scores = [(NOW, 20), (days_before(14), 10), (days_before(28), 30), (NOW + dt.timedelta(seconds=1), 0)]
    assert outcomes.trend(GAD7, scores, NOW) == "worsening"


@given(recent=st.lists(st.integers(0, 21), min_size=1, max_size=20),
       prior=st.lists(st.integers(0, 21), min_size=1, max_size=20))
def test_trend_agrees_with_exact_means(recent, prior):
    scores = [(days_before(1), total) for total in recent] + [(days_before(20), total) for total in prior]
    # Fractions, not Decimals: a mean of 41/3 has no exact decimal, and a difference of exactly 4 must be 4.
    difference = Fraction(sum(recent), len(recent)) - Fraction(sum(prior), len(prior))
    expected = "worsening" if difference >= 4 else "improving" if difference <= -4 else "stable"
    assert outcomes.trend(GAD7, scores, NOW) == expected


@given(baseline_total=st.integers(0, 1000), total=st.integers(0, 1000))
def test_highest_responding_total_is_the_response_rule(baseline_total, total):
    """The chart finds the first response by comparing totals with this bound: it must agree with `responds`."""
    assert (total <= outcomes.highest_responding(baseline_total)) is outcomes.responds(baseline_total, total)


@given(total_sum=st.integers(-10**6, 10**6), n=st.integers(1, 1000))
def test_mean_is_the_sum_over_n_rounded_half_up(total_sum, n):
    assert outcomes.mean(total_sum, n) == outcomes.half_up(total_sum, n)
