"""Builds test data straight into the database (fast) and mints tokens the way login does."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field
from functools import lru_cache

from api.security.passwords import hash_password
from api.security.tokens import issue_access_token
from api.auth.service import caller_of
from models import CareTeamMember, CareTeamRole, Organization, Patient, Role, User

PASSWORD = "correct horse battery staple"


@lru_cache
def password_hash() -> str:
    return hash_password(PASSWORD)  # hashed once: argon2 is deliberately slow


@dataclass
class Actor:
    user: User
    token: str

    @property
    def id(self) -> uuid.UUID:
        return self.user.id

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@dataclass
class World:
    org_a: Organization
    org_b: Organization
    admin: Actor  # admin of org A
    clinician: Actor  # org A, on patient's care team (prescriber)
    monitor: Actor  # org A, on patient's care team as monitor
    therapist: Actor  # org A, on patient's care team as therapist
    other_clinician: Actor  # org A, on no care team of interest
    patient_user: Actor  # the patient's own login
    other_patient_user: Actor  # another patient of org A
    admin_b: Actor
    clinician_b: Actor
    patient: Patient  # org A, care team: clinician
    other_patient: Patient  # org A, care team: other_clinician
    fresh_patient: Patient  # org A, care team: clinician, no login yet
    patient_b: Patient  # org B, care team: clinician_b
    extra: dict = field(default_factory=dict)

    def actor(self, name: str) -> Actor | None:
        return getattr(self, name) if name in ACTOR_NAMES else None


ACTOR_NAMES = ("admin", "clinician", "monitor", "therapist", "other_clinician", "patient_user", "other_patient_user", "admin_b", "clinician_b")


def token_for(app, user: User) -> str:
    return issue_access_token(app.state.settings, caller_of(user))[0]


async def add_user(session, org: Organization, role: Role, name: str, *, patient: Patient | None = None) -> User:
    user = User(
        organization_id=org.id,
        email=f"{name.replace(' ', '.').lower()}.{uuid.uuid4().hex[:6]}@example.com",
        full_name=name,
        role=role,
        password_hash=password_hash(),
        patient_id=patient.id if patient else None,
    )
    session.add(user)
    await session.flush()
    return user


async def add_patient(
    session, org: Organization, name: str, *, team: list[User] = (),
    roles: dict[uuid.UUID, CareTeamRole] | None = None,
) -> Patient:
    patient = Patient(organization_id=org.id, full_name=name, date_of_birth=dt.date(1985, 4, 12),
                      timezone="America/New_York")
    session.add(patient)
    await session.flush()
    for member in team:
        role = (roles or {}).get(member.id, CareTeamRole.prescriber)
        session.add(CareTeamMember(patient_id=patient.id, user_id=member.id, role=role))
    await session.flush()
    return patient


async def build_world(app) -> World:
    async with app.state.sessions() as session:
        org_a, org_b = Organization(name="Calm Clinic"), Organization(name="Other Clinic")
        session.add_all([org_a, org_b])
        await session.flush()
        admin = await add_user(session, org_a, Role.admin, "Ada Admin")
        clinician = await add_user(session, org_a, Role.clinician, "Cleo Clinician")
        monitor = await add_user(session, org_a, Role.clinician, "Mo Monitor")
        therapist = await add_user(session, org_a, Role.clinician, "Tess Therapist")
        other_clinician = await add_user(session, org_a, Role.clinician, "Otto Other")
        admin_b = await add_user(session, org_b, Role.admin, "Bea Admin")
        clinician_b = await add_user(session, org_b, Role.clinician, "Ben Clinician")
        patient = await add_patient(session, org_a, "Pat Patient", team=[clinician, monitor, therapist],
                                    roles={monitor.id: CareTeamRole.monitor, therapist.id: CareTeamRole.therapist})
        other_patient = await add_patient(session, org_a, "Quinn Other", team=[other_clinician])
        fresh_patient = await add_patient(session, org_a, "Finn Fresh", team=[clinician])
        patient_b = await add_patient(session, org_b, "Bo Bee", team=[clinician_b])
        patient_user = await add_user(session, org_a, Role.patient, "Pat Patient", patient=patient)
        other_patient_user = await add_user(session, org_a, Role.patient, "Quinn Other", patient=other_patient)
        await session.commit()

    def actor(user: User) -> Actor:
        return Actor(user, token_for(app, user))

    return World(
        org_a=org_a, org_b=org_b, admin=actor(admin), clinician=actor(clinician), monitor=actor(monitor),
        therapist=actor(therapist),
        other_clinician=actor(other_clinician), patient_user=actor(patient_user),
        other_patient_user=actor(other_patient_user), admin_b=actor(admin_b), clinician_b=actor(clinician_b),
        patient=patient, other_patient=other_patient, fresh_patient=fresh_patient, patient_b=patient_b,
    )
