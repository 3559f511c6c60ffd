"""The chart's statements. Callers have authorised the patient (api.authz) before using these."""

from __future__ import annotations

import datetime as dt
import functools
import uuid
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    BigInteger, ColumnElement, Date, FromClause, Row, ScalarSelect, Select, Uuid, and_, bindparam, case, cast, func,
    literal_column, select, true)
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import aliased
from sqlmodel.ext.asyncio.session import AsyncSession

from api.authz import bound_caller, caller_parameters, visible_patients
from api.security.tokens import Caller
from api.statements import DriverStatement, one_of, row_parameters, typed_row
from api.zones import in_postgres
from models.audit import AuditEvent
from models.dosing_sessions import DosingSession, SessionStatus
from models.patients import Patient
from models.plans import PlanStatus, TreatmentPlan
from models.scores import Score
from models.users import Role


async def live_totals(session: AsyncSession, patient_id: uuid.UUID, instrument: str) -> Sequence[Row]:
    """(recorded_at, total) of every live score of the patient for the instrument, oldest first.

    Served by the patient-leading indexes (ix_score_patient_recorded, or a bitmap scan when the patient's rows are
    spread over many pages); instrument and tombstones are filtered on the heap rows. The whole history, not the
    chart's window: baseline, latest, onset and durability need it.
    """
    return (await session.exec(_LIVE_TOTALS, params={"patient_id": patient_id, "instrument": instrument})).all()


# Built once: composing a statement costs more CPU than PostgreSQL spends running it (charts are a hot path).
_LIVE_TOTALS = (
    select(Score.recorded_at, Score.total)
    .where(Score.patient_id == bindparam("patient_id", type_=Uuid), Score.instrument == bindparam("instrument"),
           Score.deleted_at.is_(None))
    .order_by(Score.recorded_at, Score.id)
)


# Whose chart it is: the active plan, else the most recently started of the plans that were once active. A paused
# plan (a blood-pressure hold) or a finished one (follow-up) must not hide the treatment's effect; a draft has not
# begun. Same start date: the later created one.
CHART_PLAN_STATUSES = (PlanStatus.active, PlanStatus.paused, PlanStatus.completed, PlanStatus.discontinued)


def chart_plan(patient_id: ColumnElement | uuid.UUID, plans: FromClause | None = None) -> Select:
    """The patient's chart plan as `SELECT * FROM plans … ORDER BY … LIMIT 1`, on the plan table or an alias of it.
    Whatever `patient_id` comes from is correlated at any depth: left to auto-correlation, a table two levels up
    (a LATERAL's outer table) would be joined into the subquery instead, and every patient would get one plan. As a
    LATERAL (PostgreSQL) it reaches each patient's plans by index; `plan.id = chart_plan_id(…)` is planned as a
    hash of every plan of the database."""
    plans = TreatmentPlan.__table__ if plans is None else plans
    return (
        select(plans)
        .where(plans.c.patient_id == patient_id, one_of(plans.c.status, CHART_PLAN_STATUSES))
        .order_by(case((plans.c.status == PlanStatus.active, 0), else_=1), plans.c.start_date.desc(),
                  plans.c.created_at.desc(), plans.c.id.desc())
        .limit(1)
        .correlate_except(plans)
    )


def chart_plan_id(patient_id: ColumnElement | uuid.UUID) -> ScalarSelect:
    """The id of the patient's chart plan, as a scalar subquery; it selects from TreatmentPlan, so a statement on
    that table uses an alias for its own rows (or this would correlate to them)."""
    return chart_plan(patient_id).with_only_columns(TreatmentPlan.__table__.c.id).scalar_subquery()


@functools.cache
def _plan_and_sessions(statuses: tuple[SessionStatus, ...]) -> Select:
    """Built once per set of statuses (see _LIVE_TOTALS)."""
    plan = aliased(TreatmentPlan)
    return (
        select(plan.id.label("chart_plan_id"), plan.start_date, DosingSession.id, DosingSession.started_at,
               DosingSession.dose_mg, DosingSession.route, DosingSession.plan_id)
        .select_from(Patient)
        .outerjoin(plan, plan.id == chart_plan_id(Patient.id))
        .outerjoin(DosingSession, and_(DosingSession.patient_id == Patient.id, DosingSession.status.in_(statuses)))
        .where(Patient.id == bindparam("patient_id", type_=Uuid))
        .order_by(DosingSession.started_at, DosingSession.id)
    )


async def plan_and_sessions(
    session: AsyncSession, patient_id: uuid.UUID, statuses: Collection[SessionStatus]
) -> tuple[tuple[uuid.UUID, dt.date] | None, list[Row]]:
    """The patient's chart plan as (id, start_date), if any, and all their sessions in these statuses as (id,
    started_at, dose_mg, route, plan_id), earliest first: one statement, one row per session and at least one.

    Starts from the patient's row and left-joins the one chart plan (a correlated subquery picks it, so the plan
    never multiplies the sessions) and the sessions, which come off ix_dosing_session_patient_started.
    """
    rows = (await session.exec(_plan_and_sessions(tuple(statuses)), params={"patient_id": patient_id})).all()
    first = rows[0] if rows else None
    chart_plan = None if first is None or first.chart_plan_id is None else (first.chart_plan_id, first.start_date)
    return chart_plan, [row for row in rows if row.id is not None]


# --- PostgreSQL: the whole read in one statement (api/statements.py) ----------------------------------------------


@dataclass(frozen=True, slots=True)
class ChartSessionRow:
    id: uuid.UUID
    started_at: dt.datetime
    dose_mg: float
    route: str
    plan_id: uuid.UUID | None


@dataclass(frozen=True, slots=True)
class ChartRead:
    """What `plan_and_sessions` and `live_totals` read, read in one statement with the patient's zone. The scores
    come as integers computed by PostgreSQL: decoding a year of instants and converting each to the patient's
    calendar cost the app more than the rest of the chart (PostgreSQL does both in about 0.3 ms of its own CPU
    per year of scores, and it is the app's process that limits throughput: bench/README.md)."""

    timezone: str
    plan: tuple[uuid.UUID, dt.date] | None
    signed: list[ChartSessionRow]
    micros: list[int]  # each score's instant in microseconds since the Unix epoch
    days: list[int]  # its calendar day in the patient's zone, as a proleptic Gregorian ordinal (date.toordinal())
    totals: list[int]


# date − this = the day's ordinal in Python's numbering, where 0001-01-01 is day 1 (both calendars are proleptic
# Gregorian).
DAY_ZERO = literal_column("DATE '0001-12-31 BC'")


def _ordered(column, *order):
    return func.array_agg(aggregate_order_by(column, *order))


@functools.cache
def _one_statement(role: Role, statuses: tuple[SessionStatus, ...]) -> Select:
    """Visibility (`visible_patients` itself), the audit row, the chart plan, the sessions and the live scores as
    one statement, built once per caller role. No row when the caller may not see the patient."""
    caller = bound_caller(role)
    visible = (select(Patient.id, Patient.timezone, in_postgres(Patient.timezone).label("postgres_zone"))
               .where(Patient.id == bindparam("patient_id", type_=Uuid), visible_patients(caller))
               .cte("visible"))
    names, row = typed_row(AuditEvent.__table__, "audit", visible)
    audit_row = postgresql.insert(AuditEvent.__table__).from_select(names, row).cte("audit_row")
    plan = aliased(TreatmentPlan)
    chart_plan = select(plan.id, plan.start_date).where(plan.id == chart_plan_id(visible.c.id)).lateral("plan")
    in_order = (DosingSession.started_at, DosingSession.id)
    sessions = (
        select(*[_ordered(column, *in_order).label(f"session_{column.key}") for column in (
            DosingSession.id, DosingSession.started_at, DosingSession.dose_mg, DosingSession.route,
            DosingSession.plan_id)])
        .where(DosingSession.patient_id == visible.c.id, one_of(DosingSession.status, statuses))
        .lateral("sessions")
    )
    # The scores in time order come from the index (ix_score_live_patient_instrument ends with recorded_at, id):
    # aggregated from that ordered subquery, the three arrays cost one scan and no sort, where an ORDER BY in each
    # array_agg sorted the year three times. PostgreSQL plans a subquery with an ORDER BY on its own and aggregates
    # its rows as they come, but documents that order only as "usually" kept: `read_in_one_statement` checks it.
    # date_part's float8 epoch is exact to the microsecond for centuries around now (rounded by the cast), where
    # EXTRACT's numeric costs a fifth of the statement.
    micros = cast(func.date_part(literal_column("'epoch'"), Score.recorded_at) * literal_column("1000000"),
                  BigInteger)
    local_day = cast(func.timezone(visible.c.postgres_zone, Score.recorded_at), Date) - DAY_ZERO
    in_order = (
        select(micros.label("micros"), local_day.label("day"), Score.total)
        .where(Score.patient_id == visible.c.id, Score.instrument == bindparam("instrument"),
               Score.deleted_at.is_(None))
        .order_by(Score.recorded_at, Score.id)
        .correlate_except(Score)  # `visible` is two levels up
        .subquery("in_order")
    )
    scores = select(func.array_agg(in_order.c.micros).label("micros"), func.array_agg(in_order.c.day).label("days"),
                    func.array_agg(in_order.c.total).label("totals")).lateral("scores")
    return (
        select(visible.c.timezone, chart_plan.c.id.label("plan_id"), chart_plan.c.start_date, sessions, scores)
        .select_from(visible)
        .outerjoin(chart_plan, true())
        .join(sessions, true())
        .join(scores, true())
        .add_cte(audit_row)
    )


@functools.cache
def _driver_statement(dialect: Dialect, role: Role, statuses: tuple[SessionStatus, ...]) -> DriverStatement:
    return DriverStatement.compile(_one_statement(role, statuses), dialect)


async def read_in_one_statement(
    engine: AsyncEngine, caller: Caller, patient_id: uuid.UUID, instrument: str,
    statuses: Collection[SessionStatus], audit_row: Mapping[str, Any],
) -> ChartRead | None:
    """PostgreSQL: authorises, audits (autocommitted with the read) and reads a chart's inputs in one round trip.
    None when the caller may not see the patient: the ordinary path then answers and audits the refusal."""
    found = await _driver_statement(engine.dialect, caller.role, tuple(statuses)).fetchrow(engine, {
        **caller_parameters(caller), "patient_id": patient_id, "instrument": instrument,
        **row_parameters("audit", AuditEvent.__table__, audit_row),
    })
    if found is None:
        return None
    signed = [ChartSessionRow(*values) for values in zip(
        *(found[f"session_{name}"] or () for name in ("id", "started_at", "dose_mg", "route", "plan_id")),
        strict=True)]
    plan = None if found["plan_id"] is None else (found["plan_id"], found["start_date"])
    return ChartRead(found["timezone"], plan, signed, *in_time_order(
        found["micros"] or [], found["days"] or [], found["totals"] or []))


def in_time_order(micros: list[int], days: list[int], totals: list[int]) -> tuple[list[int], list[int], list[int]]:
    """The scores' three arrays ordered by instant, as they come from the index (one linear pass in C checks it); a
    stable sort if PostgreSQL ever aggregated them in another order (see `_one_statement`)."""
    if micros == sorted(micros):
        return micros, days, totals
    order = sorted(range(len(micros)), key=micros.__getitem__)
    return [micros[i] for i in order], [days[i] for i in order], [totals[i] for i in order]
