"""Charts: one patient's scores for one instrument, bucketed by the patient's own calendar, with change from
baseline, response, remission, clinically meaningful change, onset and durability, and signed sessions overlaid.

Every rule is documented in docs/charts.md. The patient is reached through `api.authz.authorize_patient` (which
audits `chart.read`); statements live in `api.charts.queries`. Bucketing happens here, in Python with zoneinfo, so
it is the same on PostgreSQL and SQLite and DST-correct in every zone.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from sqlmodel.ext.asyncio.session import AsyncSession

from api.authz import authorize_patient
from api.charts import queries
from api.charts.schemas import Bucket, ChartPoint, ChartPublic, ChartQuery, ChartSession, Durability, ScorePoint
from api.errors import ValidationFailed
from api.instruments.registry import INSTRUMENTS, Instrument
from api.instruments.schemas import BandPublic
from api.security.tokens import Caller
from api.sessions.service import PATIENT_VISIBLE
from models.base import utcnow

DEFAULT_SPAN = dt.timedelta(days=365)  # `from` when omitted: a year before `to`
MAX_SPAN = dt.timedelta(days=5 * 366)  # to − from: five years, leap days included
EARLIEST_DAY, LATEST_DAY = dt.date(2000, 1, 1), dt.date(2100, 12, 31)
# Sessions on a chart are the signed ones, for every viewer: what a patient may see (a draft may still be wrong),
# and the only records a chart should draw conclusions from.
CHARTED_SESSIONS = PATIENT_VISIBLE
DAY_SECONDS = 86_400
_BACK_TO_MONDAY = tuple(dt.timedelta(days=weekday) for weekday in range(7))
# The registry is immutable: each instrument's bands are answered as built once.
_BANDS = {code: [BandPublic(label=band.label, min=band.min, max=band.max) for band in instrument.bands]
          for code, instrument in INSTRUMENTS.items()}


def bucket_start(day: dt.date, bucket: Bucket) -> dt.date:
    """The first local day of the bucket holding `day`: itself, its ISO week's Monday, or its month's 1st."""
    if bucket == "day":
        return day
    if bucket == "week":
        return day - _BACK_TO_MONDAY[day.weekday()]
    return day.replace(day=1)


def responds(baseline_total: int, total_sum: int, n: int = 1) -> bool:
    """Whether a total (or the mean `total_sum / n`) is reduced by at least 50 % from a positive baseline; exact
    integer arithmetic, so exactly half the baseline is a response."""
    return 2 * total_sum <= baseline_total * n


def _days(later: dt.datetime, earlier: dt.datetime) -> float:
    return round((later - earlier).total_seconds() / DAY_SECONDS, 2)


@dataclass(frozen=True, slots=True)
class Scores:
    """A patient's live scores for one instrument, oldest first, with each one's local calendar day."""

    recorded_at: Sequence[dt.datetime]
    totals: Sequence[int]
    days: Sequence[dt.date]

    @classmethod
    def of(cls, rows: Sequence[tuple[dt.datetime, int]], zone: ZoneInfo) -> Scores:
        recorded_at = [row[0] for row in rows]
        return cls(recorded_at, [row[1] for row in rows], [instant.astimezone(zone).date() for instant in recorded_at])

    def point(self, index: int) -> ScorePoint:
        return ScorePoint(total=self.totals[index], recorded_at=self.recorded_at[index])


def baseline_index(scores: Scores, plan_start: dt.date | None) -> int | None:
    """The last score on or before the active plan's start date (local day), else the first score."""
    if not scores.totals:
        return None
    if plan_start is not None:
        for index in range(len(scores.days) - 1, -1, -1):
            if scores.days[index] <= plan_start:
                return index
    return 0


def points(scores: Scores, bucket: Bucket, first: dt.date, last: dt.date) -> list[ChartPoint]:
    """Scores whose local day is within [first, last], grouped by bucket; each score in exactly one bucket."""
    groups: dict[dt.date, list[int]] = {}  # bucket start → totals
    day_seen, group = None, []
    for day, total in zip(scores.days, scores.totals, strict=True):
        if first <= day <= last:
            if day != day_seen:  # in time order a day's scores are consecutive: one bucket look-up per day
                day_seen, group = day, groups.setdefault(bucket_start(day, bucket), [])
            group.append(total)
    return [ChartPoint(bucket_start=key, mean=round(sum(totals) / len(totals), 2), min=min(totals),
                       max=max(totals), n=len(totals))
            for key, totals in sorted(groups.items())]


def onset(scores: Scores, baseline: int, session_start: dt.datetime | None) -> float | None:
    """Days from the first session to the first later score (after baseline) that meets response."""
    base = scores.totals[baseline]
    if session_start is None or base == 0:
        return None
    for index in range(baseline + 1, len(scores.totals)):
        if scores.recorded_at[index] >= session_start and responds(base, scores.totals[index]):
            return _days(scores.recorded_at[index], session_start)
    return None


def durability(scores: Scores, baseline: int, bucket: Bucket) -> Durability | None:
    """How response has held since the first score after baseline met it, judged by the means of the later buckets
    (of the chart's bucket size, over the whole history): a bucket mean that leaves response is a lapse, one that
    meets it again regains response."""
    base = scores.totals[baseline]
    if base == 0:
        return None
    first = next((i for i in range(baseline + 1, len(scores.totals)) if responds(base, scores.totals[i])), None)
    if first is None:
        return None
    first_bucket = bucket_start(scores.days[first], bucket)
    later: dict[dt.date, list[int]] = {}  # bucket start → [sum, n, index of its first score]
    for index in range(first + 1, len(scores.totals)):
        key = bucket_start(scores.days[index], bucket)
        if key > first_bucket:
            group = later.setdefault(key, [0, 0, index])
            group[0] += scores.totals[index]
            group[1] += 1
    responding, since, lapses = True, scores.recorded_at[first], 0
    for total_sum, n, first_index in (later[key] for key in sorted(later)):
        meets = responds(base, total_sum, n)
        if responding and not meets:
            responding, lapses = False, lapses + 1
        elif not responding and meets:
            responding, since = True, scores.recorded_at[first_index]
    return Durability(
        first_response_at=scores.recorded_at[first], responding_now=responding, lapses=lapses,
        response_since=since if responding else None,
        days_sustained=_days(scores.recorded_at[-1], since) if responding else 0.0,
    )


def _window(query: ChartQuery, today: dt.date) -> tuple[dt.date, dt.date]:
    last = query.date_to or today
    first = query.date_from or last - DEFAULT_SPAN
    for name, day in (("from", first), ("to", last)):
        if not EARLIEST_DAY <= day <= LATEST_DAY:
            raise ValidationFailed.at(["query", name], "Must be a date from 2000-01-01 to 2100-12-31")
    if first > last:
        raise ValidationFailed.at(["query", "to"], "Must not be before from")
    if last - first > MAX_SPAN:
        raise ValidationFailed.at(["query", "from"], f"The range may span at most {MAX_SPAN.days} days")
    return first, last


def _first_session(rows: Sequence, plan_id: uuid.UUID | None) -> dt.datetime | None:
    """The first signed session given under the active plan, else the patient's first signed session."""
    linked = next((row for row in rows if plan_id is not None and row.plan_id == plan_id), None)
    first = linked or next(iter(rows), None)
    return None if first is None else first.started_at


def _change(instrument: Instrument, scores: Scores, baseline: int | None) -> dict:
    if baseline is None:
        return dict(baseline=None, latest=None, change=None, percent_change=None, response=None, remission=None,
                    clinically_meaningful_change=None)
    base, latest = scores.totals[baseline], scores.totals[-1]
    change = latest - base
    mcid, remission_below = instrument.clinically_meaningful_change, instrument.remission_below
    return dict(
        baseline=scores.point(baseline), latest=scores.point(len(scores.totals) - 1), change=change,
        percent_change=None if base == 0 else round(change / base * 100, 1),
        response=None if base == 0 else responds(base, latest),
        remission=None if remission_below is None else latest < remission_below,
        clinically_meaningful_change=None if mcid is None else abs(change) >= mcid,
    )


async def chart(session: AsyncSession, caller: Caller, patient_id: uuid.UUID | None, query: ChartQuery) -> ChartPublic:
    patient = await authorize_patient(session, caller, patient_id, "chart.read")
    patient_id, timezone = patient.id, patient.timezone
    zone = ZoneInfo(timezone)
    first_day, last_day = _window(query, utcnow().astimezone(zone).date())
    instrument = INSTRUMENTS[query.instrument]
    plan, signed = await queries.plan_and_sessions(session, patient_id, CHARTED_SESSIONS)
    scores = Scores.of(await queries.live_totals(session, patient_id, instrument.code), zone)
    await session.commit()  # the audit event

    baseline = baseline_index(scores, plan[1] if plan else None)
    return ChartPublic(
        instrument=instrument.code, bucket=query.bucket, timezone=timezone, date_from=first_day,
        date_to=last_day, **_change(instrument, scores, baseline),
        points=points(scores, query.bucket, first_day, last_day),
        sessions=[ChartSession(id=row.id, started_at=row.started_at, dose_mg=row.dose_mg, route=row.route)
                  for row in signed if first_day <= row.started_at.astimezone(zone).date() <= last_day],
        bands=_BANDS[instrument.code],
        onset=None if baseline is None else onset(scores, baseline, _first_session(signed, plan[0] if plan else None)),
        durability=None if baseline is None else durability(scores, baseline, query.bucket),
    )
