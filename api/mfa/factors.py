"""Checking a second factor: a TOTP code (RFC 6238) or a single-use recovery code. Used by login and by the
enrolment routes; each accepted code is spent in one conditional UPDATE, so two requests racing with the same code
cannot both succeed, on any number of processes.

TOTP parameters are RFC 6238's defaults, the ones every authenticator app supports: HMAC-SHA1, 6 digits, 30-second
steps, and one step of clock drift accepted either way (section 5.2). A code is accepted once: the user's last
accepted step is remembered, and a code of that step or an earlier one is refused (no replay within its window).
"""

from __future__ import annotations

import datetime as dt
import hmac
import secrets
import uuid

import pyotp
from sqlalchemy import or_, select, update
from sqlmodel.ext.asyncio.session import AsyncSession

from api.security.secretbox import SealedSecretError, open_sealed
from api.security.tokens import digest
from models.users import RecoveryCode, UserTotp

ISSUER = "Calmtrack"
DIGITS = 6
PERIOD_SECONDS = 30
DRIFT_STEPS = 1

RECOVERY_CODE_COUNT = 10
# Crockford base32 without I, L, O, U (as enrollment codes); 10 characters: 50 bits each, shown as XXXXX-XXXXX.
RECOVERY_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
RECOVERY_CODE_LENGTH = 10


def new_secret() -> str:
    """160 random bits (RFC 4226's recommended length), base32 as authenticator apps expect."""
    return pyotp.random_base32(32)


def new_recovery_codes() -> list[str]:
    codes = ("".join(secrets.choice(RECOVERY_ALPHABET) for _ in range(RECOVERY_CODE_LENGTH))
             for _ in range(RECOVERY_CODE_COUNT))
    return [f"{code[:5]}-{code[5:]}" for code in codes]


def recovery_code_hash(code: str) -> str:
    cleaned = code.upper().replace("-", "").replace(" ", "")
    return digest("recovery:" + cleaned.translate(str.maketrans({"O": "0", "I": "1", "L": "1"})))


def totp_of(secret: str) -> pyotp.TOTP:
    return pyotp.TOTP(secret, digits=DIGITS, interval=PERIOD_SECONDS)


def is_totp_code(code: str) -> bool:
    return len(code) == DIGITS and code.isascii() and code.isdigit()


def matching_step(secret: str, code: str, now: dt.datetime) -> int | None:
    """The time step whose code `code` is (within the accepted drift), or None."""
    if not is_totp_code(code):
        return None
    totp = totp_of(secret)
    current = totp.timecode(now)
    matched = None
    for step in range(current - DRIFT_STEPS, current + DRIFT_STEPS + 1):  # every step compared: constant work
        if hmac.compare_digest(totp.generate_otp(step), code):
            matched = step
    return matched


async def authenticator(session: AsyncSession, user_id: uuid.UUID) -> UserTotp | None:
    return (await session.exec(select(UserTotp).where(UserTotp.user_id == user_id))).scalar_one_or_none()


async def has_confirmed_totp(session: AsyncSession, user_id: uuid.UUID) -> bool:
    row = (await session.exec(select(UserTotp.confirmed_at).where(UserTotp.user_id == user_id))).first()
    return row is not None and row[0] is not None


async def accept_totp(
    session: AsyncSession, secret_key: str, row: UserTotp, code: str, now: dt.datetime
) -> bool:
    """Spends a TOTP code of `row`'s authenticator: True once per time step, never for an earlier step."""
    try:
        secret = open_sealed(secret_key, row.secret_encrypted)
    except SealedSecretError:
        return False  # sealed under another SECRET_KEY: only a recovery code gets this user in (docs/accounts.md)
    step = matching_step(secret, code, now)
    if step is None:
        return False
    spent = await session.exec(
        update(UserTotp)
        .where(UserTotp.user_id == row.user_id, or_(UserTotp.last_step.is_(None), UserTotp.last_step < step))
        .values(last_step=step)
    )
    return spent.rowcount == 1


async def accept_recovery_code(session: AsyncSession, user_id: uuid.UUID, code: str, now: dt.datetime) -> bool:
    if not 1 <= len(code) <= 32:
        return False
    spent = await session.exec(
        update(RecoveryCode)
        .where(RecoveryCode.user_id == user_id, RecoveryCode.code_hash == recovery_code_hash(code),
               RecoveryCode.used_at.is_(None))
        .values(used_at=now)
    )
    return spent.rowcount == 1


async def accept_second_factor(
    session: AsyncSession, secret_key: str, row: UserTotp, code: str, now: dt.datetime
) -> str | None:
    """Spends `code` as a TOTP code (six digits) or else as a recovery code: "totp", "recovery_code" or None."""
    code = code.strip()
    if is_totp_code(code):
        return "totp" if await accept_totp(session, secret_key, row, code, now) else None
    return "recovery_code" if await accept_recovery_code(session, row.user_id, code, now) else None
