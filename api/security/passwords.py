"""Argon2id password hashing through pwdlib (maintained, wraps argon2-cffi, handles rehash-on-login).

Parameters are OWASP's minimum for Argon2id (m = 19 MiB, t = 2, p = 1); raising them later is transparent because
`verify_and_update` rehashes on the next successful login.
"""

from functools import lru_cache

from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

ARGON2_MEMORY_KIB = 19 * 1024
ARGON2_TIME_COST = 2
ARGON2_PARALLELISM = 1


@lru_cache
def _hasher() -> PasswordHash:
    return PasswordHash(
        (Argon2Hasher(memory_cost=ARGON2_MEMORY_KIB, time_cost=ARGON2_TIME_COST, parallelism=ARGON2_PARALLELISM),)
    )


@lru_cache
def _dummy_hash() -> str:
    return _hasher().hash("calmtrack-timing-equaliser")


def hash_password(password: str) -> str:
    return _hasher().hash(password)


def verify_password(password: str, password_hash: str | None) -> tuple[bool, str | None]:
    """(valid, new hash if the stored one should be upgraded). A missing hash still costs one verification so that
    unknown accounts take as long to refuse as known ones."""
    if password_hash is None:
        _hasher().verify(password, _dummy_hash())
        return False, None
    return _hasher().verify_and_update(password, password_hash)
