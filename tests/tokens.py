"""Hand-made access tokens that must all be refused (RFC 8725): forged, expired, mis-addressed, wrong type."""

import base64
import json
import time

import jwt

from api.security.tokens import ACCESS_TOKEN_TYPE
from tests.conftest import TEST_SECRET


def _claims(world, **overrides):
    now = int(time.time())
    claims = {"sub": str(world.admin.id), "org": str(world.org_a.id), "role": "admin", "iss": "calmtrack",
              "aud": "calmtrack-api", "iat": now, "exp": now + 600}
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def _sign(claims, key=TEST_SECRET, alg="HS256", typ=ACCESS_TOKEN_TYPE):
    return jwt.encode(claims, key, algorithm=alg, headers={"typ": typ})


def _alg_none(claims):
    def part(obj):
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")

    return f"{part({'alg': 'none', 'typ': ACCESS_TOKEN_TYPE})}.{part(claims)}."


BAD_TOKENS = {
    "expired": lambda w: _sign(_claims(w, iat=int(time.time()) - 3600, exp=int(time.time()) - 60)),
    "other_key": lambda w: _sign(_claims(w), key="another-secret-key-that-is-also-32-bytes-long"),
    "alg_none": lambda w: _alg_none(_claims(w)),
    "wrong_audience": lambda w: _sign(_claims(w, aud="someone-else")),
    "wrong_issuer": lambda w: _sign(_claims(w, iss="evil")),
    "no_exp": lambda w: _sign(_claims(w, exp=None)),
    "no_sub": lambda w: _sign(_claims(w, sub=None)),
    "not_an_access_token": lambda w: _sign(_claims(w), typ="JWT"),
    "garbage": lambda w: "not.a.jwt",
    "hs512": lambda w: _sign(_claims(w), alg="HS512"),
}
