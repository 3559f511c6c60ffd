"""The dashboard's statements: a fixed number per page, whatever the panel's size. Each takes the set of patients
being summarised (the page, or the whole panel when the order or a filter needs every row) and answers for all of
them at once. Callers have limited the set to patients the caller may see (api.authz.visible_patients).

Two implementations of the same two reads, `inputs` and `picks`, with the same answers (the dashboard's tests run
on both databases): SQLAlchemy statements through the session (SQLite), and on PostgreSQL statements on the driver
(api/statements.py) that reach every patient's rows through their indexes, so a page costs the same however many
scores its patients have. On PostgreSQL `inputs` also picks each row's scores (`Inputs.picks`), so `picks` runs
only for a row whose first dose PostgreSQL and Python place at different instants (an ambiguous local midnight).
"""

from __future__ import annotations

import datetime as dt
import functools
import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from sqlalchemy import (
    ARRAY, ColumnElement, Date, DateTime, FromClause, Integer, Row, Select, String, Uuid, and_, bindparam, case, cast,
    Text, false, func, literal_column, or_, select, true, tuple_, union_all)
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel.ext.asyncio.session import AsyncSession

from api import outcomes, pagination
from api.audit import service as audit
from api.authz import bound_caller, caller_parameters, visible_patients
from api.charts.queries import DAY_ZERO, chart_plan, chart_plan_id
from api.instruments.registry import GAD7, INSTRUMENTS
from api.patients.service import PATIENT_ORDER, named_like
from api.schedules.queries import last_scores
from api.schedules.rules import NO_DAYS, LocalDays
from api.security.tokens import Caller
from api.statements import DriverStatement
from api.zones import in_postgres
from models.alerts import Alert, AlertPriority, AlertStatus
from models.dosing_sessions import DosingSession, SessionStatus
from models.patients import Patient
from models.plans import TreatmentPlan
from models.scores import Score
from models.users import Role


def panel(visible: ColumnElement[bool], q: str | None) -> Select:
    """(id, full_name, timezone) of the patients the caller may see whose name matches `q`; unordered (the caller
    pages it by name, or orders it in Python)."""
    return named_like(select(Patient.id, Patient.full_name, Patient.timezone).where(visible), q)


class PanelRow(NamedTuple):
    id: uuid.UUID
    full_name: str
    timezone: str


@functools.cache
def _page_statement(role: Role, after: bool) -> Select:
    """`panel` paged by name for a caller of `role` without a name filter, built once: the caller's ids, the cursor
    and the limit are parameters (as in api.authz's own statements)."""
    caller = bound_caller(role)
    return pagination.keyset_once(panel(visible_patients(caller), None), PATIENT_ORDER, after=after)


async def page_by_name(engine: AsyncEngine, caller: Caller, *, limit: int, cursor: str | None, now: dt.datetime
                       ) -> tuple[list[PanelRow], str | None, Inputs]:
    """PostgreSQL: a page of the caller's panel by name, the next cursor and the page's inputs, audited as read by
    the caller: one statement on the driver (`_paged_inputs_statement`)."""
    rows, found = await _paged_inputs(engine, caller, "name", cursor is not None, now, {
        **pagination.cursor_parameters(PATIENT_ORDER, limit=limit, cursor=cursor), "limit": limit})
    return (*pagination.page_of([PanelRow(*row[_PAGE:_PAGE + 3]) for row in rows], PATIENT_ORDER, limit=limit),
            found)


def _open_alert_counts(patient_id: Any) -> Any:
    """(open_alerts, urgent_alerts) of the patient, as a LATERAL (ix_alert_patient_status)."""
    return (select(func.count().label("open_alerts"),
                   func.count().filter(Alert.priority == AlertPriority.urgent).label("urgent_alerts"))
            .where(Alert.patient_id == patient_id, Alert.status == AlertStatus.open)
            .lateral("alerts"))


@functools.cache
def _alerts_page_statement(role: Role, after: bool) -> Select:
    """`panel` in the dashboard's `alerts` order (most urgent open alerts, then most open alerts, then name and id),
    paged by the database, for a caller of `role` without filters; built once, like `_page_statement`."""
    caller = bound_caller(role)
    alerts = _open_alert_counts(Patient.id)
    key = (-alerts.c.urgent_alerts, -alerts.c.open_alerts, Patient.full_name, Patient.id)
    stmt = (panel(visible_patients(caller), None)
            .add_columns(key[0].label("minus_urgent"), key[1].label("minus_open")).join(alerts, true()))
    if after:
        stmt = stmt.where(tuple_(*key) > tuple_(
            bindparam("after_urgent", type_=Integer), bindparam("after_open", type_=Integer),
            bindparam("after_name", type_=String), bindparam("after_id", type_=Uuid)))
    return stmt.order_by(*key).limit(bindparam("limit_and_one", type_=Integer))


async def page_by_alerts(engine: AsyncEngine, caller: Caller, *, limit: int, after: tuple | None, now: dt.datetime
                         ) -> tuple[list[PanelRow], tuple | None, Inputs]:
    """PostgreSQL: a page of the caller's panel in the `alerts` order after the sort key `after` (the dashboard's
    cursor: (−urgent, −open, name, id)), the last row's key when more rows follow, and the page's inputs, audited
    as read by the caller: one statement on the driver (`_paged_inputs_statement`), so the counts the page is
    ordered by are those its rows show."""
    position = {}
    if after is not None:
        urgent, open_, name, patient_id = after
        position = {"after_urgent": urgent, "after_open": open_, "after_name": name, "after_id": uuid.UUID(patient_id)}
    rows, found = await _paged_inputs(engine, caller, "alerts", after is not None, now,
                                      {"limit_and_one": limit + 1, "limit": limit, **position})
    page = [row[_PAGE:] for row in rows[:limit]]
    last = (page[-1][3], page[-1][4], page[-1][1], str(page[-1][0])) if len(rows) > limit else None
    return [PanelRow(*row[:3]) for row in page], last, found


class PlanFacts(NamedTuple):
    """A patient's chart plan (the chart's own rule, `chart_plan_id`; all None without one) with the start of its
    first signed session, and the patient's last signed session."""

    plan_id: uuid.UUID | None
    status: str | None
    start_date: dt.date | None
    assessments: list[dict[str, Any]] | None
    first_session_at: dt.datetime | None
    last_session_at: dt.datetime | None


class Recent(NamedTuple):
    """A patient's recent live scores of one instrument, as the schedule and the trend use them: the local days
    with a score (over the adherence window), and each fortnight's sum and count (`outcomes.trend_windows`)."""

    days: LocalDays
    recent_sum: int = 0
    recent_n: int = 0
    prior_sum: int = 0
    prior_n: int = 0


NONE_RECENT = Recent(NO_DAYS)


@dataclass(frozen=True, slots=True)
class Inputs:
    """What a page is computed from, for every patient asked about."""

    plans: dict[uuid.UUID, PlanFacts]
    # The local day of each instrument's last live score; absent: none. On PostgreSQL only of the instruments a row
    # can use: those with a recent score, gad7 and the ones its chart plan schedules.
    last: dict[tuple[uuid.UUID, str], dt.date]
    last_score_at: dict[uuid.UUID, dt.datetime]  # the instant of the last live score of any instrument
    recent: dict[tuple[uuid.UUID, str], Recent]  # absent: no live score since RECENT ago
    alerts: dict[uuid.UUID, tuple[int, int]]  # (open, urgent open); absent: none
    # PostgreSQL only: each patient's picks for the instrument shown and the first dose as PostgreSQL found them (the
    # chart plan's first scheduled instrument, else gad7; `outcomes.first_dose`), keyed by them. The caller uses a
    # pick only when its own (instrument, dose) are the same: at a local midnight that a clock change makes
    # ambiguous, PostgreSQL and zoneinfo choose different instants for the end of a plan's start date.
    picks: dict[Wanted, Picks]


class ScoreValue(NamedTuple):
    recorded_at: dt.datetime
    total: int
    severity: str | None


class Picks(NamedTuple):
    """One patient's scores of the instrument the row shows: the chart's baseline total (the last live score before
    the first dose; without one, the first) and the latest score."""

    baseline_total: int
    latest: ScoreValue


# The audit action of a page's rows (one event per patient shown).
READ_ACTION = "dashboard.read"


# A wanted pick: (patient, instrument, first dose or None), for a patient with live scores of the instrument.
Wanted = tuple[uuid.UUID, str, dt.datetime | None]


# Scores read per patient for the trend (two fortnights) and the schedule's 28 local days, with a day to spare for
# the patient's zone.
RECENT = dt.timedelta(days=29)
_DAY = dt.timedelta(days=1)
_LAST_INSTANT = dt.datetime.max.replace(tzinfo=dt.UTC)  # no instant the API takes or stores is later


async def inputs(session: AsyncSession, engine: AsyncEngine | None, patients: Sequence[Row], now: dt.datetime,
                 audit_as: Caller | None = None) -> Inputs:
    """Of these (id, full_name, timezone) patients. On PostgreSQL (`engine` given) one statement on the driver,
    which also writes the `dashboard.read` audit row of each patient when `audit_as` is the caller; else four
    through the session, and `audit_as` is ignored."""
    if engine is not None:
        return await _driver_inputs(engine, [patient.id for patient in patients], now, audit_as)
    ids = [patient.id for patient in patients]
    zones = {patient.id: ZoneInfo(patient.timezone) for patient in patients}
    last = await last_scores(session, ids, _CODES)
    last_score_at: dict[uuid.UUID, dt.datetime] = {}
    for (pid, _), at in last.items():
        last_score_at[pid] = max(at, last_score_at.get(pid, at))
    return Inputs(await plans(session, ids), {key: at.astimezone(zones[key[0]]).date() for key, at in last.items()},
                  last_score_at, await recent_scores(session, patients, now), await open_alerts(session, ids), {})


async def picks(session: AsyncSession, engine: AsyncEngine | None, wanted: Sequence[Wanted]
                ) -> dict[uuid.UUID, Picks]:
    """The baseline and latest live score of each wanted (patient, instrument): on PostgreSQL one statement on the
    driver; else three through the session."""
    if engine is not None:
        return await _driver_picks(engine, wanted)
    spans = await score_spans(session, [pid for pid, _, _ in wanted])
    before = await last_before(session, [(pid, code, dose) for pid, code, dose in wanted if dose is not None])
    instants = {(pid, code, at) for pid, code, _ in wanted
                for at in (*spans[(pid, code)], *([before[pid]] if pid in before else []))}
    values = await scores_at(session, instants)
    found = {}
    for pid, code, _ in wanted:
        first, last = spans[(pid, code)]
        found[pid] = Picks(values[(pid, code, before.get(pid, first))].total, values[(pid, code, last)])
    return found


def _plan_facts(which: ColumnElement[bool] | None, *, lateral: bool = False, patient: FromClause = Patient.__table__
                ) -> tuple[Select, FromClause, ColumnElement]:
    """`PlanFacts` of the patients `which` selects from `patient` (the patient table, or a page of it: any FROM with
    their `id` and `timezone`), with their patient id first; with the chart plan and the start of its first signed
    session, for statements that add to it. `lateral` (PostgreSQL) reaches each chart plan and its sessions from its
    patient; a plain join would hash every plan of the database."""
    pid = patient.c.id
    plans = TreatmentPlan.__table__.alias("chart_plan")  # chart_plan_id selects from the table itself
    plan = chart_plan(pid, plans).lateral("plan") if lateral else plans
    signed = DosingSession.status == SessionStatus.signed
    # One probe of ix_dosing_session_signed_plan_started.
    first_session = (select(func.min(DosingSession.started_at).label("started_at"))
                     .where(DosingSession.patient_id == pid, DosingSession.plan_id == plan.c.id, signed))
    last_session = (select(func.max(DosingSession.started_at))
                    .where(DosingSession.patient_id == pid, signed).scalar_subquery())
    first = first_session.lateral("first_session") if lateral else None
    first_session_at = first.c.started_at if first is not None else first_session.scalar_subquery()
    stmt = (
        select(pid.label("patient_id"), plan.c.id.label("plan_id"), plan.c.status, plan.c.start_date,
               plan.c.assessments, first_session_at.label("first_session_at"), last_session.label("last_session_at"))
        .select_from(patient)
        .outerjoin(plan, true() if lateral else plan.c.id == chart_plan_id(pid))
    )
    if which is not None:
        stmt = stmt.where(which)
    return (stmt.join(first, true()) if first is not None else stmt), plan, first_session_at


async def plans(session: AsyncSession, patient_ids: Collection[uuid.UUID]) -> dict[uuid.UUID, PlanFacts]:
    rows = (await session.exec(_plan_facts(Patient.id.in_(patient_ids))[0])).all()
    return {row.patient_id: PlanFacts(*row[1:]) for row in rows}


async def score_spans(session: AsyncSession, patient_ids: Collection[uuid.UUID]
                      ) -> dict[tuple[uuid.UUID, str], tuple[dt.datetime, dt.datetime]]:
    """(first, last) instant of each patient's live scores of each instrument."""
    stmt = (
        select(Score.patient_id, Score.instrument, func.min(Score.recorded_at), func.max(Score.recorded_at))
        .where(Score.patient_id.in_(patient_ids), Score.deleted_at.is_(None))
        .group_by(Score.patient_id, Score.instrument)
    )
    return {(pid, instrument): (first, last) for pid, instrument, first, last in (await session.exec(stmt)).all()}


async def recent_scores(session: AsyncSession, patients: Sequence[Row], now: dt.datetime
                        ) -> dict[tuple[uuid.UUID, str], Recent]:
    """Each patient's recent live scores of each instrument."""
    zones = {patient.id: ZoneInfo(patient.timezone) for patient in patients}
    start, split = outcomes.trend_windows(now)
    found: dict[tuple[uuid.UUID, str], list] = {}
    stmt = (
        select(Score.patient_id, Score.instrument, Score.recorded_at, Score.total)
        .where(Score.patient_id.in_(list(zones)), Score.deleted_at.is_(None), Score.recorded_at > now - RECENT)
    )
    for pid, instrument, recorded_at, total in (await session.exec(stmt)).all():
        days, sums = found.setdefault((pid, instrument), (set(), [0, 0, 0, 0]))
        days.add(recorded_at.astimezone(zones[pid]).date())
        if split < recorded_at <= now:
            sums[0] += total
            sums[1] += 1
        elif start < recorded_at <= split:
            sums[2] += total
            sums[3] += 1
    return {key: Recent(LocalDays.of(days), *sums) for key, (days, sums) in found.items()}


async def last_before(session: AsyncSession, wanted: Sequence[tuple[uuid.UUID, str, dt.datetime]]
                      ) -> dict[uuid.UUID, dt.datetime]:
    """Per (patient, instrument, instant): the patient's last live score of that instrument before the instant."""
    condition = or_(*[and_(Score.patient_id == pid, Score.instrument == instrument, Score.recorded_at < before)
                      for pid, instrument, before in wanted]) if wanted else false()
    stmt = (select(Score.patient_id, func.max(Score.recorded_at))
            .where(condition, Score.deleted_at.is_(None)).group_by(Score.patient_id))
    return dict((await session.exec(stmt)).all())


async def scores_at(session: AsyncSession, wanted: Collection[tuple[uuid.UUID, str, dt.datetime]]
                    ) -> dict[tuple[uuid.UUID, str, dt.datetime], ScoreValue]:
    """The live score of each (patient, instrument, instant): total and severity."""
    condition = or_(*[and_(Score.patient_id == pid, Score.instrument == instrument, Score.recorded_at == at)
                      for pid, instrument, at in wanted]) if wanted else false()
    stmt = (select(Score.patient_id, Score.instrument, Score.recorded_at, Score.total, Score.severity)
            .where(condition, Score.deleted_at.is_(None)).order_by(Score.id))
    return {(row.patient_id, row.instrument, row.recorded_at): ScoreValue(row.recorded_at, row.total, row.severity)
            for row in (await session.exec(stmt)).all()}


async def open_alerts(session: AsyncSession, patient_ids: Collection[uuid.UUID]) -> dict[uuid.UUID, tuple[int, int]]:
    """(open, urgent open) alerts per patient."""
    stmt = (
        select(Alert.patient_id, func.count(),
               func.sum(case((Alert.priority == AlertPriority.urgent, 1), else_=0)))
        .where(Alert.patient_id.in_(patient_ids), Alert.status == AlertStatus.open)
        .group_by(Alert.patient_id)
    )
    return {pid: (count, int(urgent or 0)) for pid, count, urgent in (await session.exec(stmt)).all()}


# --- PostgreSQL: each read in one statement on the driver (api/statements.py) -------------------------------------

# A patient's scores are of registered instruments only (api.scores validates the code): the last of each is an
# index probe (ix_score_live_patient_instrument), not a scan of the patient's history. The first is read only for
# the instrument shown (`picks`).
_CODES = tuple(INSTRUMENTS)


# What the recent scores are reduced to, per instrument: the local days with a score as bits (`LocalDays`) and the
# two fortnights' sums and counts (`outcomes.trend_windows`).
_RECENT = ("instrument", "days", "recent_sum", "recent_n", "prior_sum", "prior_n")
_RECENT_COLUMNS = tuple(f"recent_{name}" for name in _RECENT)
_LAST_COLUMNS = tuple((code, f"last_{code}") for code in _CODES)
_INPUT_COLUMNS = ("patient_id", *PlanFacts._fields, "last_days", "last_score_at", *_RECENT_COLUMNS, "open_alerts",
                  "urgent_alerts", "shown_instrument", "shown_dose", "baseline_total", "latest_recorded_at",
                  "latest_total", "latest_severity")


def _shown_scores(patient_id: ColumnElement, instrument: ColumnElement, dose: ColumnElement) -> tuple[Any, Any]:
    """The baseline total and the latest live score of one instrument, as two LATERALs that reach them by index
    (ix_score_live_patient_instrument). The baseline is the chart's (`outcomes.baseline`): the last score before the
    first dose, else the first; a UNION ALL that stops at its first row, so the first score is read only when none
    precedes the dose (or there is no dose)."""
    def one(*condition: ColumnElement[bool], columns: tuple, last: bool) -> Select:
        order = (Score.recorded_at.desc(), Score.id.desc()) if last else (Score.recorded_at, Score.id)
        return (select(*columns)
                .where(Score.patient_id == patient_id, Score.instrument == instrument, Score.deleted_at.is_(None),
                       *condition)
                .order_by(*order).limit(1).correlate_except(Score))

    latest = one(columns=(Score.recorded_at, Score.total, Score.severity), last=True).lateral("latest")
    baseline = union_all(one(Score.recorded_at < dose, columns=(Score.total,), last=True),
                         one(columns=(Score.total,), last=False)).limit(1).lateral("baseline")
    return baseline, latest


def _shown_columns(baseline: Any, latest: Any) -> list[ColumnElement]:
    return [baseline.c.total.label("baseline_total"), latest.c.recorded_at.label("latest_recorded_at"),
            latest.c.total.label("latest_total"), latest.c.severity.label("latest_severity")]


def _picked(baseline_total: int | None, latest_at: dt.datetime | None, latest_total: int | None,
            latest_severity: str | None) -> Picks | None:
    """The picks from `_shown_columns`' values, in their order; None without a latest score."""
    return None if latest_at is None else Picks(baseline_total, ScoreValue(latest_at, latest_total, latest_severity))


# The last bit a recent day can take: the day after `until` (`_window_parameters`), counted from `origin`.
_LAST_DAY_BIT = RECENT.days + 5


def day_starts(zones: FromClause, origin: ColumnElement[dt.date]) -> Select:
    """`zones`' rows (a FROM with a `timezone` column) each with its `postgres_zone` (`api.zones.in_postgres`) and
    its `starts`: the instants at which the local days after `origin` begin in its zone, day 1 to day
    `_LAST_DAY_BIT`, in order. An instant's local day is then `origin` plus the number of starts it is at or after
    (`width_bucket`, a binary search): a page converts each of its few zones 34 times instead of each of its 3,000
    recent scores once, which was a sixth of its PostgreSQL time (bench/README.md, 2026-11-30).

    A day begins at its local midnight: where a clock change skips midnight (Cairo, Santiago: 00:00 → 01:00), at
    the change, which is where PostgreSQL places a local time that does not exist; where midnight comes twice, at
    the first. The count is the local day as long as local days never go back, which no zone's clocks now do across
    midnight (St John's did until 2011; tests/test_dashboard.py checks every zone around every clock change from
    now to the end of next year against zoneinfo)."""
    days = func.generate_series(1, _LAST_DAY_BIT).table_valued("k").render_derived("day")
    zone = in_postgres(zones.c.timezone)
    midnight = func.timezone(zone, cast(origin + days.c.k, DateTime()))
    # Where clocks go back an hour at 01:00 to 00:00 (Havana), midnight comes twice and PostgreSQL places it at the
    # second: the day began an hour after the previous day's 23:00.
    eve = func.timezone(zone, cast(origin + days.c.k - 1, DateTime()) + literal_column("interval '23 hours'"))
    start = func.least(midnight, eve + literal_column("interval '1 hour'"))
    return (select(*zones.c, zone.label("postgres_zone"),
                   func.array_agg(postgresql.aggregate_order_by(start, days.c.k)).label("starts"))
            .select_from(zones).join(days, true()).group_by(*zones.c))


def _inputs_select(which: ColumnElement[bool] | None, patient: FromClause = Patient.__table__) -> Select:
    """The `_INPUT_COLUMNS` of the patients `which` selects from `patient` (`_plan_facts`), one row each."""
    pid, zone = patient.c.id, patient.c.timezone
    def last(*instrument: ColumnElement[bool]) -> Any:
        return (select(func.max(Score.recorded_at))
                .where(Score.patient_id == pid, *instrument, Score.deleted_at.is_(None))
                .correlate_except(Score)  # the patient is two levels up (see api.charts.queries.chart_plan)
                .scalar_subquery())

    # One pass over the patient's recent index entries, one row per instrument, folded into arrays. A day is a bit:
    # its local date in the patient's zone minus `origin` (a month before today), so a page's days are a few
    # integers to decode rather than a date per score. Scores after `until` cannot fall on a day up to today in any
    # zone, and are left out of the days so that every bit fits in a bigint.
    now, start, split, since, until, no_later = (bindparam(name, type_=DateTime(timezone=True))
                                                 for name in ("now", "start", "split", "since", "until", "no_later"))
    at = Score.recorded_at
    zones = select(zone.label("timezone")).distinct().select_from(patient)
    starts = day_starts((zones if which is None else zones.where(which)).subquery("zones"),
                        bindparam("origin", type_=Date)).cte("day_starts")
    day = func.width_bucket(at, starts.c.starts)
    in_recent, in_prior = and_(at > split, at <= now), and_(at > start, at <= split)
    by_instrument = (
        select(Score.instrument.label("instrument"),
               func.coalesce(func.bit_or(literal_column("1::bigint").op("<<")(day)).filter(at <= until), 0)
               .label("days"),
               func.coalesce(func.sum(Score.total).filter(in_recent), 0).label("recent_sum"),
               func.count().filter(in_recent).label("recent_n"),
               func.coalesce(func.sum(Score.total).filter(in_prior), 0).label("prior_sum"),
               func.count().filter(in_prior).label("prior_n"),
               func.max(at).label("last"))
        # One range of ix_score_patient_recorded, which carries the instrument, total and deletion: every
        # instrument's scores since `since`, from the index alone. (The instrument index needs a descent per
        # instrument, and without naming them reads every live score of the patient, 365 for a year.)
        # `at <= no_later` leaves out nothing (it is the last instant a score can have) but makes the window a
        # range between two parameters, which PostgreSQL estimates at 0.5 % of the rows instead of a third: with a
        # third, its plan for any parameters (a generic plan) looked costlier than planning for each request's
        # values, so every page was planned anew (0.9 ms); now the generic plan is kept (bench/README.md).
        .where(Score.patient_id == pid, Score.deleted_at.is_(None), at > since, at <= no_later)
        .group_by(Score.instrument)
        .correlate_except(Score)
        .subquery("by_instrument")
    )
    recent = select(*[func.array_agg(by_instrument.c[name]).label(column)
                      for name, column in zip(_RECENT, _RECENT_COLUMNS, strict=True)],
                    *[func.max(by_instrument.c.last).filter(by_instrument.c.instrument == code).label(column)
                      for code, column in _LAST_COLUMNS]).lateral("recent")
    alerts = _open_alert_counts(pid)
    facts, plan, first_session_at = _plan_facts(which, lateral=True, patient=patient)
    # Each instrument's last score is its last recent one when it has any (every recent score is after `since`);
    # COALESCE evaluates the index probe only when it has none, and only for an instrument the row can use
    # (`Inputs.last`): gad7, the row's instrument without a plan, and those the plan schedules. A scheduled code
    # is a quoted string in the plan's `assessments` text, whose only strings are codes: a LIKE, not a JSON parse.
    # Read as the local day the schedule needs. (OFFSET 0 keeps PostgreSQL from pulling the subquery up into its
    # uses, which probed twice.)
    def last_of(code: str, recent_column: str) -> Any:
        probe = last(Score.instrument == literal_column(f"'{code}'"))
        if code != GAD7.code:
            probe = case((cast(plan.c.assessments, Text).like(f'%"{code}"%'), probe))
        return func.coalesce(recent.c[recent_column], probe).label(code)

    lasts = select(*[last_of(code, column) for code, column in _LAST_COLUMNS]
                   ).correlate(patient, recent, plan).offset(0).lateral("lasts")
    # The patient's last score of any instrument: the latest recent one, else one probe of all their live scores.
    last_score_at = func.coalesce(func.greatest(*[recent.c[column] for _, column in _LAST_COLUMNS]), last())
    # The row's instrument and first dose as `summarise` chooses them, so that the picks come in the same statement:
    # the plan's first scheduled instrument, else gad7; its first signed session, else the end of its start date.
    end_of_start = func.timezone(starts.c.postgres_zone, cast(plan.c.start_date + 1, DateTime()),
                                 type_=DateTime(timezone=True))
    shown = select(func.coalesce(plan.c.assessments[0]["instrument"].as_string(), GAD7.code).label("instrument"),
                   func.coalesce(first_session_at, end_of_start).label("dose")
                   ).correlate(patient, plan, first_session_at.table, starts).lateral("shown")
    baseline, latest = _shown_scores(pid, shown.c.instrument, shown.c.dose)
    # The local day of each instrument's last score, as days since DAY_ZERO, in _CODES order.
    last_days = postgresql.array([cast(func.timezone(starts.c.postgres_zone, lasts.c[code]), Date) - DAY_ZERO
                                  for code in _CODES])
    stmt = (
        facts
        .add_columns(last_days.label("last_days"),
                     last_score_at.label("last_score_at"),
                     *[recent.c[column] for column in _RECENT_COLUMNS], alerts.c.open_alerts, alerts.c.urgent_alerts,
                     shown.c.instrument.label("shown_instrument"), shown.c.dose.label("shown_dose"),
                     *_shown_columns(baseline, latest))
        .join(starts, starts.c.timezone == zone)
        .join(recent, true())
        .join(lasts, true())
        .join(alerts, true())
        .join(shown, true())
        .outerjoin(latest, true())
        .outerjoin(baseline, true())
    )
    # `_unpacked` reads each row by position.
    assert tuple(stmt.selected_columns.keys()) == _INPUT_COLUMNS, tuple(stmt.selected_columns.keys())
    return stmt


# Where a paged statement's page columns start in its rows: after the inputs.
_PAGE = len(_INPUT_COLUMNS)


@functools.cache
def _inputs_statement(audited: bool) -> Select:
    """`_inputs_select` of the patients in the array parameter `patient_ids`."""
    stmt = _inputs_select(Patient.id == func.any(bindparam("patient_ids", type_=ARRAY(Uuid))))
    # PostgreSQL runs a data-modifying WITH to completion whether or not the query reads it.
    return stmt.add_cte(audit.patient_reads().cte("audited")) if audited else stmt


@functools.cache
def _paged_inputs_statement(order: str, role: Role, after: bool) -> Select:
    """A page of the panel in one of the orders the database pages (`_page_statement`, `_alerts_page_statement`,
    here a WITH), each row's `_INPUT_COLUMNS` followed by the page statement's columns, in the page's order, and
    the audit rows of the page's patients: one round trip for what took two. The page holds one row more than
    asked (to know whether another page follows): its inputs are read, but it is neither audited nor shown."""
    page = (_page_statement if order == "name" else _alerts_page_statement)(role, after).cte("page")
    key = ([page.c.full_name, page.c.id] if order == "name"
           else [page.c.minus_urgent, page.c.minus_open, page.c.full_name, page.c.id])
    shown = (select(page.c.id, func.row_number().over(order_by=key).label("n")).order_by(*key)
             .limit(bindparam("limit", type_=Integer)))
    # The page's own rows are the patients the LATERALs start from: joined to the patient table instead, PostgreSQL
    # hashed the whole table (a scan that grows with the database), or, with the page as a mere filter, summarised
    # every patient before applying it.
    inputs = _inputs_select(None, patient=page)
    return inputs.add_columns(*page.c).order_by(*key).add_cte(audit.patient_reads(shown).cte("audited"))


@functools.cache
def _inputs_driver(dialect: Dialect, audited: bool) -> DriverStatement:
    return DriverStatement.compile(_inputs_statement(audited), dialect)


@functools.cache
def _paged_inputs_driver(dialect: Dialect, order: str, role: Role, after: bool) -> DriverStatement:
    return DriverStatement.compile(_paged_inputs_statement(order, role, after), dialect)


def _window_parameters(now: dt.datetime) -> dict[str, Any]:
    start, split = outcomes.trend_windows(now)
    # Local days are within a day of the UTC date in every zone: bit 0 is two days before the earliest recent one,
    # and the latest kept (`until`, plus a day) is bit `_LAST_DAY_BIT` or less.
    since, until = now - RECENT, now + 2 * _DAY
    return {"since": since, "until": until, "now": now, "start": start, "split": split,
            "origin": since.date() - 2 * _DAY, "no_later": _LAST_INSTANT}


async def _driver_inputs(engine: AsyncEngine, patient_ids: Sequence[uuid.UUID], now: dt.datetime,
                         audit_as: Caller | None) -> Inputs:
    window = _window_parameters(now)
    audited = {} if audit_as is None else audit.patient_read_parameters(audit_as, READ_ACTION, "patient")
    rows = await _inputs_driver(engine.dialect, audit_as is not None).fetch(engine, {
        "patient_ids": list(patient_ids), **window, **audited})
    return _unpacked(rows, window["origin"])


async def _paged_inputs(engine: AsyncEngine, caller: Caller, order: str, after: bool, now: dt.datetime,
                        page: dict[str, Any]) -> tuple[list[Any], Inputs]:
    """The rows of `_paged_inputs_statement` (after a cursor's position when `after`) and their `Inputs`."""
    window = _window_parameters(now)
    rows = await _paged_inputs_driver(engine.dialect, order, caller.role, after).fetch(engine, {
        **caller_parameters(caller), **page, **window,
        **audit.patient_read_parameters(caller, READ_ACTION, "patient")})
    return rows, _unpacked(rows, window["origin"])


def _unpacked(rows: Sequence[Any], origin: dt.date) -> Inputs:
    """`Inputs` from rows of `_INPUT_COLUMNS` (and, in a paged statement's, the page's columns after them)."""
    found = Inputs({}, {}, {}, {}, {}, {})
    first_day = origin.toordinal()
    for (pid, plan_id, status, start_date, assessments, first_session_at, last_session_at, last_days, last_score_at,
         instruments, days, recent_sums, recent_ns, prior_sums, prior_ns, open_alerts, urgent_alerts,
         shown_instrument, shown_dose, baseline_total, latest_at, latest_total, latest_severity, *_) in rows:
        found.plans[pid] = PlanFacts(plan_id, status, start_date, assessments, first_session_at, last_session_at)
        if last_score_at is not None:
            found.last_score_at[pid] = last_score_at
            for code, last in zip(_CODES, last_days, strict=True):
                if last is not None:
                    found.last[(pid, code)] = dt.date.fromordinal(last)
        if instruments:
            for code, bits, *sums in zip(instruments, days, recent_sums, recent_ns, prior_sums, prior_ns,
                                         strict=True):
                found.recent[(pid, code)] = Recent(LocalDays(first_day, bits), *sums)
        if open_alerts:
            found.alerts[pid] = (open_alerts, urgent_alerts)
        picked = _picked(baseline_total, latest_at, latest_total, latest_severity)
        if picked is not None:
            found.picks[(pid, shown_instrument, shown_dose)] = picked
    return found


@functools.cache
def _picks_statement() -> Select:
    wanted = func.unnest(bindparam("patient_ids", type_=ARRAY(Uuid)), bindparam("instruments", type_=ARRAY(String)),
                         bindparam("doses", type_=ARRAY(DateTime(timezone=True)))
                         ).table_valued("patient_id", "instrument", "dose").render_derived("wanted")
    baseline, latest = _shown_scores(wanted.c.patient_id, wanted.c.instrument, wanted.c.dose)
    return (
        select(wanted.c.patient_id, *_shown_columns(baseline, latest))
        .select_from(wanted)
        .join(latest, true())
        .join(baseline, true())
    )


@functools.cache
def _picks_driver(dialect: Dialect) -> DriverStatement:
    return DriverStatement.compile(_picks_statement(), dialect)


async def _driver_picks(engine: AsyncEngine, wanted: Sequence[Wanted]) -> dict[uuid.UUID, Picks]:
    if not wanted:
        return {}
    pids, codes, doses = (list(column) for column in zip(*wanted, strict=True))
    rows = await _picks_driver(engine.dialect).fetch(
        engine, {"patient_ids": pids, "instruments": codes, "doses": doses})
    return {row[0]: _picked(*row[1:]) for row in rows}  # type: ignore[misc]
