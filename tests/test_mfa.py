"""Two-factor sign-in for staff (TOTP, RFC 6238): enrolment, confirmation, recovery codes, login with `otp`, replay
refusal, the lockout, removal, and the organization's `require_staff_mfa`. Time is the app's clock
(`app.state.clock`), moved by the tests: nothing sleeps."""

from __future__ import annotations

import datetime as dt
import urllib.parse

import jwt
import pyotp
import pytest
from sqlalchemy import select

from api.mfa.factors import PERIOD_SECONDS
from models import AuditEvent
from models.users import LoginThrottle, RecoveryCode, UserTotp
from tests.factories import PASSWORD

START = dt.datetime(2026, 11, 30, 9, 0, 0, tzinfo=dt.UTC)


class Clock:
    def __init__(self, now: dt.datetime) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += dt.timedelta(seconds=seconds)


@pytest.fixture
def clock(app) -> Clock:
    app.state.clock = Clock(START)
    return app.state.clock


def bearer(pair: dict) -> dict[str, str]:
    return {"Authorization": f"Bearer {pair['access_token']}"}


def code_at(secret: str, when: dt.datetime) -> str:
    return pyotp.TOTP(secret).at(when)


def another_code(secret: str, clock: Clock) -> str:
    """A six-digit code that is none of the accepted steps' codes."""
    accepted = {code_at(secret, clock.now + dt.timedelta(seconds=d * PERIOD_SECONDS)) for d in (-1, 0, 1)}
    return next(c for c in ("000000", "111111", "222222", "333333") if c not in accepted)


async def login(client, email: str, otp: str | None = None, password: str = PASSWORD):
    body = {"email": email, "password": password} | ({"otp": otp} if otp is not None else {})
    return await client.post("/v1/auth/login", json=body)


async def enrol(client, headers: dict, clock: Clock) -> tuple[str, list[str]]:
    started = await client.post("/v1/me/mfa/totp", headers=headers)
    assert started.status_code == 200, started.text
    secret = started.json()["secret"]
    uri = urllib.parse.urlparse(started.json()["otpauth_uri"])
    assert (uri.scheme, uri.netloc) == ("otpauth", "totp")
    assert urllib.parse.parse_qs(uri.query)["secret"] == [secret]
    assert urllib.parse.parse_qs(uri.query)["issuer"] == ["Calmtrack"]
    confirmed = await client.post("/v1/me/mfa/totp/confirm", json={"code": code_at(secret, clock.now)},
                                  headers=headers)
    assert confirmed.status_code == 200, confirmed.text
    codes = confirmed.json()["recovery_codes"]
    assert len(codes) == len(set(codes)) == 10
    clock.advance(PERIOD_SECONDS)  # the confirming code's step is spent
    return secret, codes


async def failures(app, email: str) -> int:
    from api.auth.service import _throttle_key

    async with app.state.sessions() as session:
        row = await session.get(LoginThrottle, _throttle_key(email))
        return row.failures if row else 0


async def test_the_totp_sequence(app, client, world, clock):
    email = world.clinician.user.email
    secret, recovery = await enrol(client, world.clinician.headers, clock)

    missing = await login(client, email)
    assert missing.status_code == 401
    assert missing.json()["type"].endswith("mfa-required") and missing.json()["code"] == "mfa_required"
    assert missing.headers["www-authenticate"].startswith("Bearer")

    wrong = await login(client, email, another_code(secret, clock))
    assert wrong.status_code == 401 and wrong.json()["code"] == "invalid_otp"
    assert await failures(app, email) == 2  # both refusals count toward the lockout

    code = code_at(secret, clock.now)
    right = await login(client, email, code)
    assert right.status_code == 200, right.text
    assert jwt.decode(right.json()["access_token"], options={"verify_signature": False})["mfa"] is True
    assert await failures(app, email) == 0

    replayed = await login(client, email, code)
    assert replayed.status_code == 401 and replayed.json()["code"] == "invalid_otp"
    # Neither is a code of an earlier step within the drift window, once a later one was accepted.
    clock.advance(PERIOD_SECONDS)
    assert (await login(client, email, code_at(secret, clock.now - dt.timedelta(seconds=PERIOD_SECONDS)))
            ).status_code == 401

    by_recovery = await login(client, email, recovery[0].lower())  # case and dashes as typed
    assert by_recovery.status_code == 200, by_recovery.text
    assert (await login(client, email, recovery[0])).status_code == 401
    assert (await login(client, email, recovery[1])).status_code == 200
    # The next step's code still works.
    clock.advance(PERIOD_SECONDS)
    assert (await login(client, email, code_at(secret, clock.now))).status_code == 200

    async with app.state.sessions() as session:
        events = {e.action for e in (await session.exec(select(AuditEvent))).scalars().all()}
    assert {"mfa.totp_start", "mfa.totp_confirm", "auth.mfa_required", "auth.otp_failed",
            "auth.recovery_code_used"} <= events


async def test_wrong_codes_lock_the_account_out(app, client, world, clock, settings):
    email = world.clinician.user.email
    secret, _ = await enrol(client, world.clinician.headers, clock)
    for _ in range(settings.login_max_failures):
        assert (await login(client, email, another_code(secret, clock))).status_code == 401
    locked = await login(client, email, code_at(secret, clock.now))
    assert locked.status_code == 429 and "retry-after" in locked.headers


async def test_a_wrong_password_with_a_right_code_is_the_plain_401(client, world, clock):
    secret, _ = await enrol(client, world.clinician.headers, clock)
    answer = await login(client, world.clinician.user.email, code_at(secret, clock.now), password="not it at all!")
    assert answer.status_code == 401 and answer.json()["code"] == "invalid_credentials"


async def test_secrets_are_shown_once_and_stored_sealed_or_hashed(app, client, world, clock):
    secret, recovery = await enrol(client, world.clinician.headers, clock)
    again = await client.post("/v1/me/mfa/totp", headers=world.clinician.headers)
    assert again.status_code == 409 and again.json()["code"] == "mfa_already_enabled"
    assert secret not in again.text
    async with app.state.sessions() as session:
        stored = await session.get(UserTotp, world.clinician.id)
        hashes = (await session.exec(select(RecoveryCode.code_hash))).scalars().all()
    assert stored.confirmed_at is not None and secret not in stored.secret_encrypted
    assert len(hashes) == 10 and not {c.replace("-", "") for c in recovery} & set(hashes)
    # Another SECRET_KEY cannot open it.
    from api.security.secretbox import SealedSecretError, open_sealed

    assert open_sealed(app.state.settings.secret_key, stored.secret_encrypted) == secret
    with pytest.raises(SealedSecretError):
        open_sealed("another-secret-key-of-more-than-32-bytes-long!!", stored.secret_encrypted)


async def test_a_pending_enrolment_changes_nothing_until_confirmed(client, world, clock):
    started = await client.post("/v1/me/mfa/totp", headers=world.clinician.headers)
    secret = started.json()["secret"]
    assert (await login(client, world.clinician.user.email)).status_code == 200
    wrong = await client.post("/v1/me/mfa/totp/confirm", json={"code": another_code(secret, clock)},
                              headers=world.clinician.headers)
    assert wrong.status_code == 422 and wrong.json()["code"] == "invalid_otp"
    assert wrong.json()["errors"][0]["loc"] == ["body", "code"]
    # Starting again replaces the pending secret: the first one's codes no longer confirm.
    restarted = (await client.post("/v1/me/mfa/totp", headers=world.clinician.headers)).json()["secret"]
    assert restarted != secret
    stale = await client.post("/v1/me/mfa/totp/confirm", json={"code": code_at(secret, clock.now)},
                              headers=world.clinician.headers)
    assert stale.status_code == 422


async def test_confirming_or_removing_without_an_authenticator_is_409(client, world, clock):
    confirm = await client.post("/v1/me/mfa/totp/confirm", json={"code": "123456"}, headers=world.clinician.headers)
    assert confirm.status_code == 409 and confirm.json()["code"] == "mfa_not_pending"
    remove = await client.request("DELETE", "/v1/me/mfa/totp", json={"code": "123456"},
                                  headers=world.clinician.headers)
    assert remove.status_code == 409 and remove.json()["code"] == "mfa_not_enabled"


@pytest.mark.parametrize("with_recovery_code", [False, True])
async def test_removing_two_factor_needs_a_code(app, client, world, clock, with_recovery_code):
    secret, recovery = await enrol(client, world.clinician.headers, clock)
    wrong = await client.request("DELETE", "/v1/me/mfa/totp", json={"code": another_code(secret, clock)},
                                 headers=world.clinician.headers)
    assert wrong.status_code == 422 and wrong.json()["code"] == "invalid_otp"
    assert await failures(app, world.clinician.user.email) == 1
    code = recovery[3] if with_recovery_code else code_at(secret, clock.now)
    removed = await client.request("DELETE", "/v1/me/mfa/totp", json={"code": code}, headers=world.clinician.headers)
    assert removed.status_code == 204, removed.text
    assert (await login(client, world.clinician.user.email)).status_code == 200
    async with app.state.sessions() as session:
        assert (await session.exec(select(RecoveryCode))).first() is None


async def test_patients_do_not_enrol(client, world, clock):
    answer = await client.post("/v1/me/mfa/totp", headers=world.patient_user.headers)
    assert answer.status_code == 403


# --- require_staff_mfa --------------------------------------------------------------------------------------


async def require_mfa(client, world, value: bool = True):
    answer = await client.patch("/v1/organization/settings", json={"require_staff_mfa": value},
                                headers=world.admin.headers)
    assert answer.status_code == 200, answer.text
    assert answer.json()["require_staff_mfa"] is value


async def test_required_two_factor_confines_staff_without_it_to_me_until_they_enrol(app, client, world, clock):
    session_pair = (await login(client, world.clinician.user.email)).json()
    patient_pair = (await login(client, world.patient_user.user.email)).json()
    await require_mfa(client, world)

    # The setting ends the staff's tokens at once; a refresh issues one under the new rule.
    assert (await client.get("/v1/patients", headers=bearer(session_pair))).status_code == 401
    gated = (await client.post("/v1/auth/refresh", json={"refresh_token": session_pair["refresh_token"]})).json()
    refused = await client.get("/v1/patients", headers=bearer(gated))
    assert refused.status_code == 403
    assert refused.json()["type"].endswith("mfa-enrollment-required")
    assert refused.json()["code"] == "mfa_enrollment_required"
    assert (await client.get("/v1/users", headers=bearer(gated))).status_code == 403
    assert (await client.get("/v1/me", headers=bearer(gated))).status_code == 200
    # Patients are not staff: untouched.
    assert (await client.get("/v1/me/scores", headers=bearer(patient_pair))).status_code == 200

    # Enrolling within the gated session lets that session through from its next refresh.
    await enrol(client, bearer(gated), clock)
    through = (await client.post("/v1/auth/refresh", json={"refresh_token": gated["refresh_token"]})).json()
    assert (await client.get("/v1/patients", headers=bearer(through))).status_code == 200
    # And a login with a code is through at once.
    secret_login = await login(client, world.clinician.user.email)
    assert secret_login.status_code == 401 and secret_login.json()["code"] == "mfa_required"


async def test_a_staff_login_without_two_factor_is_gated_and_with_it_is_not(app, client, world, clock):
    secret, _ = await enrol(client, world.clinician.headers, clock)
    admin_secret, _ = await enrol(client, world.admin.headers, clock)
    await require_mfa(client, world)
    without = (await login(client, world.therapist.user.email)).json()
    assert (await client.get("/v1/patients", headers=bearer(without))).status_code == 403
    with_code = (await login(client, world.clinician.user.email, code_at(secret, clock.now))).json()
    assert (await client.get("/v1/patients", headers=bearer(with_code))).status_code == 200
    # Turning the setting off lets the gated session through from its next refresh.
    admin_pair = (await login(client, world.admin.user.email, code_at(admin_secret, clock.now))).json()
    off = await client.patch("/v1/organization/settings", json={"require_staff_mfa": False},
                             headers=bearer(admin_pair))
    assert off.status_code == 200 and off.json()["require_staff_mfa"] is False
    refreshed = (await client.post("/v1/auth/refresh", json={"refresh_token": without["refresh_token"]})).json()
    assert (await client.get("/v1/patients", headers=bearer(refreshed))).status_code == 200


@pytest.mark.parametrize("value", [None, "yes", 1])
async def test_require_staff_mfa_is_true_or_false(client, world, value):
    answer = await client.patch("/v1/organization/settings", json={"require_staff_mfa": value},
                                headers=world.admin.headers)
    assert answer.status_code == 422
