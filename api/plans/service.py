"""Treatment plans: creation, merge-patch revisions under If-Match, the status lifecycle, and derived fields.

Every plan is reached through its patient with `api.authz.authorize_patient` (which audits the access); a plan of a
patient the caller may not see answers exactly like a plan that does not exist. Statements live in
`api.plans.queries`. Each change bumps `revision`, adds a `plan_revision` row and a `plan.updated` outbox event in
the same transaction.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from pydantic import ValidationError
from sqlalchemy.exc import IntegrityError
from sqlmodel.ext.asyncio.session import AsyncSession

from api import outbox
from api.authz import READ_PLAN_REVISIONS, READ_PLANS, WRITE_PLANS, Permission, authorize_patient, authorize_patient_of
from api.errors import Conflict, PreconditionFailed, ValidationFailed
from api.plans import queries
from api.plans.schemas import (
    CONTENT_FIELDS,
    FAILED_TRIAL_OUTCOMES,
    FIRST_LINE_KINDS,
    TREATMENT_RESISTANT_AFTER,
    PatientPlanPublic,
    PlanCreate,
    PlanPage,
    PlanPublic,
    PlanRevisionPage,
    PlanRevisionPublic,
    PlanUpdate,
    PlanView,
    StatusChange,
)
from api.preconditions import check_if_match
from api.security.tokens import Caller
from api.sync import first_page_watermark, refuse_filter
from models.base import utcnow
from models.patients import Patient
from models.plans import PlanRevision, PlanStatus, TreatmentPlan
from models.users import Role

PLAN_NOT_FOUND = "Plan not found"

TRANSITIONS: dict[PlanStatus, frozenset[PlanStatus]] = {
    PlanStatus.draft: frozenset({PlanStatus.active}),
    PlanStatus.active: frozenset({PlanStatus.paused, PlanStatus.completed, PlanStatus.discontinued}),
    PlanStatus.paused: frozenset({PlanStatus.active, PlanStatus.completed, PlanStatus.discontinued}),
    PlanStatus.completed: frozenset(),
    PlanStatus.discontinued: frozenset(),
}
CLOSED = frozenset(status for status, targets in TRANSITIONS.items() if not targets)


def etag(plan: TreatmentPlan) -> str:
    """A strong entity tag naming the plan's revision (If-Match compares strongly, RFC 9110 13.1.1)."""
    return f'"{plan.id}-{plan.revision}"'


def treatment_resistance_trials(prior_treatments: list[dict[str, Any]]) -> list[int]:
    """Indexes of the failed adequate trials of first-line treatment: the ones that count toward resistance."""
    return [index for index, trial in enumerate(prior_treatments)
            if trial["adequate_trial"] and trial["kind"] in FIRST_LINE_KINDS
            and trial["outcome"] in FAILED_TRIAL_OUTCOMES]


def present(plan: TreatmentPlan, viewer: Caller) -> PlanView:
    # Patients never see clinician-only notes: their model has no field for them.
    view = PatientPlanPublic if viewer.role == Role.patient else PlanPublic
    columns = {field: getattr(plan, field) for field in TreatmentPlan.model_fields}  # status loads as a plain str
    counted = treatment_resistance_trials(plan.prior_treatments)
    return view.model_validate(columns | {"treatment_resistant": len(counted) >= TREATMENT_RESISTANT_AFTER,
                                          "treatment_resistance_trials": counted})


def _content(plan: TreatmentPlan) -> dict[str, Any]:
    """The plan's clinical content as JSON values, as PlanCreate dumps it."""
    return {field: getattr(plan, field) for field in CONTENT_FIELDS} | {"start_date": plan.start_date.isoformat()}


def _columns(content: dict[str, Any]) -> dict[str, Any]:
    """Column values of (some of) the content: JSON values, except start_date, a DATE column."""
    if "start_date" not in content:
        return content
    return content | {"start_date": dt.date.fromisoformat(content["start_date"])}


def _plan_updated(session: AsyncSession, organization_id: uuid.UUID, plan: TreatmentPlan) -> None:
    outbox.enqueue(session, organization_id, "plan.updated",
                   {"plan_id": plan.id, "patient_id": plan.patient_id, "revision": plan.revision,
                    "status": str(plan.status)})


async def _authorized_plan(
    session: AsyncSession, caller: Caller, plan_id: uuid.UUID, action: str, allow: Permission
) -> tuple[TreatmentPlan, Patient]:
    plan = await queries.get(session, plan_id)
    patient = await authorize_patient_of(session, caller, plan.patient_id if plan else None, action, allow=allow,
                                         resource_type="plan", resource_id=plan_id, not_found=PLAN_NOT_FOUND)
    return plan, patient


def _check_if_match(plan: TreatmentPlan, if_match: str | None) -> None:
    check_if_match(etag(plan), if_match, noun="plan", revision=plan.revision)


async def create_plan(session: AsyncSession, caller: Caller, patient_id: uuid.UUID, body: PlanCreate) -> TreatmentPlan:
    plan_id = uuid.uuid4()
    patient = await authorize_patient(session, caller, patient_id, "plan.create", allow=WRITE_PLANS,
                                      resource_type="plan", resource_id=plan_id)
    now = utcnow()
    content = body.model_dump(mode="json")
    plan = TreatmentPlan(id=plan_id, patient_id=patient.id, status=PlanStatus.draft, revision=1,
                         created_by=caller.user_id, created_at=now, updated_by=caller.user_id, updated_at=now,
                         **_columns(content))
    # Revision 1 records every initial value, so the history alone can rebuild any state the plan had.
    initial = [{"field": field, "before": None, "after": content[field]} for field in CONTENT_FIELDS]
    first = PlanRevision(plan_id=plan_id, revision=1, kind="create", changed_by=caller.user_id, changed_at=now,
                         changes=initial)
    await queries.insert(session, plan, first)
    _plan_updated(session, patient.organization_id, plan)
    await session.commit()
    return plan


async def authorize_replay(session: AsyncSession, caller: Caller, stored: dict[str, Any]) -> None:
    """An Idempotency-Key replay of a plan's creation is a read of the plan (api.idempotency)."""
    await authorize_patient(session, caller, uuid.UUID(stored["patient_id"]), "plan.read", allow=READ_PLANS,
                            resource_type="plan",
                            resource_id=stored["id"])


async def read_plan(session: AsyncSession, caller: Caller, plan_id: uuid.UUID) -> tuple[PlanView, str]:
    plan, _ = await _authorized_plan(session, caller, plan_id, "plan.read", READ_PLANS)
    answer = present(plan, caller), etag(plan)
    await session.commit()
    return answer


async def list_plans(
    session: AsyncSession, caller: Caller, patient_id: uuid.UUID, *, status: PlanStatus | None,
    updated_since: dt.datetime | None, limit: int, cursor: str | None,
) -> PlanPage:
    """Plans are never deleted (they end as completed or discontinued, which are changes like any other), so delta
    sync has no tombstones to hand out: every change since the watermark is the plan as it now is."""
    if updated_since is not None and status is not None:
        raise refuse_filter("status")
    watermark = first_page_watermark(cursor)
    await authorize_patient(session, caller, patient_id, "plan.list", allow=READ_PLANS, resource_type="plan")
    plans, next_cursor = await queries.page(session, patient_id, status=status, updated_since=updated_since,
                                            limit=limit, cursor=cursor, carry=watermark.isoformat())
    await session.commit()
    return PlanPage(items=[present(plan, caller) for plan in plans], next_cursor=next_cursor,
                    sync_watermark=watermark)


async def update_plan(
    session: AsyncSession, caller: Caller, plan_id: uuid.UUID, if_match: str | None, body: PlanUpdate
) -> tuple[PlanView, str]:
    """Merges the sent top-level fields into the plan and validates the result as a whole (a new start_date
    must still precede the goals' dates). Nothing changed: the plan as it is, no new revision."""
    plan, patient = await _authorized_plan(session, caller, plan_id, "plan.update", WRITE_PLANS)
    _check_if_match(plan, if_match)
    if plan.status in CLOSED:
        raise Conflict(f"A {plan.status} plan is a closed record and cannot be edited")
    before = _content(plan)
    try:
        after = PlanCreate.model_validate(before | body.model_dump(mode="json", exclude_unset=True)).model_dump(
            mode="json")
    except ValidationError as error:
        raise ValidationFailed.of_body(error) from None
    changes = [{"field": field, "before": before[field], "after": after[field]}
               for field in CONTENT_FIELDS if after[field] != before[field]]
    if changes:
        plan = await _advance(session, caller, plan, {change["field"]: after[change["field"]] for change in changes},
                              kind="update", changes=changes, stale=PreconditionFailed)
        _plan_updated(session, patient.organization_id, plan)
    answer = present(plan, caller), etag(plan)
    await session.commit()
    return answer


async def change_status(
    session: AsyncSession, caller: Caller, plan_id: uuid.UUID, if_match: str | None, change: StatusChange
) -> tuple[PlanView, str]:
    """Moves the plan along the lifecycle. If-Match is optional here: the transition is checked against the
    current status, and a change that lands between reading and writing the plan makes this one 409 (412 when an
    If-Match named the revision read)."""
    plan, patient = await _authorized_plan(session, caller, plan_id, "plan.status", WRITE_PLANS)
    if if_match is not None:
        _check_if_match(plan, if_match)
    if change.status not in TRANSITIONS[plan.status]:
        raise Conflict(f"A {plan.status} plan cannot become {change.status.value}; allowed: "
                       f"{', '.join(sorted(TRANSITIONS[plan.status])) or 'none (closed record)'}")
    overridden = _activation_override(plan, change) if change.status == PlanStatus.active else None
    changes = [{"field": "status", "before": str(plan.status), "after": change.status.value}]
    try:
        plan = await _advance(
            session, caller, plan, {"status": change.status}, kind="status", changes=changes, reason=change.reason,
            override_reason=change.override_reason, overridden_contraindications=overridden,
            stale=Conflict if if_match is None else PreconditionFailed,
        )
    except IntegrityError:
        await session.rollback()
        raise Conflict("This patient already has an active plan; pause, complete or discontinue it first") from None
    _plan_updated(session, patient.organization_id, plan)
    answer = present(plan, caller), etag(plan)
    await session.commit()
    return answer


def _activation_override(plan: TreatmentPlan, change: StatusChange) -> list[str] | None:
    """Refuses activation without a suitability assessment, or with contraindications and no override reason.
    Applies to every activation, resuming a paused plan included: contraindications may have been added since."""
    if plan.suitability is None:
        raise Conflict("A plan cannot be activated without a suitability assessment")
    listed = plan.suitability["contraindications"]
    if listed and change.override_reason is None:
        raise Conflict(f"Contraindications are listed ({', '.join(listed)}); activating needs an override_reason")
    return list(listed) or None


async def _advance(
    session: AsyncSession, caller: Caller, plan: TreatmentPlan, values: dict[str, Any], *, kind: str,
    changes: list[dict[str, Any]], stale: type[Conflict | PreconditionFailed], **revision_fields: Any,
) -> TreatmentPlan:
    """Writes the next revision if nobody wrote one since `plan` was read; otherwise `stale`, nothing written."""
    now = utcnow()
    updated = await queries.advance(session, plan.id, plan.revision,
                                    _columns(values) | {"updated_by": caller.user_id, "updated_at": now})
    if updated is None:
        await session.rollback()
        raise stale("The plan was changed by someone else meanwhile; read it again and retry")
    session.add(PlanRevision(plan_id=plan.id, revision=updated.revision, kind=kind, changed_by=caller.user_id,
                             changed_at=now, changes=changes, **revision_fields))
    return updated


async def list_revisions(
    session: AsyncSession, caller: Caller, plan_id: uuid.UUID, *, limit: int, cursor: str | None
) -> PlanRevisionPage:
    """The care team's and admins' view of the history; patients do not see it (it holds clinician-only notes and
    override reasons)."""
    await _authorized_plan(session, caller, plan_id, "plan.revisions", READ_PLAN_REVISIONS)
    rows, next_cursor = await queries.revisions(session, plan_id, limit=limit, cursor=cursor)
    await session.commit()
    return PlanRevisionPage(items=[PlanRevisionPublic.model_validate(row.model_dump()) for row in rows],
                            next_cursor=next_cursor)
