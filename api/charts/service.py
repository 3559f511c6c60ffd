"""Charts: one patient's scores for one instrument, bucketed by the patient's own calendar, with change from
baseline, response, remission, clinically meaningful change, onset and durability, and signed sessions overlaid.

Every rule is documented in docs/charts.md. The patient is reached through `api.authz.authorize_patient` (which
audits `chart.read`); statements live in `api.charts.queries`; baseline, change, response, remission and rounding
are `api.outcomes`, shared with every other feature reporting outcomes. Bucketing happens here, in integers: each
score's local day comes from PostgreSQL's one statement, or from zoneinfo on the ORM path (SQLite, API clients);
both use the tz database, so DST is handled in every zone (docs/charts.md#performance).
"""

from __future__ import annotations

import bisect
import datetime as dt
import itertools
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from api import outcomes
from api.audit import service as audit
from api.authz import READ_SCORES, authorize_patient
from api.conditional import Tag
from api.db import engine_of
from api.charts import queries
from api.charts.schemas import (
    Baseline,
    Bucket,
    ChartPublic,
    ChartQuery,
    ChartSession,
    Durability,
    ScorePoint,
)
from api.errors import ValidationFailed
from api.instruments.registry import INSTRUMENTS, Instrument
from api.instruments.schemas import BandPublic
from api.security.tokens import Caller
from api.statements import one_statement
from api.sessions.service import PATIENT_VISIBLE
from models.base import utcnow

DEFAULT_SPAN = dt.timedelta(days=365)  # `from` when omitted: a year before `to`
MAX_SPAN = dt.timedelta(days=5 * 366)  # to − from: five years, leap days included
EARLIEST_DAY, LATEST_DAY = dt.date(2000, 1, 1), dt.date(2100, 12, 31)
# Sessions on a chart are the signed ones, for every viewer: what a patient may see (a draft may still be wrong),
# and the only records a chart should draw conclusions from.
CHARTED_SESSIONS = PATIENT_VISIBLE
# The registry is immutable: each instrument's bands are answered as built once.
_BANDS = {code: [BandPublic(label=band.label, min=band.min, max=band.max) for band in instrument.bands]
          for code, instrument in INSTRUMENTS.items()}


def bucket_start(day: int, bucket: Bucket) -> int:
    """The first local day of the bucket holding `day`: itself, its ISO week's Monday, or its month's 1st. Days
    are proleptic Gregorian ordinals (`date.toordinal()`; day 1, 0001-01-01, was a Monday)."""
    if bucket == "day":
        return day
    if bucket == "week":
        return day - (day - 1) % 7
    return day - dt.date.fromordinal(day).day + 1


def _next_start(start: int, bucket: Bucket) -> int:
    """The first day of the bucket after the one starting on `start`."""
    if bucket == "day":
        return start + 1
    if bucket == "week":
        return start + 7
    first = dt.date.fromordinal(start)
    return first.replace(year=first.year + first.month // 12, month=first.month % 12 + 1).toordinal()


@dataclass(frozen=True, slots=True)
class Scores:
    """A patient's live scores for one instrument, oldest first: each one's instant in microseconds since the Unix
    epoch, total, and local calendar day as an ordinal. Integers rather than datetimes and dates, because a chart
    walks a year of them on every request; instants are made only for the few scores an answer names."""

    micros: Sequence[int]
    totals: Sequence[int]
    days: Sequence[int]
    # Whether the local days never go back in time order. They can: a fall-back across midnight (St John's until
    # 2011) repeats part of the day before.
    ascending: bool

    @classmethod
    def read(cls, micros: Sequence[int], totals: Sequence[int], days: Sequence[int]) -> Scores:
        return cls(micros, totals, days, list(days) == sorted(days))  # sorting sorted days is one linear pass

    def instant(self, index: int) -> dt.datetime:
        return outcomes.instant_of(self.micros[index])

    def point(self, index: int) -> ScorePoint:
        return ScorePoint(total=self.totals[index], recorded_at=self.instant(index))


def grouped(scores: Scores, bucket: Bucket, start: int = 0, first: int = 1,
            last: int = dt.date.max.toordinal()) -> dict[int, tuple[int, Sequence[int]]]:
    """The scores from index `start` on whose local day is within [first, last], by bucket: bucket start → (index of
    its first score, its totals), buckets in the order their first scores came. Each score lands in exactly one
    bucket, whatever the order of the days."""
    days, totals = scores.days, scores.totals
    groups: dict[int, tuple[int, Sequence[int]]] = {}
    if scores.ascending:
        # Each bucket is a run of consecutive scores: found by bisection, summed by slices.
        index, stop = max(start, bisect.bisect_left(days, first)), bisect.bisect_right(days, last)
        while index < stop:
            begin = bucket_start(days[index], bucket)
            after = bisect.bisect_left(days, _next_start(begin, bucket), index, stop)
            groups[begin] = (index, totals[index:after])
            index = after
        return groups
    begin = end = 0  # the current bucket's days, [begin, end): in time order most scores stay in it
    group: list[int] = []
    for index in range(start, len(days)):
        day = days[index]
        if first <= day <= last:
            if not begin <= day < end:
                begin = bucket_start(day, bucket)
                end = _next_start(begin, bucket)
                group = groups.setdefault(begin, (index, []))[1]  # type: ignore[assignment]
            group.append(totals[index])
    return groups


def points(scores: Scores, bucket: Bucket, first: dt.date, last: dt.date) -> list[dict]:
    """Scores whose local day is within [first, last], grouped by bucket; each score in exactly one bucket. As
    `ChartPoint` fields: the answer's model validates them in one pass, cheaper than a model per point."""
    groups = grouped(scores, bucket, first=first.toordinal(), last=last.toordinal())
    day, mean = dt.date.fromordinal, outcomes.mean  # bound once: a year of weeks is 53 rows of five fields
    return [{"bucket_start": day(key), "mean": mean(sum(totals), len(totals)), "min": min(totals),
             "max": max(totals), "n": len(totals)}
            for key, (_, totals) in sorted(groups.items())]


def first_response(scores: Scores, baseline: int, dose: int | None) -> int | None:
    """The index of the first score after the baseline, at or after the first dose (`dose` in epoch microseconds),
    that meets response: a score before any dose is no response to treatment. Callers have checked that response is
    judged at all."""
    if dose is None:
        return None
    highest = outcomes.highest_responding(scores.totals[baseline])
    start = bisect.bisect_left(scores.micros, dose, lo=baseline + 1)
    return next((index for index, total in enumerate(itertools.islice(scores.totals, start, None), start)
                 if total <= highest), None)


def durability(scores: Scores, baseline: int, first: int, bucket: Bucket) -> Durability:
    """How response has held since the first response (index `first`): the scores from it on, grouped into buckets
    of the chart's size over the whole history, each bucket judged by its mean, the first one included. A bucket
    that misses response after one that met it is a lapse; one that meets it after one that missed regains it."""
    base = scores.totals[baseline]
    responding, since, lapses = False, first, 0
    for first_index, totals in grouped(scores, bucket, start=first).values():
        meets = outcomes.responds(base, sum(totals), len(totals))
        if responding and not meets:
            lapses += 1
        elif meets and not responding:
            since = first_index
        responding = meets
    since_at = scores.instant(since)
    return Durability(
        first_response_at=scores.instant(first), responding_now=responding, lapses=lapses,
        response_since=since_at if responding else None,
        days_sustained=outcomes.days_between(scores.instant(len(scores.totals) - 1), since_at) if responding else 0.0,
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


_NO_SCORES = dict(baseline=None, latest=None, change=None, percent_change=None, response=None, remission=None,
                  clinically_meaningful_change=None, onset=None, durability=None)


def _outcomes(instrument: Instrument, scores: Scores, bucket: Bucket, plan: tuple[uuid.UUID, dt.date] | None,
              signed: Sequence, zone: ZoneInfo) -> dict:
    """Baseline, latest, change, response, remission, clinically meaningful change, onset and durability."""
    plan_id, plan_start = plan if plan is not None else (None, None)
    # Onset and the first dose count the chart plan's own sessions only, never another plan's or unplanned ones.
    first_session = next((row.started_at for row in signed if plan_id is not None and row.plan_id == plan_id), None)
    dose_at = outcomes.first_dose(first_session, plan_start, zone)
    dose = None if dose_at is None else outcomes.epoch_micros(dose_at)
    found = outcomes.baseline(scores.micros, dose)
    if found is None:
        return _NO_SCORES
    baseline, pre_treatment = found
    base, latest = scores.totals[baseline], scores.totals[-1]
    # Onset and durability rest on response: where it is not judged, neither are they.
    first = first_response(scores, baseline, dose) if outcomes.judged(instrument, base) else None
    return dict(
        baseline=Baseline(total=base, recorded_at=scores.instant(baseline), pre_treatment=pre_treatment),
        latest=scores.point(len(scores.totals) - 1), change=latest - base,
        percent_change=outcomes.percent_change(base, latest),
        response=outcomes.response(instrument, base, latest),
        remission=outcomes.remission(instrument, base, latest),
        clinically_meaningful_change=outcomes.clinically_meaningful(instrument, latest - base),
        onset=None if first is None or first_session is None else outcomes.days_between(
            scores.instant(first), first_session),
        durability=None if first is None else durability(scores, baseline, first, bucket),
    )


async def tagged_chart(
    sessions: async_sessionmaker[AsyncSession], caller: Caller, patient_id: uuid.UUID | None, query: ChartQuery
) -> tuple[str, Callable[[], ChartPublic]]:
    """The chart's entity tag, a digest of everything it is computed from (api/conditional.py), and a function that
    computes it: a client whose copy is current is answered without the computation. On PostgreSQL an account's
    read is one statement without an ORM session (opening and closing one costs more than the statement)."""
    instrument = INSTRUMENTS[query.instrument]
    engine = engine_of(sessions)
    read = None
    if patient_id is not None and _one_statement_applies(engine, caller, query):
        read = await queries.read_in_one_statement(
            engine, caller, patient_id, instrument.code, CHARTED_SESSIONS,
            audit.event_values(caller, "chart.read", outcome=audit.SUCCESS, resource_type="patient",
                               resource_id=patient_id, patient_id=patient_id, organization_id=None))
    if read is None:
        async with sessions() as session:
            patient_id, read = await _read(session, caller, patient_id, query)
    return _tagged(patient_id, read, query)


async def chart(session: AsyncSession, caller: Caller, patient_id: uuid.UUID | None, query: ChartQuery) -> ChartPublic:
    """The chart, read in the caller's session (the progress report's)."""
    patient_id, read = await _read(session, caller, patient_id, query)
    _, build = _tagged(patient_id, read, query)
    return build()


async def _read(session: AsyncSession, caller: Caller, patient_id: uuid.UUID | None,
                query: ChartQuery) -> tuple[uuid.UUID, queries.ChartRead]:
    """The ordinary path: `authorize_patient` (scopes, refusals and their audit), then the chart's two statements."""
    patient = await authorize_patient(session, caller, patient_id, "chart.read", allow=READ_SCORES)
    zone = ZoneInfo(patient.timezone)
    _window(query, utcnow().astimezone(zone).date())
    plan, signed = await queries.plan_and_sessions(session, patient.id, CHARTED_SESSIONS)
    rows = await queries.live_totals(session, patient.id, query.instrument)
    await session.commit()  # the audit event
    # The integers PostgreSQL's one statement reads, computed here from the instants.
    micros = [outcomes.epoch_micros(recorded_at) for recorded_at, _ in rows]
    days = [recorded_at.astimezone(zone).date().toordinal() for recorded_at, _ in rows]
    return patient.id, queries.ChartRead(patient.timezone, plan, signed, micros, days, [total for _, total in rows])


def _tagged(patient_id: uuid.UUID, read: queries.ChartRead,
            query: ChartQuery) -> tuple[str, Callable[[], ChartPublic]]:
    instrument = INSTRUMENTS[query.instrument]
    timezone, plan, signed = read.timezone, read.plan, read.signed
    scores = Scores.read(read.micros, read.totals, read.days)
    zone = ZoneInfo(timezone)
    first_day, last_day = _window(query, utcnow().astimezone(zone).date())
    tag = Tag("chart", patient_id, timezone, instrument.code, query.bucket, first_day, last_day, plan)
    tag.add_rows((row.id, row.started_at, row.dose_mg, row.route, row.plan_id) for row in signed)
    tag.add_series(scores.micros, scores.totals)

    def build() -> ChartPublic:
        return ChartPublic(
            instrument=instrument.code, bucket=query.bucket, timezone=timezone, date_from=first_day,
            date_to=last_day, **_outcomes(instrument, scores, query.bucket, plan, signed, zone),
            points=points(scores, query.bucket, first_day, last_day),
            sessions=[ChartSession(id=row.id, started_at=row.started_at, dose_mg=row.dose_mg, route=row.route)
                      for row in signed if first_day <= row.started_at.astimezone(zone).date() <= last_day],
            bands=_BANDS[instrument.code],
        )

    return tag.value, build


def _one_statement_applies(engine: AsyncEngine, caller: Caller, query: ChartQuery) -> bool:
    """PostgreSQL reads a chart in one statement (api/charts/queries.py) for every caller the plain READ permission
    admits (every user role), when the query's range can be checked before the read: it is audited as it is read,
    so a range that turns out invalid must not get that far. Only a lone `from` depends on the patient's own
    today."""
    # API clients take the ordinary path, which checks their scopes.
    if not one_statement(engine) or caller.is_client or caller.role not in READ_SCORES.roles:
        return False
    if query.date_from is not None and query.date_to is None:
        return False
    _window(query, utcnow().date())  # explicit dates are checked alike in every zone; defaults are always valid
    return True

