"""Access-token revocation (api/security/revocation.py): tokens issued before a revocation of their principal or of
their login session are refused on every process, within the polling interval, although the JWT has not expired."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid

import httpx
from sqlalchemy import insert

from api.app import create_app, release
from api.security import revocation
from api.security.revocation import Subject
from models.base import utcnow
from models.users import AccessRevocation
from tests.conftest import make_settings
from tests.factories import PASSWORD


async def _login(client: httpx.AsyncClient, email: str) -> dict:
    answer = await client.post("/v1/auth/login", json={"email": email, "password": PASSWORD})
    assert answer.status_code == 200, answer.text
    return answer.json()


def _bearer(pair: dict) -> dict[str, str]:
    return {"Authorization": f"Bearer {pair['access_token']}"}


async def _revoke(app, subject: Subject, subject_id: uuid.UUID, now: dt.datetime | None = None) -> None:
    async with app.state.sessions() as session:
        revocation.revoke(session, subject, subject_id, "test", now=now)
        await session.commit()


async def test_a_revoked_principal_is_refused_at_once_in_this_process(app, client, world):
    pair = await _login(client, world.clinician.user.email)
    assert (await client.get("/v1/me", headers=_bearer(pair))).status_code == 200

    await _revoke(app, Subject.principal, world.clinician.id)

    refused = await client.get("/v1/me", headers=_bearer(pair))
    assert refused.status_code == 401
    assert refused.json()["code"] == "invalid_token"
    assert 'error="invalid_token"' in refused.headers["www-authenticate"]
    # Everyone else is unaffected.
    assert (await client.get("/v1/me", headers=world.admin.headers)).status_code == 200


async def test_a_token_issued_after_the_revocation_works(app, client, world):
    before = await _login(client, world.clinician.user.email)
    await _revoke(app, Subject.principal, world.clinician.id)
    after = await _login(client, world.clinician.user.email)

    assert (await client.get("/v1/me", headers=_bearer(before))).status_code == 401
    assert (await client.get("/v1/me", headers=_bearer(after))).status_code == 200
    refreshed = await client.post("/v1/auth/refresh", json={"refresh_token": after["refresh_token"]})
    assert (await client.get("/v1/me", headers=_bearer(refreshed.json()))).status_code == 200


async def test_ending_one_login_session_leaves_the_others(app, client, world):
    phone = await _login(client, world.patient_user.user.email)
    tablet = await _login(client, world.patient_user.user.email)
    me = (await client.get("/v1/me", headers=_bearer(phone))).json()
    assert me["id"] == str(world.patient_user.id)

    family = await _family_of(app, phone["refresh_token"])
    await _revoke(app, Subject.session, family)

    assert (await client.get("/v1/me", headers=_bearer(phone))).status_code == 401
    assert (await client.get("/v1/me", headers=_bearer(tablet))).status_code == 200


async def test_another_process_sees_a_revocation_within_the_polling_interval(app, client, world, database_url):
    """A second app on the same database stands for another server process. The revocation is written with plain
    SQL, as another process would commit it: nothing in this process tells the second app, only its polling."""
    poll = 0.3
    other = create_app(make_settings(database_url, revocation_poll_seconds=poll))
    try:
        transport = httpx.ASGITransport(app=other, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://other.test") as other_client:
            pair = await _login(client, world.clinician.user.email)
            assert (await other_client.get("/v1/me", headers=_bearer(pair))).status_code == 200

            now = utcnow()
            async with app.state.engine.begin() as connection:
                await connection.execute(insert(AccessRevocation).values(
                    id=uuid.uuid4(), subject_type=Subject.principal, subject_id=world.clinician.id, reason="test",
                    revoked_at=now, expires_at=now + revocation.KEEP_FOR))

            await asyncio.sleep(poll * 1.5)
            assert (await other_client.get("/v1/me", headers=_bearer(pair))).status_code == 401
    finally:
        await release(other)


async def test_expired_revocations_are_forgotten(app, client, world):
    pair = await _login(client, world.clinician.user.email)
    # A revocation issued long ago only concerned tokens that have all expired since.
    await _revoke(app, Subject.principal, world.clinician.id, now=utcnow() - revocation.KEEP_FOR * 2)
    assert (await client.get("/v1/me", headers=_bearer(pair))).status_code == 200


async def test_a_rolled_back_revocation_changes_nothing(app, client, world):
    pair = await _login(client, world.clinician.user.email)
    async with app.state.sessions() as session:
        revocation.revoke(session, Subject.principal, world.clinician.id, "test")
        await session.rollback()
    assert (await client.get("/v1/me", headers=_bearer(pair))).status_code == 200


async def _family_of(app, refresh_token: str) -> uuid.UUID:
    from sqlalchemy import select

    from api.security.tokens import digest
    from models.users import RefreshToken

    async with app.state.sessions() as session:
        return (await session.exec(
            select(RefreshToken.family_id).where(RefreshToken.token_hash == digest(refresh_token)))).scalar_one()


async def test_a_reread_runs_behind_the_requests_from_half_the_interval(app):
    """From half the interval the copy is reread in the background: the request that notices is answered from the
    copy it has, and a revocation written by another process is seen once the reread is done."""
    from api.security.tokens import Caller
    from models.users import Role

    caller = Caller(uuid.uuid4(), uuid.uuid4(), Role.clinician, session_id=uuid.uuid4(), issued_at=1.0)
    revocations = app.state.revocations
    assert await revocations.is_revoked(caller) is False  # a fresh copy
    now = utcnow()
    async with app.state.engine.begin() as connection:  # as another process writes it: this copy is not told
        await connection.execute(insert(AccessRevocation).values(
            subject_type=Subject.principal, subject_id=caller.user_id, reason="test", revoked_at=now,
            expires_at=now + revocation.KEEP_FOR))
    revocations._loaded_at -= revocations._poll_seconds * 0.6
    assert await revocations.is_revoked(caller) is False  # answered from the copy it had
    assert revocations._refreshing is not None
    await asyncio.wait_for(asyncio.shield(revocations._refreshing), timeout=5)
    assert await revocations.is_revoked(caller) is True


async def test_a_request_waits_for_a_reread_only_past_the_interval(app, monkeypatch):
    from api.security.tokens import Caller
    from models.users import Role

    caller = Caller(uuid.uuid4(), uuid.uuid4(), Role.clinician, session_id=uuid.uuid4(), issued_at=1.0)
    revocations = app.state.revocations
    assert await revocations.is_revoked(caller) is False
    started, finish = asyncio.Event(), asyncio.Event()

    async def slow_reread(_age: float) -> None:
        started.set()
        await finish.wait()

    monkeypatch.setattr(revocations, "_reload", slow_reread)
    revocations._loaded_at -= revocations._poll_seconds * 0.6
    assert await asyncio.wait_for(revocations.is_revoked(caller), timeout=0.2) is False  # answered at once
    await asyncio.wait_for(started.wait(), timeout=1)  # while a reread is under way

    revocations._loaded_at -= revocations._poll_seconds
    waiting = asyncio.create_task(revocations.is_revoked(caller))
    await asyncio.sleep(0.1)
    assert not waiting.done()  # past the interval: the request waits for a fresh copy
    finish.set()
    assert await asyncio.wait_for(waiting, timeout=1) is False


async def test_releasing_the_app_ends_a_reread_in_flight_and_gives_its_connection_back(app, monkeypatch):
    """As a process stops (and as each test ends), a background reread must not outlive the app: left running, it
    would hold its connection mid-statement, with its locks, after the event loop had gone."""
    from api.security.tokens import Caller
    from models.users import Role

    caller = Caller(uuid.uuid4(), uuid.uuid4(), Role.clinician, session_id=uuid.uuid4(), issued_at=1.0)
    revocations = app.state.revocations
    assert await revocations.is_revoked(caller) is False
    started, gave_back = asyncio.Event(), asyncio.Event()

    async def stalled_reread(_age: float) -> None:
        connection = await app.state.engine.raw_connection()
        try:
            started.set()
            await asyncio.Event().wait()  # a statement that does not come back
        finally:
            connection.close()
            gave_back.set()

    monkeypatch.setattr(revocations, "_reload", stalled_reread)
    revocations._loaded_at -= revocations._poll_seconds * 0.6
    assert await revocations.is_revoked(caller) is False
    await asyncio.wait_for(started.wait(), timeout=1)
    await asyncio.wait_for(release(app), timeout=5)
    assert gave_back.is_set() and revocations._refreshing is None
