"""Login, lockout, refresh rotation and reuse detection, logout, token validation."""

import asyncio
import datetime as dt

import jwt
import pytest

from api.security.tokens import ACCESS_TOKEN_TYPE
from models.users import Role, User
from tests.factories import PASSWORD
from tests.tokens import BAD_TOKENS


async def login(client, email, password=PASSWORD):
    return await client.post("/v1/auth/login", json={"email": email, "password": password})


async def test_login_returns_token_pair_and_me(client, world):
    response = await login(client, world.clinician.user.email)
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "bearer"
    assert 0 < body["expires_in"] <= 15 * 60
    me = await client.get("/v1/me", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert me.status_code == 200
    assert me.json() == {
        "id": str(world.clinician.id), "email": world.clinician.user.email, "full_name": "Cleo Clinician",
        "role": "clinician", "organization_id": str(world.org_a.id), "patient_id": None, "timezone": None,
    }


async def test_login_email_is_case_insensitive(client, world):
    response = await login(client, world.clinician.user.email.upper())
    assert response.status_code == 200


async def test_patient_me_carries_patient_id(client, world):
    me = await client.get("/v1/me", headers=world.patient_user.headers)
    assert me.json()["patient_id"] == str(world.patient.id)
    assert me.json()["role"] == "patient"
    assert me.json()["timezone"] == world.patient.timezone


async def test_unknown_email_and_wrong_password_are_indistinguishable(client, world):
    wrong = await login(client, world.clinician.user.email, "not the password at all")
    unknown = await login(client, "nobody@example.com", "not the password at all")
    assert wrong.status_code == unknown.status_code == 401
    strip = lambda body: {k: v for k, v in body.items() if k != "request_id"}  # noqa: E731
    assert strip(wrong.json()) == strip(unknown.json())
    assert wrong.headers["www-authenticate"] == unknown.headers["www-authenticate"]
    assert wrong.json()["code"] == "invalid_credentials"


async def test_repeated_failures_lock_out_with_retry_after(client, world, settings):
    email = world.clinician.user.email
    for _ in range(settings.login_max_failures):
        assert (await login(client, email, "wrong password!!")).status_code == 401
    locked = await login(client, email)  # even the right password is refused while locked
    assert locked.status_code == 429
    assert int(locked.headers["retry-after"]) >= 1
    assert locked.headers["content-type"] == "application/problem+json"


async def test_unknown_email_locks_out_the_same_way(client, settings):
    for _ in range(settings.login_max_failures):
        assert (await login(client, "ghost@example.com", "wrong password!!")).status_code == 401
    assert (await login(client, "ghost@example.com", "wrong password!!")).status_code == 429


async def test_lockout_is_audited(client, world, settings):
    for _ in range(settings.login_max_failures):
        await login(client, world.clinician.user.email, "wrong password!!")
    events = await client.get("/v1/audit-events", params={"limit": 200}, headers=world.admin.headers)
    actions = [e["action"] for e in events.json()["items"]]
    assert "auth.lockout" in actions
    assert actions.count("auth.login_failed") == settings.login_max_failures


async def test_success_resets_failure_count(client, world, settings):
    email = world.clinician.user.email
    for _ in range(settings.login_max_failures - 1):
        await login(client, email, "wrong password!!")
    assert (await login(client, email)).status_code == 200
    for _ in range(settings.login_max_failures - 1):
        await login(client, email, "wrong password!!")
    assert (await login(client, email)).status_code == 200


def count_password_checks(monkeypatch) -> list[bool]:
    """Records the outcome of every password verification login performs."""
    from api.auth import service

    checked: list[bool] = []
    verify = service.verify_password

    def counting(password, password_hash):
        valid, new_hash = verify(password, password_hash)
        checked.append(valid)
        return valid, new_hash

    monkeypatch.setattr(service, "verify_password", counting)
    return checked


async def test_parallel_wrong_passwords_are_checked_at_most_the_limit(client, world, settings, monkeypatch):
    # Reading the lock, checking the password (~25 ms), then counting let a burst of 40 get ~15 guesses checked.
    checked = count_password_checks(monkeypatch)
    email = world.clinician.user.email
    answers = await asyncio.gather(*[login(client, email, f"wrong guess number {i}") for i in range(40)])
    statuses = sorted(answer.status_code for answer in answers)
    assert len(checked) == settings.login_max_failures
    assert statuses == [401] * settings.login_max_failures + [429] * (40 - settings.login_max_failures)
    failed = await client.get("/v1/audit-events", params={"limit": 200, "action": "auth.login_failed"},
                              headers=world.admin.headers)
    assert len(failed.json()["items"]) == settings.login_max_failures


async def test_a_right_password_inside_a_burst_of_guesses_is_refused_once_locked(
    client, world, settings, monkeypatch
):
    checked = count_password_checks(monkeypatch)
    email = world.clinician.user.email
    guesses = [login(client, email, f"wrong guess number {i}") for i in range(200)]
    guesses.insert(100, login(client, email))
    answers = await asyncio.gather(*guesses)
    wrong_checked = checked.count(False)
    assert wrong_checked <= settings.login_max_failures
    # The right password got through only if it was checked before the limit was reached.
    assert (answers[100].status_code == 200) == (True in checked)
    assert sum(answer.status_code == 401 for answer in answers) == wrong_checked


async def test_one_attempt_after_the_lock_expires_then_a_longer_lock(client, world, settings, app):
    from sqlalchemy import update

    from models.base import utcnow
    from models.users import LoginThrottle

    email = world.clinician.user.email
    for _ in range(settings.login_max_failures):
        await login(client, email, "wrong password!!")
    async with app.state.sessions() as session:  # the lock runs out
        await session.exec(update(LoginThrottle).values(locked_until=utcnow() - dt.timedelta(seconds=1)))
        await session.commit()
    answers = await asyncio.gather(*[login(client, email, "wrong password!!") for _ in range(10)])
    assert sorted(a.status_code for a in answers) == [401] + [429] * 9
    retry_after = max(int(a.headers["retry-after"]) for a in answers if a.status_code == 429)
    assert retry_after > settings.login_lockout_base_seconds  # doubled


async def test_stored_hash_is_argon2id_with_owasp_parameters(app, world):
    stored = world.clinician.user.password_hash
    assert stored.startswith("$argon2id$")
    params = dict(p.split("=") for p in stored.split("$")[3].split(","))
    assert int(params["m"]) >= 19 * 1024 and int(params["t"]) >= 2 and int(params["p"]) >= 1


async def test_refresh_rotates_and_old_token_stops_working(client, world):
    first = (await login(client, world.clinician.user.email)).json()
    second = await client.post("/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert second.status_code == 200
    assert second.json()["refresh_token"] != first["refresh_token"]
    third = await client.post("/v1/auth/refresh", json={"refresh_token": second.json()["refresh_token"]})
    assert third.status_code == 200


async def test_refresh_reuse_revokes_the_whole_family(client, world, app, settings):
    first = (await login(client, world.clinician.user.email)).json()
    second = (await client.post("/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})).json()
    await age_rotations(app, settings.refresh_reuse_grace_seconds + 1)
    reuse = await client.post("/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert reuse.status_code == 401
    assert reuse.json()["code"] == "invalid_refresh_token"
    # The legitimate holder's newer token is now dead too: the family is revoked.
    after = await client.post("/v1/auth/refresh", json={"refresh_token": second["refresh_token"]})
    assert after.status_code == 401
    # Other sessions of the same user (another family) are unaffected.
    other = (await login(client, world.clinician.user.email)).json()
    assert (await client.post("/v1/auth/refresh", json={"refresh_token": other["refresh_token"]})).status_code == 200


async def refresh(client, token):
    return await client.post("/v1/auth/refresh", json={"refresh_token": token})


async def age_rotations(app, seconds):
    """Moves every rotation `seconds` into the past, as if that much time had passed since."""
    from sqlalchemy import select

    from models.users import RefreshToken

    async with app.state.sessions() as session:
        for token in (await session.exec(select(RefreshToken).where(RefreshToken.rotated_at.is_not(None)))).scalars():
            token.rotated_at -= dt.timedelta(seconds=seconds)
        await session.commit()


@pytest.mark.postgres_only
async def test_concurrent_refreshes_with_one_token_both_end_with_a_working_session(client, world):
    pair = (await login(client, world.clinician.user.email)).json()
    answers = await asyncio.gather(*[refresh(client, pair["refresh_token"]) for _ in range(2)])
    assert [a.status_code for a in answers] == [200, 200]
    for answer in answers:
        me = await client.get("/v1/me", headers={"Authorization": f"Bearer {answer.json()['access_token']}"})
        assert me.status_code == 200
    # Whichever answer the phone kept goes on working; the family was not revoked.
    kept = answers[1].json()["refresh_token"]
    assert (await refresh(client, kept)).status_code == 200


async def test_a_lost_refresh_answer_retried_within_the_grace_keeps_the_login(client, world):
    first = (await login(client, world.clinician.user.email)).json()
    lost = (await refresh(client, first["refresh_token"])).json()
    retried = await refresh(client, first["refresh_token"])
    assert retried.status_code == 200
    assert retried.json()["refresh_token"] != lost["refresh_token"]
    kept = retried.json()["refresh_token"]
    assert (await refresh(client, kept)).status_code == 200
    # The answer the phone never got is superseded once the retried one is used: no second line of the family.
    assert (await refresh(client, lost["refresh_token"])).status_code == 401
    events = (await client.get("/v1/audit-events", params={"action": "auth.refresh_grace"},
                               headers=world.admin.headers)).json()["items"]
    assert len(events) == 1


async def test_reuse_after_the_grace_revokes_the_family(client, world, app, settings):
    first = (await login(client, world.clinician.user.email)).json()
    second = (await refresh(client, first["refresh_token"])).json()
    await age_rotations(app, settings.refresh_reuse_grace_seconds + 1)
    assert (await refresh(client, first["refresh_token"])).status_code == 401
    assert (await refresh(client, second["refresh_token"])).status_code == 401


async def test_grace_answers_stay_in_the_family(client, world, app, settings):
    # Presented three times within the window, a rotated token answers three children of one family: revoking it
    # (reuse after the grace) ends every one of them, so the grace never mints a session of its own.
    first = (await login(client, world.clinician.user.email)).json()
    children = [(await refresh(client, first["refresh_token"])).json() for _ in range(3)]
    assert len({c["refresh_token"] for c in children}) == 3
    await age_rotations(app, settings.refresh_reuse_grace_seconds + 1)
    assert (await refresh(client, first["refresh_token"])).status_code == 401
    for child in children:
        assert (await refresh(client, child["refresh_token"])).status_code == 401


async def test_a_token_whose_successor_was_refreshed_is_not_in_grace(client, world):
    # The phone moved on (refreshed the successor): the old token coming back, however soon, is theft.
    first = (await login(client, world.clinician.user.email)).json()
    second = (await refresh(client, first["refresh_token"])).json()
    third = (await refresh(client, second["refresh_token"])).json()
    assert (await refresh(client, first["refresh_token"])).status_code == 401
    assert (await refresh(client, third["refresh_token"])).status_code == 401


async def test_logout_ends_the_session(client, world):
    pair = (await login(client, world.clinician.user.email)).json()
    assert (await client.post("/v1/auth/logout", json={"refresh_token": pair["refresh_token"]})).status_code == 204
    assert (await client.post("/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]})).status_code == 401
    # Logging out twice, or with an unknown token, is harmless.
    assert (await client.post("/v1/auth/logout", json={"refresh_token": pair["refresh_token"]})).status_code == 204
    assert (await client.post("/v1/auth/logout", json={"refresh_token": "unknown"})).status_code == 204


async def test_unknown_refresh_token_is_401(client):
    response = await client.post("/v1/auth/refresh", json={"refresh_token": "not-a-token"})
    assert response.status_code == 401


@pytest.mark.parametrize("kind", sorted(BAD_TOKENS))
async def test_bad_tokens_are_401_with_www_authenticate(client, world, kind):
    response = await client.get("/v1/me", headers={"Authorization": f"Bearer {BAD_TOKENS[kind](world)}"})
    assert response.status_code == 401
    # RFC 6750 3.1: a presented token that is refused says so, so the client refreshes rather than re-prompts.
    assert response.headers["www-authenticate"] == 'Bearer realm="calmtrack", error="invalid_token"'
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "invalid_token"


async def test_missing_token_is_401(client):
    response = await client.get("/v1/me")
    assert response.status_code == 401
    # No token, no error code (RFC 6750 3.1): only the challenge.
    assert response.headers["www-authenticate"] == 'Bearer realm="calmtrack"'
    assert response.json()["code"] == "unauthorized"


async def test_refresh_token_cannot_be_used_as_bearer(client, world):
    pair = (await login(client, world.clinician.user.email)).json()
    response = await client.get("/v1/me", headers={"Authorization": f"Bearer {pair['refresh_token']}"})
    assert response.status_code == 401


async def test_access_token_lifetime_is_at_most_15_minutes(client, world):
    pair = (await login(client, world.clinician.user.email)).json()
    claims = jwt.decode(pair["access_token"], options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] <= 15 * 60
    assert jwt.get_unverified_header(pair["access_token"])["typ"] == ACCESS_TOKEN_TYPE


# --- enrollment ---------------------------------------------------------------------------------------------


async def issue_code(client, world, patient=None):
    patient = patient or world.fresh_patient
    response = await client.post(f"/v1/patients/{patient.id}/enrollment-codes", headers=world.clinician.headers)
    assert response.status_code == 201, response.text
    return response.json()


async def test_enrollment_creates_a_patient_login(client, world):
    code = await issue_code(client, world)
    expires = dt.datetime.fromisoformat(code["expires_at"])
    assert dt.timedelta(hours=71) < expires - dt.datetime.now(dt.UTC) <= dt.timedelta(hours=72)
    response = await client.post("/v1/auth/enroll", json={
        "code": code["code"].lower(), "email": "Finn@Example.com", "password": "a long enough secret"})
    assert response.status_code == 201, response.text
    token = response.json()["access_token"]
    me = (await client.get("/v1/me", headers={"Authorization": f"Bearer {token}"})).json()
    assert me["role"] == "patient" and me["patient_id"] == str(world.fresh_patient.id)
    assert me["email"] == "finn@example.com"
    # The new login works with email and password.
    assert (await login(client, "finn@example.com", "a long enough secret")).status_code == 200


async def test_enrollment_code_is_single_use(client, world):
    code = await issue_code(client, world)
    body = {"code": code["code"], "email": "finn@example.com", "password": "a long enough secret"}
    assert (await client.post("/v1/auth/enroll", json=body)).status_code == 201
    again = await client.post("/v1/auth/enroll", json={**body, "email": "finn2@example.com"})
    assert again.status_code == 422
    assert again.json()["errors"][0]["loc"] == ["body", "code"]


async def test_new_code_supersedes_the_old_one(client, world):
    old = await issue_code(client, world)
    new = await issue_code(client, world)
    body = {"email": "finn@example.com", "password": "a long enough secret"}
    assert (await client.post("/v1/auth/enroll", json={**body, "code": old["code"]})).status_code == 422
    assert (await client.post("/v1/auth/enroll", json={**body, "code": new["code"]})).status_code == 201


async def test_expired_code_is_refused(client, world, app):
    from sqlalchemy import update

    from models import EnrollmentCode

    code = await issue_code(client, world)
    async with app.state.sessions() as session:
        await session.exec(update(EnrollmentCode).values(expires_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)))
        await session.commit()
    response = await client.post("/v1/auth/enroll", json={
        "code": code["code"], "email": "finn@example.com", "password": "a long enough secret"})
    assert response.status_code == 422


async def test_enrollment_with_a_taken_email_is_409(client, world):
    code = await issue_code(client, world)
    response = await client.post("/v1/auth/enroll", json={
        "code": code["code"], "email": world.clinician.user.email, "password": "a long enough secret"})
    assert response.status_code == 409
    assert response.json()["code"] == "email_taken"


async def test_a_code_for_a_patient_who_has_a_login_meanwhile_re_enrolls_that_login(client, world, app):
    code = await issue_code(client, world)
    async with app.state.sessions() as session:  # another code of theirs was used in the meantime
        first = User(organization_id=world.fresh_patient.organization_id, email="first@example.com",
                     full_name="Finn Fresh", role=Role.patient, password_hash="x", patient_id=world.fresh_patient.id)
        session.add(first)
        await session.commit()
    response = await client.post("/v1/auth/enroll", json={**ENROLLMENT, "code": code["code"]})
    assert response.status_code == 201, response.text
    me = (await client.get("/v1/me", headers={"Authorization": f"Bearer {response.json()['access_token']}"})).json()
    assert (me["id"], me["email"]) == (str(first.id), ENROLLMENT["email"])


async def test_a_code_probing_for_taken_emails_is_void_after_three(client, world):
    # Each 409 tells the code's holder that an account with the email exists somewhere; a code allows three.
    code = await issue_code(client, world)
    taken = [world.clinician.user.email, world.admin.user.email, world.clinician_b.user.email, world.admin_b.user.email]
    answers = [await client.post("/v1/auth/enroll", json={"code": code["code"], "email": email,
                                                           "password": "a long enough secret"}) for email in taken]
    assert [a.status_code for a in answers] == [409, 409, 409, 422]
    honest = await client.post("/v1/auth/enroll", json={"code": code["code"], "email": "finn@example.com",
                                                         "password": "a long enough secret"})
    assert honest.status_code == 422  # the code is spent: the clinic issues a new one
    events = (await client.get("/v1/audit-events", params={"action": "auth.enroll_email_taken"},
                               headers=world.admin.headers)).json()["items"]
    assert [(e["outcome"], e["patient_id"]) for e in events] == [("denied", str(world.fresh_patient.id))] * 3
    fresh = await issue_code(client, world)
    assert (await client.post("/v1/auth/enroll", json={"code": fresh["code"], "email": "finn@example.com",
                                                       "password": "a long enough secret"})).status_code == 201


ENROLLMENT = {"email": "finn@example.com", "password": "a long enough secret"}


async def test_a_lost_enrollment_answer_is_answered_again(client, world):
    code = await issue_code(client, world)
    body = {**ENROLLMENT, "code": code["code"]}
    first = await client.post("/v1/auth/enroll", json=body)
    assert first.status_code == 201
    again = await client.post("/v1/auth/enroll", json={**body, "email": "Finn@Example.com"})
    assert again.status_code == 201, again.text
    assert again.json()["refresh_token"] != first.json()["refresh_token"]
    me = (await client.get("/v1/me", headers={"Authorization": f"Bearer {again.json()['access_token']}"})).json()
    assert me["patient_id"] == str(world.fresh_patient.id)
    assert (await client.post("/v1/auth/refresh", json={"refresh_token": again.json()["refresh_token"]})).status_code == 200
    events = (await client.get("/v1/audit-events", params={"action": "auth.enroll_replay"},
                               headers=world.admin.headers)).json()["items"]
    assert [(e["outcome"], e["patient_id"]) for e in events] == [("success", str(world.fresh_patient.id))]


async def test_a_used_code_is_no_password_oracle(client, world, settings, monkeypatch):
    code = await issue_code(client, world)
    body = {**ENROLLMENT, "code": code["code"]}
    assert (await client.post("/v1/auth/enroll", json=body)).status_code == 201
    checked = count_password_checks(monkeypatch)
    other_email = await client.post("/v1/auth/enroll", json={**body, "email": "eve@example.com"})
    assert other_email.status_code == 422 and other_email.json()["errors"][0]["loc"] == ["body", "code"]
    assert checked == [False]  # a refusal at the same cost, never against the login's hash
    # Wrong passwords are failed logins of that account: they lock it out like login's own failures.
    for _ in range(settings.login_max_failures):
        wrong = await client.post("/v1/auth/enroll", json={**body, "password": "another long secret"})
        assert wrong.status_code == 422 and wrong.json()["errors"][0]["loc"] == ["body", "code"]
    locked = await client.post("/v1/auth/enroll", json=body)
    assert locked.status_code == 422  # refused unchecked, and not a 429 that would confirm the email
    assert (await login(client, ENROLLMENT["email"], ENROLLMENT["password"])).status_code == 429


async def test_a_used_code_after_the_replay_window_is_refused(client, world, app):
    from sqlalchemy import update

    from models import EnrollmentCode

    code = await issue_code(client, world)
    body = {**ENROLLMENT, "code": code["code"]}
    assert (await client.post("/v1/auth/enroll", json=body)).status_code == 201
    async with app.state.sessions() as session:
        await session.exec(update(EnrollmentCode).values(used_at=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=11)))
        await session.commit()
    assert (await client.post("/v1/auth/enroll", json=body)).status_code == 422


async def test_a_code_for_a_patient_who_already_has_a_login_is_issued(client, world):
    # Re-enrollment (a lost phone): tests/test_accounts.py follows it through.
    response = await client.post(f"/v1/patients/{world.patient.id}/enrollment-codes", headers=world.clinician.headers)
    assert response.status_code == 201, response.text


async def test_enrollment_rejects_weak_password(client, world):
    code = await issue_code(client, world)
    response = await client.post("/v1/auth/enroll", json={
        "code": code["code"], "email": "finn@example.com", "password": "short"})
    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == ["body", "password"]


async def test_a_remembered_token_still_expires(client, world, app, monkeypatch):
    """Verified tokens are remembered to save work, but never past their own exp."""
    from api.security import tokens

    headers = world.clinician.headers
    assert (await client.get("/v1/me", headers=headers)).status_code == 200
    expiry = tokens._verified[(app.state.settings.secret_key, app.state.settings.jwt_audience,
                               app.state.settings.jwt_issuer, world.clinician.token)][1]
    monkeypatch.setattr(tokens.time, "time", lambda: expiry + 1)
    monkeypatch.setattr(tokens.jwt.api_jwt, "datetime", _frozen_datetime(expiry + 1))
    assert (await client.get("/v1/me", headers=headers)).status_code == 401


def _frozen_datetime(timestamp):
    class Frozen(dt.datetime):
        @classmethod
        def now(cls, tz=None):
            return dt.datetime.fromtimestamp(timestamp, tz)

    return Frozen
