"""The `worsening` alert: a new score worse than the baseline by at least the instrument's clinically meaningful
change (the contract's "Charts, dashboards, alerts"), raised in the score's own transaction, once per plan and
instrument until acknowledged.

The baseline is the chart's (docs/charts.md): of the chart plan (the active one, else the most recently started
paused, completed or discontinued one), the last live score before the first dose — the start of that plan's first
signed session, or the end of its start date in the patient's zone while it has none — else the first score. Only
instruments with a clinically meaningful change (GAD-7 4, PHQ-9 5) and patients with a chart plan are judged; a
score recorded before the baseline says nothing about change since it.

PostgreSQL stores most scores in one statement (api/scores/queries.py); that statement refuses to store a score
that `cannot_worsen` does not clear (the same rule, in SQL) and leaves it to the ordinary path, which stores it and
raises the alert here, in one transaction. The SQL can only be more cautious than the rule: the new score is not
yet among the scores it sees, and it changes the baseline only by becoming the baseline itself, which is never an
alert.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import DateTime, Integer, String, TextClause, Uuid, bindparam, func, select, text
from sqlalchemy.orm import aliased
from sqlmodel.ext.asyncio.session import AsyncSession

from api import outcomes
from api.alerts.service import raise_alert
from api.charts.queries import CHART_PLAN_STATUSES, chart_plan_id
from api.instruments.registry import INSTRUMENTS
from api.security.tokens import Caller
from api.zones import in_postgres_sql
from models.alerts import AlertPriority, AlertStatus
from models.dosing_sessions import DosingSession, SessionStatus
from models.patients import Patient
from models.plans import PlanStatus, TreatmentPlan
from models.scores import Score


@dataclass(frozen=True, slots=True)
class PlanBaseline:
    plan_id: uuid.UUID
    total: int
    recorded_at: dt.datetime


def _chart_plan_statement():
    plan = aliased(TreatmentPlan)
    first_session = (
        select(func.min(DosingSession.started_at))
        # By patient first: ix_dosing_session_patient_started finds the few sessions (there is no plan_id index).
        .where(DosingSession.patient_id == Patient.id, DosingSession.plan_id == plan.id,
               DosingSession.status == SessionStatus.signed)
        .scalar_subquery()
    )
    return (
        select(Patient.timezone, plan.id.label("plan_id"), plan.start_date, first_session.label("first_session_at"))
        .select_from(Patient)
        .join(plan, plan.id == chart_plan_id(Patient.id))
        .where(Patient.id == bindparam("patient_id", type_=Uuid))
    )


def _live():
    return select(Score.total, Score.recorded_at).where(
        Score.patient_id == bindparam("patient_id", type_=Uuid), Score.instrument == bindparam("instrument"),
        Score.deleted_at.is_(None))


# Built once (composing statements costs more than running them).
_CHART_PLAN = _chart_plan_statement()
_LAST_BEFORE_DOSE = (_live().where(Score.recorded_at < bindparam("dose"))
                     .order_by(Score.recorded_at.desc(), Score.id.desc()).limit(1))
_FIRST = _live().order_by(Score.recorded_at, Score.id).limit(1)


async def plan_baseline(session: AsyncSession, patient_id: uuid.UUID, instrument: str) -> PlanBaseline | None:
    """The chart plan and the instrument's baseline total, or None without either."""
    plan = (await session.exec(_CHART_PLAN, params={"patient_id": patient_id})).first()
    if plan is None:
        return None
    dose = outcomes.first_dose(plan.first_session_at, plan.start_date, ZoneInfo(plan.timezone))
    params: dict[str, Any] = {"patient_id": patient_id, "instrument": instrument, "dose": dose}
    found = (await session.exec(_LAST_BEFORE_DOSE, params=params)).first()
    if found is None:
        found = (await session.exec(_FIRST, params=params)).first()
    return None if found is None else PlanBaseline(plan.plan_id, found.total, found.recorded_at)


def worse(score: Mapping[str, Any], baseline: PlanBaseline, mcid: int) -> bool:
    return score["recorded_at"] > baseline.recorded_at and score["total"] - baseline.total >= mcid


async def raise_if_worsening(
    session: AsyncSession, caller: Caller, organization_id: uuid.UUID, patient_id: uuid.UUID,
    scores: Sequence[Mapping[str, Any]],
) -> None:
    """Raises one worsening alert per instrument for the patient's newly stored `scores` (already flushed), for
    the earliest one that is worse than the baseline. A bounded number of statements whatever their number."""
    by_instrument: dict[str, list[Mapping[str, Any]]] = {}
    for score in scores:
        if INSTRUMENTS[score["instrument"]].clinically_meaningful_change is not None:
            by_instrument.setdefault(score["instrument"], []).append(score)
    for code, candidates in by_instrument.items():
        instrument = INSTRUMENTS[code]
        mcid = instrument.clinically_meaningful_change
        assert mcid is not None
        baseline = await plan_baseline(session, patient_id, code)
        if baseline is None:
            continue
        worsened = [score for score in candidates if worse(score, baseline, mcid)]
        if not worsened:
            continue
        first = min(worsened, key=lambda score: (score["recorded_at"], score["id"]))
        change = first["total"] - baseline.total
        await raise_alert(
            session, caller, organization_id=organization_id, patient_id=patient_id, kind=f"{code}_worsening",
            priority=AlertPriority.high, source_type="score", source_id=first["id"], plan_id=baseline.plan_id,
            message=(f"{instrument.name} total {first['total']} is {change} points above the baseline of "
                     f"{baseline.total} (at least the clinically meaningful change of {mcid})"),
        )


# --- the same rule in SQL, for PostgreSQL's one-statement insert ---------------------------------------------------

_ACTIVE_FIRST = f"CASE WHEN tp.status = '{PlanStatus.active.value}' THEN 0 ELSE 1 END"
_STATUSES = ", ".join(f"'{status.value}'" for status in CHART_PLAN_STATUSES)

_ZONE = in_postgres_sql("p.timezone")


def _offset(instant: str) -> str:
    """The patient's UTC offset at an instant, as an interval."""
    return f"(({instant}) AT TIME ZONE {_ZONE} - ({instant}) AT TIME ZONE 'UTC')"


# Parameters: worsening_patient_id, worsening_instrument, worsening_total, worsening_recorded_at, worsening_mcid
# (NULL for an instrument without a clinically meaningful change: never worse). The open alert is found by the
# partial unique index on (plan_id, kind) of open alerts, the one `raise_alert` relies on.
#
# Without a signed session the first dose is the end of the plan's start date, a local midnight. Where clocks go
# back around midnight (Havana, 1 November 2026: 01:00 -> 00:00) that midnight comes twice; the rule (zoneinfo, as
# the chart) takes the first, PostgreSQL's AT TIME ZONE the second, and a score between the two would be the
# baseline here but not for the rule. When the offset fell within the three hours before PostgreSQL's midnight (every
# clock change is shorter), the score is left to the ordinary path, which applies the rule itself.
#
# OFFSET 0 keeps `first` a subquery of its own: pulled up into its uses, PostgreSQL looked the first signed session
# up twice per score (statement execution 0.319 -> 0.270 ms, best of 80, bench/README.md).
_CANNOT_WORSEN = f"""NOT EXISTS (
  SELECT 1
  FROM patient AS p
  CROSS JOIN LATERAL (
    SELECT tp.id, tp.start_date FROM treatment_plan AS tp
    WHERE tp.patient_id = p.id AND tp.status IN ({_STATUSES})
    ORDER BY {_ACTIVE_FIRST}, tp.start_date DESC, tp.created_at DESC, tp.id DESC
    LIMIT 1) AS plan
  CROSS JOIN LATERAL (
    SELECT (SELECT min(ds.started_at) FROM dosing_session AS ds
            WHERE ds.patient_id = p.id AND ds.plan_id = plan.id AND ds.status = '{SessionStatus.signed.value}')
             AS session_at,
           (plan.start_date + 1)::timestamp AT TIME ZONE {_ZONE} AS midnight
    OFFSET 0) AS first
  CROSS JOIN LATERAL (
    SELECT coalesce(first.session_at, first.midnight) AS at,
           first.session_at IS NULL
             AND {_offset("first.midnight - interval '3 hours'")} > {_offset("first.midnight")} AS ambiguous) AS dose
  CROSS JOIN LATERAL (
    SELECT candidate.total, candidate.recorded_at FROM (
      (SELECT s.total, s.recorded_at, 0 AS preference FROM score AS s
       WHERE s.patient_id = p.id AND s.instrument = :worsening_instrument AND s.deleted_at IS NULL
         AND s.recorded_at < dose.at
       ORDER BY s.recorded_at DESC, s.id DESC LIMIT 1)
      UNION ALL
      (SELECT s.total, s.recorded_at, 1 FROM score AS s
       WHERE s.patient_id = p.id AND s.instrument = :worsening_instrument AND s.deleted_at IS NULL
       ORDER BY s.recorded_at, s.id LIMIT 1)
    ) AS candidate
    ORDER BY candidate.preference LIMIT 1) AS baseline
  WHERE p.id = :worsening_patient_id
    AND ((:worsening_recorded_at > baseline.recorded_at AND :worsening_total - baseline.total >= :worsening_mcid)
         OR dose.ambiguous)
    AND NOT EXISTS (
      SELECT 1 FROM alert AS a
      WHERE a.plan_id = plan.id AND a.kind = :worsening_instrument || '_worsening'
        AND a.status = '{AlertStatus.open.value}'))"""


def cannot_worsen() -> TextClause:
    """PostgreSQL: whether the score described by the `worsening_*` parameters surely raises no worsening alert (a
    WHERE condition): it is not worse than its baseline, or an alert of its kind is already open for the plan (the
    rule raises one per plan and instrument until it is acknowledged). A patient whose scores stay worse than the
    baseline keeps the fast path once the alert is raised."""
    return text(_CANNOT_WORSEN).bindparams(
        bindparam("worsening_patient_id", type_=Uuid), bindparam("worsening_instrument", type_=String),
        bindparam("worsening_total", type_=Integer), bindparam("worsening_recorded_at", type_=DateTime(timezone=True)),
        bindparam("worsening_mcid", type_=Integer),
    )


def worsening_parameters(score: Mapping[str, Any]) -> dict[str, Any]:
    return {"worsening_patient_id": score["patient_id"], "worsening_instrument": score["instrument"],
            "worsening_total": score["total"], "worsening_recorded_at": score["recorded_at"],
            "worsening_mcid": INSTRUMENTS[score["instrument"]].clinically_meaningful_change}
