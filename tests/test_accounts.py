"""Account lifecycle (issue 11): deactivating, reactivating and re-roling staff, the last active admin, changing a
password, and re-enrolling a patient who lost their phone. Every change ends the access it must at once."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
from sqlalchemy import select

from api.app import create_app, release
from models import AuditEvent, User
from models.users import Role
from tests.conftest import make_settings
from tests.factories import PASSWORD, add_user, token_for
from tests.session_helpers import active_plan, create_session, session_body

NEW_PASSWORD = "a brand new long passphrase"


async def login(client, email: str, password: str = PASSWORD) -> httpx.Response:
    return await client.post("/v1/auth/login", json={"email": email, "password": password})


async def signed_in(client, email: str, password: str = PASSWORD) -> dict:
    answer = await login(client, email, password)
    assert answer.status_code == 200, answer.text
    return answer.json()


def bearer(pair: dict) -> dict[str, str]:
    return {"Authorization": f"Bearer {pair['access_token']}"}


async def patch_user(client, actor, user_id, body: dict) -> httpx.Response:
    return await client.patch(f"/v1/users/{user_id}", json=body, headers=actor.headers)


async def actions(app, *names: str) -> list[tuple[str, str | None, str]]:
    async with app.state.sessions() as session:
        rows = (await session.exec(
            select(AuditEvent.action, AuditEvent.resource_id, AuditEvent.outcome)
            .where(AuditEvent.action.in_(names)).order_by(AuditEvent.at))).all()
    return [tuple(row) for row in rows]


# --- deactivation ------------------------------------------------------------------------------------------


async def test_a_deactivated_clinician_is_refused_at_once_and_cannot_sign_in(app, client, world):
    pair = await signed_in(client, world.clinician.user.email)
    assert (await client.get("/v1/patients", headers=bearer(pair))).status_code == 200

    answer = await patch_user(client, world.admin, world.clinician.id, {"is_active": False})
    assert answer.status_code == 200, answer.text
    assert answer.json()["is_active"] is False

    refused = await client.get("/v1/patients", headers=bearer(pair))
    assert refused.status_code == 401 and refused.json()["code"] == "invalid_token"
    assert (await client.post("/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]})).status_code == 401
    # The same answer as a wrong password: nothing tells a former employee that the account exists but is disabled.
    disabled = await login(client, world.clinician.user.email)
    wrong = await login(client, world.therapist.user.email, "not the password at all")
    assert disabled.status_code == wrong.status_code == 401
    assert (disabled.json()["code"], disabled.json()["detail"]) == (wrong.json()["code"], wrong.json()["detail"])
    assert await actions(app, "user.deactivate") == [("user.deactivate", str(world.clinician.id), "success")]
    # History stays: the account is listed, inactive, and still on the patient's care team.
    staff = (await client.get("/v1/users", headers=world.admin.headers)).json()["items"]
    assert {u["id"]: u["is_active"] for u in staff}[str(world.clinician.id)] is False
    team = (await client.get(f"/v1/patients/{world.patient.id}", headers=world.admin.headers)).json()["care_team"]
    assert str(world.clinician.id) in {m["user_id"] for m in team}


async def test_a_deactivation_reaches_another_server_process_within_a_second(app, client, world, database_url):
    """A second app on the same database stands for another server process: the deactivation is handled by the
    first, and the second refuses the clinician's token on its own (it polls the revocations), without sleeping
    longer than the contract's second."""
    other = create_app(make_settings(database_url, revocation_poll_seconds=0.2))
    try:
        transport = httpx.ASGITransport(app=other, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://other.test") as other_client:
            pair = await signed_in(client, world.clinician.user.email)
            assert (await other_client.get("/v1/me", headers=bearer(pair))).status_code == 200

            assert (await patch_user(client, world.admin, world.clinician.id, {"is_active": False})).status_code == 200
            assert (await client.get("/v1/me", headers=bearer(pair))).status_code == 401  # this process: at once

            deadline = time.monotonic() + 1.0
            while (status := (await other_client.get("/v1/me", headers=bearer(pair))).status_code) == 200:
                assert time.monotonic() < deadline, "the other process still accepts the token after 1 s"
                await asyncio.sleep(0.05)
            assert status == 401
            assert (await login(other_client, world.clinician.user.email)).status_code == 401
    finally:
        await release(other)


async def test_a_reactivated_user_signs_in_again(client, world):
    assert (await patch_user(client, world.admin, world.clinician.id, {"is_active": False})).status_code == 200
    assert (await login(client, world.clinician.user.email)).status_code == 401
    again = await patch_user(client, world.admin, world.clinician.id, {"is_active": True})
    assert again.status_code == 200 and again.json()["is_active"] is True
    pair = await signed_in(client, world.clinician.user.email)
    assert (await client.get("/v1/patients", headers=bearer(pair))).status_code == 200


async def test_a_role_change_ends_the_old_tokens_and_a_refresh_carries_the_new_role(app, client, world):
    pair = await signed_in(client, world.clinician.user.email)
    answer = await patch_user(client, world.admin, world.clinician.id, {"role": "admin", "full_name": "Cleo Chief"})
    assert answer.status_code == 200, answer.text
    assert (answer.json()["role"], answer.json()["full_name"]) == ("admin", "Cleo Chief")

    assert (await client.get("/v1/me", headers=bearer(pair))).status_code == 401
    refreshed = await client.post("/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    assert refreshed.status_code == 200, refreshed.text
    assert (await client.get("/v1/me", headers=bearer(refreshed.json()))).json()["role"] == "admin"
    assert (await client.get("/v1/audit-events", headers=bearer(refreshed.json()))).status_code == 200
    assert {a[0] for a in await actions(app, "user.rename", "user.role_to_admin")} == {"user.rename",
                                                                                      "user.role_to_admin"}


async def test_a_rename_alone_leaves_the_tokens_working(client, world):
    pair = await signed_in(client, world.clinician.user.email)
    assert (await patch_user(client, world.admin, world.clinician.id, {"full_name": "Cleo C."})).status_code == 200
    assert (await client.get("/v1/me", headers=bearer(pair))).json()["full_name"] == "Cleo C."


@pytest.mark.parametrize("change", [{"is_active": False}, {"role": "clinician"}])
async def test_the_last_active_admin_can_be_neither_deactivated_nor_demoted(client, world, change):
    answer = await patch_user(client, world.admin, world.admin.id, change)
    assert answer.status_code == 409
    assert answer.json()["code"] == "last_active_admin"
    assert (await client.get("/v1/me", headers=world.admin.headers)).status_code == 200  # nothing changed


async def test_an_admin_steps_down_once_another_admin_exists(client, world):
    assert (await patch_user(client, world.admin, world.clinician.id, {"role": "admin"})).status_code == 200
    assert (await patch_user(client, world.admin, world.admin.id, {"role": "clinician"})).status_code == 200
    # The promoted clinician is now the organization's only active admin, and may not step down in turn.
    promoted = await signed_in(client, world.clinician.user.email)
    last = await client.patch(f"/v1/users/{world.clinician.id}", json={"role": "clinician"}, headers=bearer(promoted))
    assert last.status_code == 409 and last.json()["code"] == "last_active_admin"


async def test_two_admins_deactivating_each_other_at_once_leave_one(app, client, world):
    """Both requests read "another active admin exists" unless they are serialized (the organization's row is
    locked first): exactly one succeeds, the other is the last admin's 409, and one admin remains."""
    async with app.state.sessions() as session:
        second = await add_user(session, world.org_a, Role.admin, "Second Admin")
        await session.commit()
    second_headers = {"Authorization": f"Bearer {token_for(app, second)}"}
    for _ in range(3):
        answers = await asyncio.gather(
            client.patch(f"/v1/users/{second.id}", json={"is_active": False}, headers=world.admin.headers),
            client.patch(f"/v1/users/{world.admin.id}", json={"is_active": False}, headers=second_headers),
        )
        assert sorted(a.status_code for a in answers) == [200, 409], [a.text for a in answers]
        async with app.state.sessions() as session:
            admins = (await session.exec(select(User.id).where(
                User.organization_id == world.org_a.id, User.role == Role.admin, User.is_active.is_(True)))).all()
        assert len(admins) == 1
        # Put things back for the next round (the survivor reactivates the other).
        survivor = world.admin.headers if admins[0][0] == world.admin.id else second_headers
        revived = second.id if admins[0][0] == world.admin.id else world.admin.id
        assert (await client.patch(f"/v1/users/{revived}", json={"is_active": True},
                                   headers=survivor)).status_code == 200
        # Deactivation revoked the loser's tokens: mint fresh ones for the next round.
        second_headers = {"Authorization": f"Bearer {token_for(app, second)}"}
        world.admin.token = token_for(app, world.admin.user)


async def test_patients_logins_and_other_organizations_staff_are_not_found(client, world):
    assert (await patch_user(client, world.admin, world.patient_user.id, {"is_active": False})).status_code == 404
    assert (await patch_user(client, world.admin, world.admin_b.id, {"is_active": False})).status_code == 404
    assert (await patch_user(client, world.admin_b, world.clinician.id, {"full_name": "X"})).status_code == 404


@pytest.mark.parametrize("body", [{"is_active": None}, {"role": "patient"}, {"role": None}, {"full_name": ""},
                                  {"is_active": "no"}, {"email": "x@example.com"}])
async def test_invalid_changes_are_422(client, world, body):
    assert (await patch_user(client, world.admin, world.clinician.id, body)).status_code == 422


async def test_a_deactivated_clinician_cannot_join_a_care_team_or_supervise_a_session(client, world):
    plan = await active_plan(client, world)
    assert (await patch_user(client, world.admin, world.monitor.id, {"is_active": False})).status_code == 200
    assert (await patch_user(client, world.admin, world.other_clinician.id, {"is_active": False})).status_code == 200

    joined = await client.put(f"/v1/patients/{world.patient.id}/care-team/{world.other_clinician.id}",
                              json={"role": "monitor"}, headers=world.clinician.headers)
    assert joined.status_code == 422
    supervised = await create_session(client, world.clinician, world.patient.id,
                                      session_body(world, plan["id"], supervising_clinician_id=str(world.monitor.id)))
    assert supervised.status_code == 422
    assert supervised.json()["errors"][0]["loc"] == ["body", "supervising_clinician_id"]


# --- password change ----------------------------------------------------------------------------------------


async def change_password(client, pair: dict, current: str = PASSWORD, new: str = NEW_PASSWORD) -> httpx.Response:
    return await client.post("/v1/me/password", json={"current_password": current, "new_password": new},
                             headers=bearer(pair))


async def test_a_password_change_ends_every_other_session_and_keeps_this_one(app, client, world):
    email = world.clinician.user.email
    laptop = await signed_in(client, email)
    tablet = await signed_in(client, email)

    assert (await change_password(client, laptop)).status_code == 204

    # The other session: its access token and its refresh token are refused at once.
    assert (await client.get("/v1/me", headers=bearer(tablet))).status_code == 401
    assert (await client.post("/v1/auth/refresh", json={"refresh_token": tablet["refresh_token"]})).status_code == 401
    # This session continues, and keeps refreshing.
    assert (await client.get("/v1/patients", headers=bearer(laptop))).status_code == 200
    refreshed = await client.post("/v1/auth/refresh", json={"refresh_token": laptop["refresh_token"]})
    assert refreshed.status_code == 200
    assert (await client.get("/v1/me", headers=bearer(refreshed.json()))).status_code == 200
    # Only the new password signs in.
    assert (await login(client, email)).status_code == 401
    assert (await login(client, email, NEW_PASSWORD)).status_code == 200
    assert await actions(app, "user.password_change") == [("user.password_change", str(world.clinician.id),
                                                            "success")]


async def test_a_patient_changes_their_password_too(client, world):
    phone = await signed_in(client, world.patient_user.user.email)
    assert (await change_password(client, phone)).status_code == 204
    assert (await login(client, world.patient_user.user.email, NEW_PASSWORD)).status_code == 200


async def test_a_wrong_current_password_is_422_and_counts_toward_the_lockout(client, world, settings):
    pair = await signed_in(client, world.clinician.user.email)
    for _ in range(settings.login_max_failures):
        wrong = await change_password(client, pair, current="not my password at all")
        assert wrong.status_code == 422
        assert wrong.json()["code"] == "invalid_current_password"
        assert wrong.json()["errors"][0]["loc"] == ["body", "current_password"]
    locked = await change_password(client, pair)
    assert locked.status_code == 429 and "retry-after" in locked.headers
    assert (await login(client, world.clinician.user.email)).status_code == 429
    assert (await client.get("/v1/me", headers=bearer(pair))).status_code == 200  # the session itself goes on


@pytest.mark.parametrize("new", ["short", "x" * 257])
async def test_a_new_password_follows_the_creation_rules(client, world, new):
    pair = await signed_in(client, world.clinician.user.email)
    answer = await change_password(client, pair, new=new)
    assert answer.status_code == 422
    assert answer.json()["errors"][0]["loc"] == ["body", "new_password"]
    assert (await login(client, world.clinician.user.email)).status_code == 200


# --- re-enrollment ------------------------------------------------------------------------------------------


async def test_a_lost_phone_re_enrollment_keeps_the_login_and_its_data(app, client, world):
    old_phone = await signed_in(client, world.patient_user.user.email)
    score = await client.post("/v1/me/scores", headers=bearer(old_phone), json={
        "id": "5b3e1a52-0c1e-4c1e-9a51-4c1f0c6f1a01", "instrument": "gad7", "items": [2, 1, 2, 3, 1, 0, 2],
        "recorded_at": "2026-11-20T08:30:00+01:00"})
    assert score.status_code == 201, score.text
    plan = await active_plan(client, world)

    code = await client.post(f"/v1/patients/{world.patient.id}/enrollment-codes", headers=world.clinician.headers)
    assert code.status_code == 201
    enrolled = await client.post("/v1/auth/enroll", json={"code": code.json()["code"], "email": "pat.new@example.com",
                                                          "password": NEW_PASSWORD})
    assert enrolled.status_code == 201, enrolled.text
    new_phone = enrolled.json()

    # The old phone is out: access and refresh tokens both refused.
    assert (await client.get("/v1/me", headers=bearer(old_phone))).status_code == 401
    assert (await client.post("/v1/auth/refresh",
                              json={"refresh_token": old_phone["refresh_token"]})).status_code == 401
    # The new phone is the same login, with the same data.
    me = (await client.get("/v1/me", headers=bearer(new_phone))).json()
    assert (me["id"], me["patient_id"], me["email"]) == (str(world.patient_user.id), str(world.patient.id),
                                                        "pat.new@example.com")
    scores = (await client.get("/v1/me/scores", headers=bearer(new_phone))).json()["items"]
    assert [s["id"] for s in scores] == [score.json()["id"]]
    plans = (await client.get(f"/v1/patients/{world.patient.id}/plans", headers=bearer(new_phone))).json()["items"]
    assert [p["id"] for p in plans] == [plan["id"]]
    assert (await client.post("/v1/auth/refresh",
                              json={"refresh_token": new_phone["refresh_token"]})).status_code == 200
    # Only the new email and password sign in.
    assert (await login(client, world.patient_user.user.email)).status_code == 401
    assert (await login(client, "pat.new@example.com", NEW_PASSWORD)).status_code == 200
    # Audited with the clinician who issued the code as its actor.
    async with app.state.sessions() as session:
        events = (await session.exec(select(AuditEvent).where(AuditEvent.action == "auth.reenroll"))).scalars().all()
    assert [(e.actor_id, e.resource_id, e.patient_id) for e in events] == [
        (world.clinician.id, str(world.patient_user.id), world.patient.id)]


async def test_a_re_enrollment_answer_lost_is_answered_again(client, world):
    code = (await client.post(f"/v1/patients/{world.patient.id}/enrollment-codes",
                              headers=world.clinician.headers)).json()
    body = {"code": code["code"], "email": "pat.new@example.com", "password": NEW_PASSWORD}
    first = await client.post("/v1/auth/enroll", json=body)
    again = await client.post("/v1/auth/enroll", json=body)
    assert first.status_code == again.status_code == 201
    for pair in (first.json(), again.json()):
        assert (await client.get("/v1/me", headers=bearer(pair))).json()["id"] == str(world.patient_user.id)
    other = await client.post("/v1/auth/enroll", json={**body, "password": "yet another long password"})
    assert other.status_code == 422


async def test_a_re_enrollment_with_a_taken_email_is_409_and_counted(client, world):
    code = (await client.post(f"/v1/patients/{world.patient.id}/enrollment-codes",
                              headers=world.clinician.headers)).json()
    old_phone = await signed_in(client, world.patient_user.user.email)
    taken = [world.clinician.user.email, world.admin.user.email, world.admin_b.user.email, world.clinician_b.user.email]
    answers = [await client.post("/v1/auth/enroll", json={"code": code["code"], "email": email,
                                                           "password": NEW_PASSWORD}) for email in taken]
    assert [a.status_code for a in answers] == [409, 409, 409, 422]
    assert answers[0].json()["code"] == "email_taken"
    # Nothing changed for the login meanwhile.
    assert (await client.get("/v1/me", headers=bearer(old_phone))).status_code == 200
    assert (await login(client, world.patient_user.user.email)).status_code == 200


async def test_re_enrolling_with_the_same_email_only_resets_the_password(client, world):
    code = (await client.post(f"/v1/patients/{world.patient.id}/enrollment-codes",
                              headers=world.clinician.headers)).json()
    email = world.patient_user.user.email
    enrolled = await client.post("/v1/auth/enroll", json={"code": code["code"], "email": email,
                                                          "password": NEW_PASSWORD})
    assert enrolled.status_code == 201, enrolled.text
    assert (await login(client, email, NEW_PASSWORD)).status_code == 200
