"""API clients (the contract's "Integrations"): creation with the secret shown once, listing, revocation, the OAuth
client-credentials grant (RFC 6749 4.4) with its error shapes, and what a client's scopes let it do."""

from __future__ import annotations

import base64
import uuid
from urllib.parse import quote_plus

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api.security.scopes import Scope
from models import ApiClient, AuditEvent
from tests.conftest import make_settings
from tests.matrix import Route, by_role, cell_id, cells, check_route
from tests.plan_helpers import rows

FORM = {"Content-Type": "application/x-www-form-urlencoded"}


async def create_client(client, world, scopes=("scores:read",), name="Acme EHR"):
    answer = await client.post("/v1/api-clients", json={"name": name, "scopes": list(scopes)},
                               headers=world.admin.headers)
    assert answer.status_code == 201, answer.text
    return answer.json()


def form(**fields) -> str:
    return "&".join(f"{quote_plus(k)}={quote_plus(v)}" for k, v in fields.items())


async def token(client, body: str | bytes, headers=None):
    return await client.post("/v1/auth/token", content=body, headers={**FORM, **(headers or {})})


async def grant(client, created, **extra) -> dict:
    answer = await token(client, form(grant_type="client_credentials", client_id=created["client_id"],
                                      client_secret=created["client_secret"], **extra))
    assert answer.status_code == 200, answer.text
    return answer.json()


def bearer(access: dict) -> dict[str, str]:
    return {"Authorization": f"Bearer {access['access_token']}"}


def basic(client_id: str, secret: str) -> dict[str, str]:
    raw = f"{quote_plus(client_id)}:{quote_plus(secret)}".encode()
    return {"Authorization": "Basic " + base64.b64encode(raw).decode()}


# --- managing clients -----------------------------------------------------------------------------------------


async def test_the_secret_is_shown_once_and_stored_hashed(client, world, app):
    created = await create_client(client, world, scopes=["scores:read", "patients:read"])
    assert set(created) >= {"id", "client_id", "client_secret", "name", "scopes", "created_at"}
    assert created["scopes"] == ["patients:read", "scores:read"]
    assert created["client_secret"].startswith("cts_") and len(created["client_secret"]) >= 43
    [stored] = await rows(app, ApiClient, ApiClient.id == uuid.UUID(created["id"]))
    assert created["client_secret"] not in stored.secret_hash and len(stored.secret_hash) == 64
    listed = (await client.get("/v1/api-clients", headers=world.admin.headers)).json()
    assert listed["items"][0]["id"] == created["id"]  # newest first
    assert all("client_secret" not in c and "secret_hash" not in c for c in listed["items"])
    read = (await client.get(f"/v1/api-clients/{created['id']}", headers=world.admin.headers)).json()
    assert "client_secret" not in read and read["client_id"] == created["client_id"]
    assert (await rows(app, AuditEvent, AuditEvent.action == "api_client.create"))[0].actor_id == world.admin.id


async def test_list_pages_and_other_organizations_see_nothing(client, world):
    made = [await create_client(client, world, name=f"client {n}") for n in range(3)]
    seen, cursor = [], None
    while True:
        page = (await client.get("/v1/api-clients", params={"limit": 2, **({"cursor": cursor} if cursor else {})},
                                 headers=world.admin.headers)).json()
        seen += [c["id"] for c in page["items"]]
        if not (cursor := page["next_cursor"]):
            break
    # The world's own clients of org A (one per scope, and a revoked one) and the three new ones, each once.
    expected = {str(c.id) for name, c in world.clients.items() if name != "client_b"} | {c["id"] for c in made}
    assert sorted(seen) == sorted(expected)
    theirs = (await client.get("/v1/api-clients", headers=world.admin_b.headers)).json()["items"]
    assert [c["id"] for c in theirs] == [str(world.clients["client_b"].id)]
    for method in ("GET", "DELETE"):
        other = await client.request(method, f"/v1/api-clients/{made[0]['id']}", headers=world.admin_b.headers)
        missing = await client.request(method, f"/v1/api-clients/{uuid.uuid4()}", headers=world.admin_b.headers)
        assert other.status_code == missing.status_code == 404


@pytest.mark.parametrize("body", [
    {"name": "x", "scopes": []},
    {"name": "x", "scopes": ["scores:admin"]},
    {"name": "x", "scopes": ["scores:read", "scores:read"]},
    {"name": "", "scopes": ["scores:read"]},
    {"name": "x", "scopes": ["scores:read"], "client_secret": "mine"},
    {"scopes": ["scores:read"]},
])
async def test_invalid_clients_are_422(client, world, body):
    answer = await client.post("/v1/api-clients", json=body, headers=world.admin.headers)
    assert answer.status_code == 422 and answer.headers["content-type"] == "application/problem+json"


CLIENT_ROUTES = [
    Route("create_api_client", "POST", lambda w: "/v1/api-clients", by_role(admin=201, clinician=403, patient=403),
          json=lambda w: {"name": "EHR", "scopes": ["scores:read"]}),
    Route("list_api_clients", "GET", lambda w: "/v1/api-clients", by_role(admin=200, clinician=403, patient=403)),
    Route("read_api_client", "GET", lambda w: f"/v1/api-clients/{w.clients['client_scores_read'].id}",
          {**by_role(admin=200, clinician=403, patient=403), "admin_b": 404}),
    Route("revoke_api_client", "DELETE", lambda w: f"/v1/api-clients/{w.clients['client_scores_read'].id}",
          {**by_role(admin=204, clinician=403, patient=403), "admin_b": 404}),
]


@pytest.mark.parametrize(("route", "caller"), cells(CLIENT_ROUTES), ids=cell_id)
async def test_access(client, world, route, caller):
    await check_route(client, world, route, caller)


# --- the token endpoint ---------------------------------------------------------------------------------------


async def test_body_credentials_grant_a_short_lived_scoped_token(client, world):
    created = await create_client(client, world, scopes=["patients:read", "scores:read"])
    answer = await token(client, form(grant_type="client_credentials", client_id=created["client_id"],
                                      client_secret=created["client_secret"]))
    assert answer.status_code == 200, answer.text
    assert answer.headers["cache-control"] == "no-store" and answer.headers["content-type"] == "application/json"
    body = answer.json()
    assert body["token_type"] == "bearer" and 0 < body["expires_in"] <= 900
    assert body["scope"] == "patients:read scores:read" and "refresh_token" not in body
    patient = await client.get(f"/v1/patients/{world.patient.id}", headers=bearer(body))
    assert patient.status_code == 200
    assert (await client.get("/v1/me", headers=bearer(body))).status_code == 403


async def test_basic_credentials_and_a_narrower_scope(client, world):
    created = await create_client(client, world, scopes=["patients:read", "scores:read"])
    answer = await token(client, form(grant_type="client_credentials", scope="scores:read"),
                         basic(created["client_id"], created["client_secret"]))
    assert answer.status_code == 200, answer.text
    narrow = answer.json()
    assert narrow["scope"] == "scores:read"
    refused = await client.get(f"/v1/patients/{world.patient.id}", headers=bearer(narrow))
    assert refused.status_code == 403 and refused.json()["code"] == "insufficient_scope"
    assert refused.headers["www-authenticate"] == (
        'Bearer realm="calmtrack", error="insufficient_scope", scope="patients:read"')
    scores = await client.get(f"/v1/patients/{world.patient.id}/scores", headers=bearer(narrow))
    assert scores.status_code == 200


async def test_a_wrong_secret_is_invalid_client_and_audited(client, world, app):
    created = await create_client(client, world)
    wrong = await token(client, form(grant_type="client_credentials", client_id=created["client_id"],
                                     client_secret="cts_wrong"))
    assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_client"
    assert "www-authenticate" not in wrong.headers  # body credentials: no Basic challenge
    basic_wrong = await token(client, form(grant_type="client_credentials"), basic(created["client_id"], "nope"))
    assert basic_wrong.status_code == 401 and basic_wrong.json()["error"] == "invalid_client"
    assert basic_wrong.headers["www-authenticate"].startswith("Basic")
    unknown = await token(client, form(grant_type="client_credentials", client_id="ctc_unknown",
                                       client_secret=created["client_secret"]))
    assert unknown.status_code == 401 and unknown.json() == {**unknown.json(), "error": "invalid_client"}
    failed = await rows(app, AuditEvent, AuditEvent.action == "auth.client_failed")
    assert len(failed) == 3 and all(e.outcome == "denied" for e in failed)


@pytest.mark.parametrize(("body", "headers", "status", "error"), [
    (form(grant_type="password", client_id="a", client_secret="b"), None, 400, "unsupported_grant_type"),
    (form(client_id="a", client_secret="b"), None, 400, "invalid_request"),
    ("grant_type=client_credentials&grant_type=client_credentials", None, 400, "invalid_request"),
    ("grant_type=client_credentials&&", None, 400, "invalid_request"),
    (b"grant_type=client_credentials&client_id=%ff", None, 400, "invalid_request"),
    ('{"grant_type": "client_credentials"}', {"Content-Type": "application/json"}, 400, "invalid_request"),
    (form(grant_type="client_credentials"), {"Content-Type": "text/plain"}, 400, "invalid_request"),
    (form(grant_type="client_credentials"), {"Content-Type": f"{FORM['Content-Type']}; charset=latin-1"}, 400,
     "invalid_request"),
    (form(grant_type="client_credentials"), None, 401, "invalid_client"),
    (form(grant_type="client_credentials"), {"Authorization": "Basic !!!"}, 401, "invalid_client"),
    (form(grant_type="client_credentials"), {"Authorization": "Bearer abc"}, 401, "invalid_client"),
    (form(grant_type="client_credentials", client_id="a", client_secret="b"), {"Authorization": "Basic YTpi"}, 400,
     "invalid_request"),
])
async def test_bad_requests_answer_rfc_6749_errors(client, world, body, headers, status, error):
    answer = await token(client, body, headers)
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/json"
    assert answer.json()["error"] == error and answer.json()["error_description"]
    assert answer.headers["cache-control"] == "no-store"


async def test_duplicate_credentials_are_refused_even_when_right(client, world):
    created = await create_client(client, world)
    body = form(grant_type="client_credentials", client_id=created["client_id"],
                client_secret=created["client_secret"]) + "&client_secret=" + quote_plus(created["client_secret"])
    answer = await token(client, body)
    assert answer.status_code == 400 and answer.json()["error"] == "invalid_request"


@pytest.mark.parametrize("scope", ["alerts:read", "scores:read alerts:read", "everything", ""])
async def test_a_scope_beyond_the_clients_is_invalid_scope(client, world, scope):
    created = await create_client(client, world, scopes=["scores:read"])
    answer = await token(client, form(grant_type="client_credentials", client_id=created["client_id"],
                                      client_secret=created["client_secret"], scope=scope))
    if scope == "":  # an empty parameter counts as omitted (RFC 6749 3.2): every scope of the client
        assert answer.status_code == 200 and answer.json()["scope"] == "scores:read"
    else:
        assert answer.status_code == 400 and answer.json()["error"] == "invalid_scope"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.binary(max_size=300))
async def test_no_body_makes_the_token_endpoint_fail(client, world, body):
    answer = await client.post("/v1/auth/token", content=body, headers=FORM)
    assert answer.status_code in (400, 401), answer.text
    assert answer.json()["error"] in ("invalid_request", "unsupported_grant_type", "invalid_client")


async def test_repeated_failures_lock_the_client_out_like_logins(app, world, database_url):
    from api.app import create_app, release
    import httpx

    strict = create_app(make_settings(database_url, login_max_failures=3, login_lockout_base_seconds=60))
    transport = httpx.ASGITransport(app=strict, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://calmtrack.test") as http:
        created = await create_client(http, world)
        wrong = form(grant_type="client_credentials", client_id=created["client_id"], client_secret="cts_guess")
        assert [(await token(http, wrong)).status_code for _ in range(3)] == [401, 401, 401]
        right = form(grant_type="client_credentials", client_id=created["client_id"],
                     client_secret=created["client_secret"])
        locked = await token(http, right)
        assert locked.status_code == 429 and locked.json()["error"] == "temporarily_unavailable"
        assert int(locked.headers["retry-after"]) > 0
    await release(strict)


# --- revocation -----------------------------------------------------------------------------------------------


async def test_revoking_refuses_its_tokens_at_once_and_grants_no_more(client, world, app):
    created = await create_client(client, world, scopes=["patients:read"])
    access = await grant(client, created)
    assert (await client.get(f"/v1/patients/{world.patient.id}", headers=bearer(access))).status_code == 200

    revoked = await client.delete(f"/v1/api-clients/{created['id']}", headers=world.admin.headers)
    assert revoked.status_code == 204
    refused = await client.get(f"/v1/patients/{world.patient.id}", headers=bearer(access))
    assert refused.status_code == 401 and refused.json()["code"] == "invalid_token"
    again = await token(client, form(grant_type="client_credentials", client_id=created["client_id"],
                                     client_secret=created["client_secret"]))
    assert again.status_code == 401 and again.json()["error"] == "invalid_client"
    assert (await client.delete(f"/v1/api-clients/{created['id']}", headers=world.admin.headers)).status_code == 204
    read = (await client.get(f"/v1/api-clients/{created['id']}", headers=world.admin.headers)).json()
    assert read["revoked_at"] is not None
    assert len(await rows(app, AuditEvent, AuditEvent.action == "api_client.revoke")) == 1


async def test_another_process_refuses_a_revoked_clients_token_within_a_second(client, world, app, settings):
    import asyncio

    import httpx

    from api.app import create_app, release

    created = await create_client(client, world, scopes=["patients:read"])
    access = await grant(client, created)
    other = create_app(settings)  # a second server process: its own revocation cache
    transport = httpx.ASGITransport(app=other, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://calmtrack.test") as second:
        url = f"/v1/patients/{world.patient.id}"
        assert (await second.get(url, headers=bearer(access))).status_code == 200
        assert (await client.delete(f"/v1/api-clients/{created['id']}", headers=world.admin.headers)).status_code == 204
        await asyncio.sleep(settings.revocation_poll_seconds + 0.1)
        assert (await second.get(url, headers=bearer(access))).status_code == 401
    await release(other)


# --- what a client is ------------------------------------------------------------------------------------------


async def test_audit_rows_name_the_client(client, world, app):
    created = await create_client(client, world, scopes=["patients:read"])
    access = await grant(client, created)
    await client.get(f"/v1/patients/{world.patient.id}", headers=bearer(access))
    [read] = await rows(app, AuditEvent, AuditEvent.action == "patient.read")
    assert (read.actor_id, read.actor_type, read.patient_id) == (uuid.UUID(created["id"]), "api_client",
                                                                  world.patient.id)
    [issued] = await rows(app, AuditEvent, AuditEvent.action == "auth.token")
    assert issued.actor_type == "api_client"
    by_actor = await client.get("/v1/audit-events", params={"actor_id": created["id"]}, headers=world.admin.headers)
    assert {e["action"] for e in by_actor.json()["items"]} >= {"patient.read", "auth.token"}


async def test_an_integration_score_says_so(client, world, app):
    created = await create_client(client, world, scopes=["scores:write", "scores:read"])
    access = await grant(client, created)
    body = {"id": str(uuid.uuid4()), "instrument": "gad7", "items": [1, 1, 1, 1, 1, 1, 1],
            "recorded_at": "2026-11-20T08:30:00+01:00", "note": "from the EHR"}
    answer = await client.post(f"/v1/patients/{world.patient.id}/scores", json=body, headers=bearer(access))
    assert answer.status_code == 201, answer.text
    assert answer.json()["source"] == "integration" and answer.json()["entered_by"] == created["id"]
    replay = await client.post(f"/v1/patients/{world.patient.id}/scores", json=body, headers=bearer(access))
    assert replay.status_code == 200
    mine = await client.get(f"/v1/scores/{body['id']}", headers=world.patient_user.headers)
    assert mine.json()["note"] is None  # the clinic's note, not the patient's
    # Retracting is not in any scope.
    retract = await client.delete(f"/v1/scores/{body['id']}", headers=bearer(access))
    assert retract.status_code == 403 and retract.json()["code"] == "forbidden"


async def test_clients_see_their_whole_organization_and_nothing_else(client, world):
    created = await create_client(client, world, scopes=["patients:read"])
    access = await grant(client, created)
    listed = (await client.get("/v1/patients", headers=bearer(access))).json()
    assert {p["id"] for p in listed["items"]} == {str(world.patient.id), str(world.other_patient.id),
                                                  str(world.fresh_patient.id)}
    hidden = await client.get(f"/v1/patients/{world.patient_b.id}", headers=bearer(access))
    missing = await client.get(f"/v1/patients/{uuid.uuid4()}", headers=bearer(access))
    assert hidden.status_code == missing.status_code == 404
    assert hidden.json()["detail"] == missing.json()["detail"]


async def test_every_scope_can_be_granted(client, world):
    created = await create_client(client, world, scopes=[s.value for s in Scope])
    assert (await grant(client, created))["scope"] == " ".join(sorted(s.value for s in Scope))


async def test_the_token_endpoint_is_documented_for_generated_clients():
    from tests.conftest import openapi_document

    operation = openapi_document()["paths"]["/v1/auth/token"]["post"]
    assert operation["operationId"] == "auth-token"
    form_schema = operation["requestBody"]["content"]["application/x-www-form-urlencoded"]["schema"]
    assert form_schema == {"$ref": "#/components/schemas/TokenRequest"}
    for status in ("400", "401", "429"):
        assert operation["responses"][status]["content"] == {
            "application/json": {"schema": {"$ref": "#/components/schemas/OAuthErrorBody"}}}
    assert operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith("/TokenAnswer")
    components = openapi_document()["components"]
    assert {"TokenRequest", "OAuthErrorBody", "TokenAnswer"} <= set(components["schemas"])
    assert components["securitySchemes"]["HTTPBasic"]["scheme"] == "basic"


async def test_the_instrument_catalogue_is_open_to_any_client(client, world):
    """Reference data (item wording, ranges, bands) an integration needs to read scores; nothing about anyone."""
    for name in ("client_webhooks_manage", "client_b"):
        answer = await client.get("/v1/instruments", headers=world.clients[name].headers)
        assert answer.status_code == 200 and {i["code"] for i in answer.json()["items"]} >= {"gad7", "phq9"}
