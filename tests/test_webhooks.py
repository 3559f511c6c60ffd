"""Webhook subscriptions through the API: registering (secret shown once), listing, reading, changing, deleting,
who may (admins of the organization; another organization's webhook is 404), audit, the SSRF rules at
registration, and bad input as problems, never 500. Delivery is in test_webhook_delivery.py."""

from __future__ import annotations

import base64
import uuid

import pytest
from sqlalchemy import select

from api.security.scopes import Scope
from api.webhooks.service import MAX_WEBHOOKS
from models import AuditEvent, WebhookEndpoint
from tests.factories import CLIENT_B
from tests.matrix import Route, by_role, cell_id, cells, check_route
from tests.plan_helpers import rows
from tests.webhook_helpers import resolver_of, subscribe

URL = "https://hooks.example.com/calmtrack"
PUBLIC = "93.184.215.14"


@pytest.fixture(autouse=True)
def resolver(app):
    """hooks.example.com is public; internal.example.com private; mixed.example.com both."""
    app.state.webhook_resolver = resolver_of({
        "hooks.example.com": [PUBLIC], "internal.example.com": ["10.1.2.3"],
        "mixed.example.com": [PUBLIC, "192.168.0.7"], "metadata.example.com": ["169.254.169.254"],
        "v6.example.com": ["2606:4700::1111"], "ula.example.com": ["fd12:3456::1"],
    })


def development(app, **extra):
    app.state.settings = app.state.settings.model_copy(update={"environment": "development", **extra})


async def create(client, actor, body, **headers):
    return await client.post("/v1/webhooks", json=body, headers={**actor.headers, **headers})


# --- registering and reading ----------------------------------------------------------------------------------------

async def test_registering_answers_the_secret_once(client, world, app):
    response = await create(client, world.admin, {"url": URL, "events": ["score.created", "alert.raised",
                                                                          "score.created"],
                                                  "description": "  EHR inbox  "})
    assert response.status_code == 201, response.text
    created = response.json()
    assert response.headers["location"] == f"/v1/webhooks/{created['id']}"
    assert created["secret"].startswith("whsec_")
    assert len(base64.b64decode(created["secret"].removeprefix("whsec_"))) == 32
    assert {k: created[k] for k in ("url", "events", "description", "status", "failing_since", "last_error")} == {
        "url": URL, "events": ["alert.raised", "score.created"], "description": "EHR inbox", "status": "active",
        "failing_since": None, "last_error": None}
    read = await client.get(f"/v1/webhooks/{created['id']}", headers=world.admin.headers)
    assert read.status_code == 200
    assert "secret" not in read.json() and read.json() == {k: v for k, v in created.items() if k != "secret"}
    listed = await client.get("/v1/webhooks", headers=world.admin.headers)
    assert [item["id"] for item in listed.json()["items"]] == [created["id"]]
    assert "secret" not in listed.json()["items"][0]
    [stored] = await rows(app, WebhookEndpoint)
    assert stored.secret == created["secret"] and stored.created_by == world.admin.id


async def test_secrets_differ(client, world):
    first = await subscribe(client, world.admin, URL)
    second = await subscribe(client, world.admin, URL)
    assert first["secret"] != second["secret"]


async def test_the_list_is_paginated_and_per_organization(client, world):
    ids = [(await subscribe(client, world.admin, f"{URL}/{i}"))["id"] for i in range(3)]
    await subscribe(client, world.admin_b, URL)
    seen, cursor = [], None
    while True:
        page = (await client.get("/v1/webhooks", params={"limit": 2, **({"cursor": cursor} if cursor else {})},
                                 headers=world.admin.headers)).json()
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ids


async def test_an_idempotent_retry_answers_the_same_webhook(client, world, app):
    body = {"url": URL, "events": ["plan.updated"]}
    first = await create(client, world.admin, body, **{"Idempotency-Key": "hook-1"})
    again = await create(client, world.admin, body, **{"Idempotency-Key": "hook-1"})
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
    assert len(await rows(app, WebhookEndpoint)) == 1


async def test_an_organization_has_at_most_twenty_webhooks(client, world):
    for i in range(MAX_WEBHOOKS):
        await subscribe(client, world.admin, f"{URL}/{i}")
    response = await create(client, world.admin, {"url": URL, "events": ["score.created"]})
    assert response.status_code == 409 and response.json()["code"] == "webhook_limit_reached"
    await subscribe(client, world.admin_b, URL)  # another organization's count is its own


# --- changing and deleting ------------------------------------------------------------------------------------------

async def test_patch_changes_only_what_is_sent(client, world):
    hook = await subscribe(client, world.admin, URL, ["score.created"], description="inbox")
    path = f"/v1/webhooks/{hook['id']}"
    changed = await client.patch(path, json={"events": ["plan.updated", "session.signed"]},
                                 headers=world.admin.headers)
    assert changed.status_code == 200, changed.text
    assert changed.json()["events"] == ["plan.updated", "session.signed"]
    assert changed.json()["description"] == "inbox" and changed.json()["url"] == URL
    assert changed.json()["updated_at"] > hook["updated_at"]
    cleared = await client.patch(path, json={"description": None, "url": "https://v6.example.com/x"},
                                 headers=world.admin.headers)
    assert (cleared.json()["description"], cleared.json()["url"]) == (None, "https://v6.example.com/x")
    paused = await client.patch(path, json={"status": "disabled"}, headers=world.admin.headers)
    assert paused.json()["status"] == "disabled"
    resumed = await client.patch(path, json={"status": "active"}, headers=world.admin.headers)
    assert resumed.json()["status"] == "active"


async def test_patch_checks_a_new_url_like_a_new_webhook(client, world):
    hook = await subscribe(client, world.admin, URL)
    response = await client.patch(f"/v1/webhooks/{hook['id']}", json={"url": "https://internal.example.com/x"},
                                  headers=world.admin.headers)
    assert response.status_code == 422 and response.json()["code"] == "webhook_target_forbidden"
    assert (await client.get(f"/v1/webhooks/{hook['id']}", headers=world.admin.headers)).json()["url"] == URL


@pytest.mark.parametrize("body", [{"url": None}, {"events": None}, {"status": None}, {"status": "failing"},
                                  {"events": []}, {"secret": "whsec_AAAA"}, {"id": str(uuid.uuid4())}])
async def test_patch_refuses_what_cannot_be_set(client, world, body):
    hook = await subscribe(client, world.admin, URL)
    response = await client.patch(f"/v1/webhooks/{hook['id']}", json=body, headers=world.admin.headers)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"


async def test_delete_removes_the_webhook_and_its_history(client, world, app):
    hook = await subscribe(client, world.admin, URL)
    assert (await client.post(f"/v1/webhooks/{hook['id']}/test", headers=world.admin.headers)).status_code == 202
    deleted = await client.delete(f"/v1/webhooks/{hook['id']}", headers=world.admin.headers)
    assert deleted.status_code == 204 and deleted.content == b""
    assert (await client.get(f"/v1/webhooks/{hook['id']}", headers=world.admin.headers)).status_code == 404
    assert (await client.delete(f"/v1/webhooks/{hook['id']}", headers=world.admin.headers)).status_code == 404
    assert await rows(app, WebhookEndpoint) == []


async def test_every_change_is_audited(client, world, app):
    hook = await subscribe(client, world.admin, URL)
    path = f"/v1/webhooks/{hook['id']}"
    await client.patch(path, json={"events": ["alert.raised"]}, headers=world.admin.headers)
    await client.post(f"{path}/test", headers=world.admin.headers)
    await client.delete(path, headers=world.admin.headers)
    async with app.state.sessions() as session:
        events = (await session.exec(select(AuditEvent).where(AuditEvent.resource_type == "webhook")
                                     .order_by(AuditEvent.at))).scalars().all()
    assert [(e.action, e.resource_id, e.actor_id, e.organization_id, e.outcome) for e in events] == [
        (action, hook["id"], world.admin.id, world.org_a.id, "success")
        for action in ("webhook.create", "webhook.update", "webhook.test", "webhook.delete")]


# --- who may ------------------------------------------------------------------------------------------------------

def manager_only(ok: int) -> dict[str, int]:
    """Admins and API clients holding `webhooks:manage`, of either organization, get `ok`; everyone else 403."""
    return by_role(admin=ok, clinician=403, patient=403, scope=Scope.webhooks_manage)


def on_hook(ok: int) -> dict[str, int]:
    """A route about world's webhook (of organization A): its managers `ok`, organization B's 404."""
    return {**manager_only(ok), "admin_b": 404, CLIENT_B: 404}


def hook_path(suffix: str = ""):
    return lambda w: f"/v1/webhooks/{w.extra['webhook_id']}{suffix}"


ROUTES = [
    Route("create_webhook", "POST", lambda w: "/v1/webhooks", manager_only(201),
          json=lambda w: {"url": URL, "events": ["score.created"]}),
    Route("list_webhooks", "GET", lambda w: "/v1/webhooks", manager_only(200)),
    Route("read_webhook", "GET", hook_path(), on_hook(200)),
    Route("update_webhook", "PATCH", hook_path(), on_hook(200), json=lambda w: {"description": "x"}),
    Route("delete_webhook", "DELETE", hook_path(), on_hook(204)),
    Route("list_deliveries", "GET", hook_path("/deliveries"), on_hook(200)),
    Route("test_webhook", "POST", hook_path("/test"), on_hook(202)),
]


@pytest.mark.parametrize(("route", "caller"), cells(ROUTES), ids=cell_id)
async def test_access(client, world, route, caller):
    world.extra["webhook_id"] = (await subscribe(client, world.admin, URL))["id"]
    await check_route(client, world, route, caller)


async def test_another_organizations_webhook_is_indistinguishable_from_a_missing_one(client, world):
    hook = await subscribe(client, world.admin, URL)
    for path in ("", "/deliveries"):
        hidden = await client.get(f"/v1/webhooks/{hook['id']}{path}", headers=world.admin_b.headers)
        missing = await client.get(f"/v1/webhooks/{uuid.uuid4()}{path}", headers=world.admin_b.headers)
        assert hidden.status_code == missing.status_code == 404
        assert hidden.json()["detail"] == missing.json()["detail"]
    assert (await client.get("/v1/webhooks", headers=world.admin_b.headers)).json()["items"] == []


def test_every_webhook_route_takes_the_one_caller_dependency():
    """The scope `webhooks:manage` is added in one place (api/webhooks/auth.py): every route must take it."""
    import typing

    from fastapi.routing import APIRoute

    from api.webhooks.auth import WebhookManager
    from api.webhooks.router import router

    [_, manager] = typing.get_args(WebhookManager)
    for route in router.routes:
        assert isinstance(route, APIRoute)
        assert manager.dependency in [d.call for d in route.dependant.dependencies], route.path


# --- SSRF at registration -----------------------------------------------------------------------------------------

FORBIDDEN = [
    "http://127.0.0.1", "http://169.254.169.254", "http://[::1]", "http://10.0.0.1",
    "https://127.0.0.1:8443/x", "https://10.0.0.1/x", "https://172.16.0.1", "https://192.168.1.1",
    "https://169.254.169.254/latest/meta-data/", "https://[fe80::1]/", "https://[fd00::1]/", "https://0.0.0.0/",
    "https://[::]/", "https://224.0.0.1/", "https://100.64.0.1/", "https://[::ffff:127.0.0.1]/",
    "https://[::ffff:169.254.169.254]/", "https://[64:ff9b::a00:1]/", "https://localhost/x",
    "https://hooks.localhost/x", "https://internal.example.com/x", "https://mixed.example.com/x",
    "https://metadata.example.com/", "https://ula.example.com/",
]


async def test_private_loopback_link_local_and_metadata_targets_are_refused(client, world, app):
    development(app)  # http allowed: the address alone refuses these
    for url in FORBIDDEN:
        response = await create(client, world.admin, {"url": url, "events": ["score.created"]})
        assert response.status_code == 422, (url, response.text)
        problem = response.json()
        assert response.headers["content-type"] == "application/problem+json"
        assert problem["code"] == "webhook_target_forbidden", url
        assert problem["errors"][0]["loc"] == ["body", "url"]
        assert "is not allowed as a webhook target" in problem["detail"]
    assert await rows(app, WebhookEndpoint) == []


async def test_the_contracts_examples_are_refused_outside_development_too(client, world):
    for url in ("http://127.0.0.1", "http://169.254.169.254", "http://[::1]", "http://10.0.0.1"):
        response = await create(client, world.admin, {"url": url, "events": ["score.created"]})
        assert response.status_code == 422
        assert response.json()["code"] in {"webhook_target_forbidden", "webhook_url_insecure"}


async def test_http_is_refused_outside_development(client, world, app):
    response = await create(client, world.admin, {"url": "http://hooks.example.com/x", "events": ["score.created"]})
    assert response.status_code == 422 and response.json()["code"] == "webhook_url_insecure"
    development(app)
    assert (await create(client, world.admin, {"url": "http://hooks.example.com/x",
                                               "events": ["score.created"]})).status_code == 201


async def test_the_setting_allows_private_targets(client, world, app):
    development(app, webhook_allow_private_targets=True)
    for url in ("http://127.0.0.1:9000/x", "http://[::1]:9000/", "https://internal.example.com/x"):
        assert (await create(client, world.admin, {"url": url, "events": ["score.created"]})).status_code == 201


async def test_public_targets_and_unresolvable_names_are_accepted(client, world):
    """A name that does not resolve now is accepted: DNS may be down for a moment; every delivery checks again."""
    for url in (URL, "https://v6.example.com/hook", f"https://{PUBLIC}/hook", "https://[2606:4700::1111]:8443/",
                "https://not-yet-deployed.example.org/hook"):
        response = await create(client, world.admin, {"url": url, "events": ["score.created"]})
        assert response.status_code == 201, (url, response.text)


# --- bad input: problems, never 500 -------------------------------------------------------------------------------

BAD_REGISTRATIONS = [
    {"url": URL, "events": ["score.deleted"]},
    {"url": URL, "events": ["*"]},
    {"url": URL, "events": []},
    {"url": URL, "events": "score.created"},
    {"url": URL},
    {"events": ["score.created"]},
    {"url": "not a url", "events": ["score.created"]},
    {"url": "ftp://hooks.example.com/x", "events": ["score.created"]},
    {"url": "//hooks.example.com/x", "events": ["score.created"]},
    {"url": "https://", "events": ["score.created"]},
    {"url": "https://user:password@hooks.example.com/x", "events": ["score.created"]},
    {"url": "https://hooks.example.com/x#part", "events": ["score.created"]},
    {"url": "https://hooks.example.com:99999/x", "events": ["score.created"]},
    {"url": "https://hooks example.com/x", "events": ["score.created"]},
    {"url": "https://2130706433/", "events": ["score.created"]},
    {"url": "https://127.1/", "events": ["score.created"]},
    {"url": "https://0x7f.0.0.1/", "events": ["score.created"]},
    {"url": "https://-bad-.example.com/", "events": ["score.created"]},
    {"url": "https://" + "a" * 2048 + ".example.com/", "events": ["score.created"]},
    {"url": "https://hooks.example.com/\u0000", "events": ["score.created"]},
    {"url": 42, "events": ["score.created"]},
    {"url": URL, "events": ["score.created"], "description": "x" * 501},
    {"url": URL, "events": ["score.created"], "secret": "whsec_mine"},
    {"url": URL, "events": ["score.created"], "status": "failing"},
]


async def test_bad_registrations_are_422_problems(client, world, app):
    for body in BAD_REGISTRATIONS:
        response = await create(client, world.admin, body)
        assert response.status_code == 422, (body, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["errors"]
    assert await rows(app, WebhookEndpoint) == []


async def test_bad_list_parameters_are_422(client, world):
    hook = await subscribe(client, world.admin, URL)
    for params in ({"limit": 0}, {"limit": 201}, {"limit": "x"}, {"cursor": "%%%"}, {"cursor": "eyJhIjoxfQ"},
                   {"status": "delivered"}, {"since": "x"}):
        for path in ("/v1/webhooks", f"/v1/webhooks/{hook['id']}/deliveries"):
            response = await client.get(path, params=params, headers=world.admin.headers)
            assert response.status_code == 422, (path, params, response.text)
            assert response.headers["content-type"] == "application/problem+json"


async def test_a_malformed_webhook_id_is_422_and_an_unknown_one_404(client, world):
    assert (await client.get("/v1/webhooks/not-a-uuid", headers=world.admin.headers)).status_code == 422
    for method, suffix in (("GET", ""), ("PATCH", ""), ("DELETE", ""), ("GET", "/deliveries"), ("POST", "/test")):
        response = await client.request(method, f"/v1/webhooks/{uuid.uuid4()}{suffix}", headers=world.admin.headers,
                                        json={"description": "x"} if method == "PATCH" else None)
        assert response.status_code == 404, (method, suffix)
        assert response.json()["code"] == "not_found"


# --- deliveries list ------------------------------------------------------------------------------------------------

async def test_deliveries_are_listed_newest_first_and_filtered_by_status(client, world):
    hook = await subscribe(client, world.admin, URL)
    path = f"/v1/webhooks/{hook['id']}"
    queued = [(await client.post(f"{path}/test", headers=world.admin.headers)).json() for _ in range(3)]
    first = (await client.get(f"{path}/deliveries", params={"limit": 2}, headers=world.admin.headers)).json()
    second = (await client.get(f"{path}/deliveries", params={"cursor": first["next_cursor"]},
                               headers=world.admin.headers)).json()
    listed = first["items"] + second["items"]
    assert [item["id"] for item in listed] == [q["delivery_id"] for q in reversed(queued)]
    assert second["next_cursor"] is None
    item = listed[0]
    assert (item["status"], item["attempt_count"], item["attempts"], item["event_type"]) == (
        "pending", 0, [], "webhook.test")
    assert item["next_attempt_at"] is not None and item["completed_at"] is None
    succeeded = await client.get(f"{path}/deliveries", params={"status": "succeeded"}, headers=world.admin.headers)
    assert succeeded.json() == {"items": [], "next_cursor": None}
