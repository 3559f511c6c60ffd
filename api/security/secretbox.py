"""Sealing small secrets the server must read back (TOTP shared secrets) so that a copy of the database alone does
not give them away.

The project has no encryption library among its dependencies and this needs no more than the standard library:
HMAC-SHA256 keyed with a key derived from SECRET_KEY serves as the pseudorandom function of a counter-mode key
stream (the construction of NIST SP 800-108's KDF in counter mode and of HKDF-Expand, RFC 5869), under a fresh
random 128-bit nonce per secret, and a second derived key authenticates nonce and ciphertext (encrypt-then-MAC,
HMAC-SHA256 tag checked in constant time). A sealed value that was altered, or sealed under another SECRET_KEY, does
not open (`SealedSecretError`).

Rotating SECRET_KEY therefore makes every enrolled authenticator unreadable: its owners sign in with a recovery code
and enrol again (docs/accounts.md).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

VERSION = b"v1"
_NONCE_BYTES = 16
_TAG_BYTES = 32


class SealedSecretError(Exception):
    pass


def _key(secret_key: str, purpose: bytes) -> bytes:
    return hmac.new(secret_key.encode(), b"calmtrack secretbox " + VERSION + b" " + purpose, hashlib.sha256).digest()


def _stream(key: bytes, nonce: bytes, length: int) -> bytes:
    blocks = (hmac.new(key, nonce + i.to_bytes(4, "big"), hashlib.sha256).digest() for i in range(-(-length // 32)))
    return b"".join(blocks)[:length]


def seal(secret_key: str, plaintext: str) -> str:
    data = plaintext.encode()
    nonce = secrets.token_bytes(_NONCE_BYTES)
    ciphertext = bytes(a ^ b for a, b in zip(data, _stream(_key(secret_key, b"enc"), nonce, len(data)), strict=True))
    tag = hmac.new(_key(secret_key, b"mac"), VERSION + nonce + ciphertext, hashlib.sha256).digest()
    return VERSION.decode() + "." + base64.urlsafe_b64encode(nonce + ciphertext + tag).decode()


def open_sealed(secret_key: str, sealed: str) -> str:
    version, _, body = sealed.partition(".")
    try:
        raw = base64.urlsafe_b64decode(body.encode())
    except ValueError:
        raise SealedSecretError("not a sealed secret") from None
    if version.encode() != VERSION or len(raw) < _NONCE_BYTES + _TAG_BYTES:
        raise SealedSecretError("not a sealed secret")
    nonce, ciphertext, tag = raw[:_NONCE_BYTES], raw[_NONCE_BYTES:-_TAG_BYTES], raw[-_TAG_BYTES:]
    expected = hmac.new(_key(secret_key, b"mac"), VERSION + nonce + ciphertext, hashlib.sha256).digest()
    if not hmac.compare_digest(tag, expected):
        raise SealedSecretError("altered, or sealed under another key")
    stream = _stream(_key(secret_key, b"enc"), nonce, len(ciphertext))
    return bytes(a ^ b for a, b in zip(ciphertext, stream, strict=True)).decode()
