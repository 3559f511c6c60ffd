"""The clinician's panel dashboard: one row per patient with the chart's outcomes, the schedule's state and open
alerts (docs/dashboard.md).

Every number comes from the functions the chart and the schedule use (api.outcomes, api.schedules.rules), fed with
the few rows they need per patient, read for all patients at once: a page costs the same statements whether the
panel holds 5 patients or 500. Ordered by name without filters (and, on PostgreSQL, by alerts), only the page's
patients are read; another order or a filter on computed values (overdue, trend) reads the whole panel, then orders
and pages in Python.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Sequence
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel.ext.asyncio.session import AsyncSession

from api import outcomes, pagination
from api.audit import service as audit
from api.authz import visible_patients
from api.dashboard import queries
from api.dashboard.schemas import DashboardQuery
from api.instruments.registry import GAD7, INSTRUMENTS
from api.patients.service import PATIENT_ORDER
from api.schedules import rules
from api.security.tokens import Caller
from api.statements import one_statement
from models.base import utcnow
from models.plans import PlanStatus

# Pages computed at once by one process; later requests queue, first come first served (app.state.dashboard_pages).
# A page takes four round trips and about 8 ms of CPU: with every request in progress at once, each one's turns
# interleave with all the others', and the slowest wait far longer than the median (under 32 concurrent requests,
# p99 850 ms at p50 260 ms). Eight at a time keep the process and PostgreSQL as busy (the same pages per second)
# with p99 460–530 ms, and leave the event loop to the cheap requests (a phone's score, a chart) in between.
CONCURRENT_PAGES = 8

# A row: the fields of `DashboardRow`, in its order, as `_row` computes them; the page is written from them as they
# are (api/responses.py), in the bytes the declared model would be serialised to.
PageRow = dict[str, Any]


# Each order as an ascending key of strings and integers (what a Python-ordered cursor carries), ending with the
# name and the id so that it is total and stable.
ORDERS: dict[str, tuple[Callable[[PageRow], tuple], tuple[type, ...]]] = {
    "alerts": (lambda r: (-r["urgent_alerts"], -r["open_alerts"], r["full_name"], str(r["patient_id"])),
               (int, int, str, str)),
    "change": (lambda r: (r["change"] is None, -(r["change"] or 0), r["full_name"], str(r["patient_id"])),
               (int, int, str, str)),
    "last_activity": (lambda r: (r["last_activity_at"] is None,
                                 -outcomes.epoch_micros(r["last_activity_at"]) if r["last_activity_at"] else 0,
                                 r["full_name"], str(r["patient_id"])), (int, int, str, str)),
    "name": (lambda r: (r["full_name"], str(r["patient_id"])), (str, str)),
}


def _key(order: str, row: PageRow) -> tuple:
    return tuple(int(v) if isinstance(v, bool) else v for v in ORDERS[order][0](row))


async def dashboard(session: AsyncSession, caller: Caller, query: DashboardQuery) -> dict[str, Any]:
    """A `DashboardPage`'s fields: `items` as `_row` computes them."""
    now = utcnow()
    # PostgreSQL reads each page's inputs on the driver (api.dashboard.queries); when the rows it reads are the page,
    # the same statement writes their audit rows (`audit_as`), else the page is audited in a statement of its own.
    engine = session.bind if one_statement(session.bind) else None
    audit_as = caller if engine is not None else None
    unfiltered = query.overdue is None and query.trend is None
    if engine is not None and query.q is None and unfiltered and query.sort in ("name", "alerts"):
        # The panel's own order, or the default one on counts the database keeps: one statement pages them, reads
        # the page's inputs and audits it, and only the page is summarised.
        if query.sort == "name":
            patients, next_cursor, found = await queries.page_by_name(engine, caller, limit=query.limit,
                                                                       cursor=query.cursor, now=now)
        else:
            patients, last, found = await queries.page_by_alerts(engine, caller, limit=query.limit,
                                                                 after=_position(query), now=now)
            next_cursor = None if last is None else pagination.encode_position(last)
        items = await _summarised(session, engine, patients, found, now)
    elif query.sort == "name" and unfiltered:
        # The panel's own order: the database pages it and only the page is summarised.
        stmt = pagination.keyset(queries.panel(visible_patients(caller), query.q), PATIENT_ORDER,
                                 limit=query.limit, cursor=query.cursor)
        patients, next_cursor = pagination.page_of((await session.exec(stmt)).all(), PATIENT_ORDER,
                                                   limit=query.limit)
        if engine is not None:
            await session.commit()  # only read: the connection goes back to the pool for the driver's statements
        items = await summarise(session, engine, patients, now, audit_as)
    else:
        audit_as = None
        after = _position(query)
        everyone = (await session.exec(queries.panel(visible_patients(caller), query.q))).all()
        if engine is not None:
            await session.commit()
        chosen = sorted((row for row in await summarise(session, engine, everyone, now) if _matches(row, query)),
                        key=lambda r: _key(query.sort, r))
        if after is not None:
            chosen = [row for row in chosen if _key(query.sort, row) > after]
        items = chosen[:query.limit]
        next_cursor = pagination.encode_position(_key(query.sort, items[-1])) if len(chosen) > query.limit else None
    if engine is None:
        audit.record_patient_reads(session, caller, queries.READ_ACTION, "patient",
                                   [(row["patient_id"], row["patient_id"]) for row in items])
        await session.commit()
    elif audit_as is None:
        await audit.record_patient_reads_now(engine, caller, queries.READ_ACTION, "patient",
                                             [row["patient_id"] for row in items])
    return {"items": items, "next_cursor": next_cursor}


def _position(query: DashboardQuery) -> tuple | None:
    """The sort key a cursor of this order carries; its last value is a patient id (422 otherwise)."""
    if not query.cursor:
        return None
    position = pagination.decode_position(query.cursor, ORDERS[query.sort][1])
    try:
        uuid.UUID(position[-1])  # type: ignore[arg-type]
    except ValueError:
        raise pagination.invalid_cursor() from None
    return position


def _matches(row: PageRow, query: DashboardQuery) -> bool:
    return ((query.overdue is None or row["overdue"] == query.overdue)
            and (query.trend is None or row["trend"] == query.trend))


async def summarise(session: AsyncSession, engine: AsyncEngine | None, patients: Sequence[Row], now: dt.datetime,
                    audit_as: Caller | None = None) -> list[PageRow]:
    """The dashboard rows of these patients ((id, full_name, timezone) rows), in their order. On PostgreSQL, the
    read also audits every one of them as read by `audit_as`, when given (`queries.inputs`)."""
    return await _summarised(session, engine, patients, await queries.inputs(session, engine, patients, now, audit_as),
                             now)


async def _summarised(session: AsyncSession, engine: AsyncEngine | None, patients: Sequence[Row],
                      found: queries.Inputs, now: dt.datetime) -> list[PageRow]:
    """`summarise` from the patients' inputs, read already."""
    ids = [patient.id for patient in patients]
    # A panel's patients share a few zones: each zone's today is computed once.
    todays = {timezone: now.astimezone(ZoneInfo(timezone)).date() for timezone in {p.timezone for p in patients}}
    shown, doses = {}, {}
    for patient in patients:
        plan = found.plans[patient.id]
        assessments = plan.assessments if plan.plan_id is not None else []
        shown[patient.id] = assessments[0]["instrument"] if assessments else GAD7.code
        doses[patient.id] = outcomes.first_dose(plan.first_session_at, plan.start_date, ZoneInfo(patient.timezone))
    # PostgreSQL picked in the same statement, for its own view of the instrument and the dose (queries.Inputs):
    # the rest (all of them on SQLite) are read now.
    picked = {pid: found.picks[key] for pid in ids if (key := (pid, shown[pid], doses[pid])) in found.picks}
    picked.update(await queries.picks(session, engine, [(pid, shown[pid], doses[pid]) for pid in ids
                                                        if pid not in picked and (pid, shown[pid]) in found.last]))
    return [_row(patient, found.plans[patient.id], shown[patient.id], found, picked.get(patient.id),
                 found.last_score_at.get(patient.id), todays[patient.timezone]) for patient in patients]


def _row(patient: Row, plan: queries.PlanFacts, code: str, found: queries.Inputs, picks: queries.Picks | None,
         last_score_at: dt.datetime | None, today: dt.date) -> PageRow:
    """The fields of one `DashboardRow`, in its order. (One pass over the schedule, no generators: it runs for every
    row of every page, and a page's Python is half of its cost in the process.)"""
    pid = patient.id
    latest, base = (picks.latest, picks.baseline_total) if picks is not None else (None, None)
    shown = found.recent.get((pid, code), queries.NONE_RECENT)
    change = latest.total - base if latest is not None and base is not None else None
    next_due, overdue, shares = None, False, []
    if plan.plan_id is not None and plan.status == PlanStatus.active:
        for line in plan.assessments:
            scheduled = line["instrument"]
            entry = rules.state(line["every_days"], plan.start_date, today, found.last.get((pid, scheduled)),
                                found.recent.get((pid, scheduled), queries.NONE_RECENT).days)
            if next_due is None or entry.next_due_on < next_due:
                next_due = entry.next_due_on
            overdue = overdue or entry.overdue_days > 0
            if entry.adherence_28d is not None:
                shares.append(round(entry.adherence_28d * 100))
    last_session_at = plan.last_session_at
    if last_score_at is None or (last_session_at is not None and last_session_at > last_score_at):
        last_activity_at = last_session_at
    else:
        last_activity_at = last_score_at
    alerts = found.alerts.get(pid, (0, 0))
    return {
        "patient_id": pid, "full_name": patient.full_name,
        "plan_status": plan.status if plan.plan_id is not None else None, "instrument": code,
        "latest": None if latest is None else {"instrument": code, "total": latest.total,
                                               "severity": latest.severity, "recorded_at": latest.recorded_at},
        "baseline_total": base, "change": change,
        "percent_change": None if change is None else outcomes.percent_change(base, latest.total),
        "trend": outcomes.trend_of(INSTRUMENTS[code], shown.recent_sum, shown.recent_n, shown.prior_sum,
                                   shown.prior_n),
        "last_session_at": last_session_at, "last_activity_at": last_activity_at,
        "next_assessment_due": next_due, "overdue": overdue,
        "adherence": outcomes.half_up(sum(shares), 100 * len(shares), places=2) if shares else None,
        "open_alerts": alerts[0], "urgent_alerts": alerts[1],
    }
