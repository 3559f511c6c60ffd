"""Sealing small secrets the server must read back (staff TOTP seeds, webhook signing secrets) so that a copy of the
database alone does not give them away.

Fernet from the `cryptography` package (AES-128-CBC with HMAC-SHA256, authenticated, versioned tokens) under a key
derived from SECRET_KEY with HKDF-SHA256 (RFC 5869), one key per purpose. A sealed value that was altered, or sealed
under another SECRET_KEY, does not open (`SealedSecretError`).

Rotating SECRET_KEY therefore makes every sealed secret unreadable: TOTP owners sign in with a recovery code and
enrol again (docs/accounts.md); a webhook's secret is rotated by its admin.
"""

from __future__ import annotations

import base64
import functools

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

PURPOSE = b"calmtrack secretbox v2"


class SealedSecretError(Exception):
    pass


@functools.lru_cache(maxsize=8)
def _fernet(secret_key: str) -> Fernet:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=PURPOSE).derive(secret_key.encode())
    return Fernet(base64.urlsafe_b64encode(key))


def seal(secret_key: str, plaintext: str) -> str:
    return _fernet(secret_key).encrypt(plaintext.encode()).decode()


def open_sealed(secret_key: str, sealed: str) -> str:
    try:
        return _fernet(secret_key).decrypt(sealed.encode()).decode()
    except (InvalidToken, ValueError):
        raise SealedSecretError("altered, or sealed under another key") from None
