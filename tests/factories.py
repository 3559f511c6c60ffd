"""Builds test data straight into the database (fast) and mints tokens the way login does."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field
from functools import lru_cache

from api.security import revocation
from api.security.passwords import hash_password
from api.security.revocation import Subject
from api.security.scopes import ALL_SCOPES, Scope
from api.security.tokens import Caller, digest, issue_access_token
from api.auth.service import caller_of
from models import ApiClient, CareTeamMember, CareTeamRole, Organization, Patient, Role, User
from models.base import utcnow

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
class ClientActor:
    """An API client of an organization and an access token of it (as POST /v1/auth/token grants)."""

    client: ApiClient
    token: str

    @property
    def id(self) -> uuid.UUID:
        return self.client.id

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


# The role matrix's API-client columns: a client of org A holding only that scope, each.
CLIENT_ACTORS: dict[str, Scope] = {f"client_{scope.value.replace(':', '_')}": scope for scope in Scope}
# A client of org B holding every scope: 404 on anything of org A's patients.
CLIENT_B = "client_b"


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
    clients: dict[str, ClientActor] = field(default_factory=dict)  # CLIENT_ACTORS, CLIENT_B, and "revoked_client"
    extra: dict = field(default_factory=dict)

    def actor(self, name: str) -> Actor | ClientActor | None:
        if name in self.clients:
            return self.clients[name]
        return getattr(self, name) if name in USER_ACTOR_NAMES else None


USER_ACTOR_NAMES = ("admin", "clinician", "monitor", "therapist", "other_clinician", "patient_user", "other_patient_user", "admin_b", "clinician_b")
ACTOR_NAMES = USER_ACTOR_NAMES + tuple(CLIENT_ACTORS) + (CLIENT_B,)


def token_for(app, user: User) -> str:
    return issue_access_token(app.state.settings, caller_of(user))[0]


def client_token(app, client: ApiClient, scopes=None, *, now=None) -> str:
    granted = frozenset(str(s) for s in (client.scopes if scopes is None else scopes))
    caller = Caller(user_id=client.id, organization_id=client.organization_id, role=Role.api_client, scopes=granted)
    return issue_access_token(app.state.settings, caller, now=now)[0]


async def add_client(session, org: Organization, creator: User, scopes, *, name: str = "EHR") -> ApiClient:
    client = ApiClient(organization_id=org.id, client_id="ctc_" + uuid.uuid4().hex[:24],
                       secret_hash=digest(uuid.uuid4().hex), name=name, scopes=sorted(str(s) for s in scopes),
                       created_by=creator.id)
    session.add(client)
    await session.flush()
    return client


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
        clients = {name: await add_client(session, org_a, admin, [scope], name=name)
                   for name, scope in CLIENT_ACTORS.items()}
        clients[CLIENT_B] = await add_client(session, org_b, admin_b, ALL_SCOPES, name=CLIENT_B)
        revoked = await add_client(session, org_a, admin, ALL_SCOPES, name="revoked")
        await session.commit()
    # The revoked client's token was issued before its revocation, as any live token of it would have been.
    revoked_token = client_token(app, revoked, now=utcnow() - dt.timedelta(seconds=2))
    async with app.state.sessions() as session:
        revoked.revoked_at = utcnow()
        session.add(revoked)
        revocation.revoke(session, Subject.principal, revoked.id, "client_revoked")
        await session.commit()

    def actor(user: User) -> Actor:
        return Actor(user, token_for(app, user))

    return World(
        org_a=org_a, org_b=org_b, admin=actor(admin), clinician=actor(clinician), monitor=actor(monitor),
        therapist=actor(therapist),
        other_clinician=actor(other_clinician), patient_user=actor(patient_user),
        other_patient_user=actor(other_patient_user), admin_b=actor(admin_b), clinician_b=actor(clinician_b),
        patient=patient, other_patient=other_patient, fresh_patient=fresh_patient, patient_b=patient_b,
        clients={**{name: ClientActor(client, client_token(app, client)) for name, client in clients.items()},
                 "revoked_client": ClientActor(revoked, revoked_token)},
    )
