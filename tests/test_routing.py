"""The routes' class (api/routing.py): the fast path answers exactly as FastAPI's own handler would.

Unknown query parameters are tested with the other errors (tests/test_errors.py)."""

import datetime as dt
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from starlette.requests import HTTPConnection, Request

import fastapi.routing
from fastapi import BackgroundTasks, Body, Depends
from pydantic import BaseModel
from api.instruments.registry import INSTRUMENTS
from api.routing import json_body
from api.scores.schemas import SCORE_CREATE, ScoreCreate
from tests.test_scores import body

# FastAPI parses any `application/*+json` body as JSON; the fast path takes application/json alone.
THROUGH_FASTAPI = "application/vnd.calmtrack+json"
# Differ between any two answers; the rest of an answer must be the same whichever handler wrote it.
VARYING_HEADERS = {"x-request-id", "content-length"}
VARYING_FIELDS = {"id", "received_at", "updated_at", "request_id"}


def _request(raw: bytes, content_type: str | None) -> Request:
    headers = [] if content_type is None else [(b"content-type", content_type.encode())]

    async def receive() -> dict:
        return {"type": "http.request", "body": raw, "more_body": False}

    return Request({"type": "http", "method": "POST", "path": "/", "headers": headers, "query_string": b""}, receive)


def _same(model: ScoreCreate) -> tuple:
    # Aware datetimes compare as instants: the offset the body gave is compared too.
    return model.model_dump(), model.recorded_at.utcoffset()


def _offset(minutes: int) -> dt.timezone:
    return dt.timezone(dt.timedelta(minutes=minutes))


uuids = st.uuids().flatmap(lambda u: st.sampled_from([str(u), u.hex, str(u).upper(), f"{{{u}}}", f"urn:uuid:{u}"]))
instants = st.datetimes(min_value=dt.datetime(1999, 12, 31), max_value=dt.datetime(2026, 12, 31),
                        timezones=st.one_of(st.none(), st.integers(-14 * 60, 14 * 60).map(_offset)))
past = st.datetimes(min_value=dt.datetime(2000, 1, 2), max_value=dt.datetime(2026, 1, 1),
                   timezones=st.integers(-14 * 60, 14 * 60).map(_offset))
recorded = st.one_of(
    instants.map(dt.datetime.isoformat),
    instants.map(lambda t: t.isoformat(sep=" ")),
    instants.map(lambda t: t.isoformat().replace("+00:00", "Z")),
    instants.map(lambda t: t.date().isoformat()),
    st.integers(0, 2_000_000_000), st.floats(allow_nan=False), st.text(max_size=30),
)
answers = st.lists(st.one_of(st.integers(-2, 101), st.floats(allow_nan=False, allow_infinity=False), st.booleans(),
                             st.sampled_from(["2", "", "1.0"]), st.none()), max_size=12)
notes = st.one_of(st.none(), st.text(max_size=40), st.integers(), st.just("x" * 2001), st.just("a\x00b"))
# Bodies that mostly validate, so that what the fast path accepts is compared too.
plausible = st.sampled_from(list(INSTRUMENTS.values())).flatmap(lambda instrument: st.fixed_dictionaries({
    "id": uuids, "instrument": st.just(instrument.code),
    "items": st.lists(st.integers(instrument.item_min, instrument.item_max), min_size=len(instrument.items),
                      max_size=len(instrument.items)),
    "recorded_at": st.one_of(past.map(dt.datetime.isoformat), past.map(lambda t: t.isoformat().replace("+00:00", "Z")),
                             recorded),
}, optional={"note": notes}))
bodies = plausible | st.fixed_dictionaries({}, optional={
    "id": st.one_of(uuids, st.text(max_size=36), st.integers()),
    "instrument": st.one_of(st.sampled_from(["gad7", "phq9", "gad2", "suds", "GAD7", "", "pcl5"]), st.text(max_size=5)),
    "items": answers, "recorded_at": recorded, "note": notes, "total": st.integers(0, 30),
})
# Bytes json.loads and pydantic's parser might read differently: a byte-order mark, surrounding space, a key given
# twice, a lone surrogate, trailing data, a truncated document.
encodings = st.sampled_from([
    lambda text: text, lambda text: text, lambda text: text,  # weighted: most bodies are sent as encoded
    lambda text: "\ufeff" + text, lambda text: f" \n{text}\t", lambda text: text + "x",
    lambda text: text[:-1], lambda text: text[:-1] + (', "note": "again"}' if len(text) > 2 else "}"),
    lambda text: text[:-1] + (', "note": "\\ud800"}' if len(text) > 2 else "}"),
])


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(bodies, st.booleans(), encodings, st.sampled_from(["application/json", "application/json; charset=utf-8",
                                                           "Application/JSON", " application/json ;x=y"]))
async def test_what_the_fast_path_accepts_fastapi_accepts_with_the_same_value(value, ascii_only, encode, content_type):
    raw = encode(json.dumps(value, ensure_ascii=ascii_only)).encode("utf-8", "surrogatepass")
    fast = await json_body(_request(raw, content_type), ScoreCreate)
    event("accepted" if fast is not None else "left to FastAPI")
    if fast is None:
        return  # left to FastAPI's handler: nothing to compare
    assert _same(SCORE_CREATE.validate_python(json.loads(raw))) == _same(fast)


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/jsonx", "application/x-www-form-urlencoded",
                                          THROUGH_FASTAPI, "multipart/form-data; boundary=x"])
async def test_other_content_types_are_left_to_fastapi(content_type):
    raw = json.dumps(body()).encode()
    assert await json_body(_request(raw, "application/json"), ScoreCreate) is not None
    assert await json_body(_request(raw, content_type), ScoreCreate) is None


@pytest.fixture
def fastapi_handled(monkeypatch) -> list[str]:
    """The requests FastAPI's own handler solved (its dependency solver is called once per request it handles)."""
    solved: list[str] = []
    solve = fastapi.routing.solve_dependencies

    async def counting(*, request, **kwargs):
        solved.append(request.url.path)
        return await solve(request=request, **kwargs)

    monkeypatch.setattr(fastapi.routing, "solve_dependencies", counting)
    return solved


def _unused() -> None:
    """A dependency no route has."""


async def both_ways(app, send) -> tuple:
    """`send()`'s answer on the fast path, then through FastAPI's handler: while `app.dependency_overrides` holds
    anything, a fast route leaves every request to FastAPI (overrides are FastAPI's to solve)."""
    fast = await send()
    app.dependency_overrides[_unused] = _unused
    try:
        return fast, await send()
    finally:
        app.dependency_overrides.clear()


def _normalised(response) -> tuple:
    answer = response.json() if response.content else None
    if isinstance(answer, dict):
        answer = {name: value for name, value in answer.items() if name not in VARYING_FIELDS}
    headers = sorted((name, value) for name, value in response.headers.items() if name not in VARYING_HEADERS)
    return response.status_code, headers, answer


async def assert_alike(app, send) -> Any:
    fast, through_fastapi = await both_ways(app, send)
    assert _normalised(fast) == _normalised(through_fastapi)
    return fast


async def test_ordinary_requests_take_the_fast_path_and_anything_else_fastapis(app, client, world, fastapi_handled):
    headers = world.patient_user.headers
    for response in [
        await client.post("/v1/me/scores", json=body(), headers=headers),
        await client.post("/v1/me/scores", json=body(), headers={**headers, "Prefer": "return=minimal"}),
        await client.get("/v1/me/chart", params={"instrument": "gad7"}, headers=headers),
        await client.get(f"/v1/patients/{world.patient.id}/chart", params={"instrument": "gad7", "bucket": "month"},
                         headers=world.clinician.headers),
        await client.get("/v1/dashboard", params={"sort": "name"}, headers=world.clinician.headers),
    ]:
        assert response.status_code in (200, 201), response.text
    assert fastapi_handled == []
    refused = [await client.post("/v1/me/scores", json=body(items=[9]), headers=headers),
               await client.get("/v1/me/chart", params={"instrument": "gad9"}, headers=headers)]
    assert [response.status_code for response in refused] == [422, 422]
    assert fastapi_handled == ["/v1/me/scores", "/v1/me/chart"]
    fast, overridden = await both_ways(app, lambda: client.post("/v1/me/scores", json=body(), headers=headers))
    assert (fast.status_code, overridden.status_code) == (201, 201)
    assert fastapi_handled == ["/v1/me/scores", "/v1/me/chart", "/v1/me/scores"]


LONG_PREFER = "return=minimal, " + "x" * 1024
SCORE_CASES = {
    "created": ("patient_user", {}, {}),
    "minimal": ("patient_user", {"Prefer": "return=minimal"}, {}),
    "representation": ("patient_user", {"Prefer": "return=representation"}, {}),
    "malformed preference": ("patient_user", {"Prefer": ",,;=,"}, {}),
    "preference too long": ("patient_user", {"Prefer": LONG_PREFER}, {}),
    "note": ("patient_user", {}, {"note": "slept badly — 😌 \u2028 \\ \"quoted\""}),
    "urgent answer": ("patient_user", {}, {"instrument": "phq9", "items": [0, 0, 0, 0, 0, 0, 0, 0, 2]}),
    "suds": ("patient_user", {}, {"instrument": "suds", "items": [65]}),
    "invalid items": ("patient_user", {}, {"items": [9]}),
    "future": ("patient_user", {}, {"recorded_at": "2099-01-01T00:00:00Z"}),
    "unknown field": ("patient_user", {}, {"total": 3}),
    "not json": ("patient_user", {"Content-Type": "text/plain"}, {}),
    "json of another type": ("patient_user", {"Content-Type": THROUGH_FASTAPI}, {}),
    "no token": (None, {}, {}),
    "no token, invalid body": (None, {}, {"items": []}),
    "bad token": (None, {"Authorization": "Bearer not-a-token"}, {}),
    "clinician": ("clinician", {}, {}),
    "api client": ("client_scores_write", {}, {}),
    "revoked api client": ("revoked_client", {}, {}),
}


@pytest.mark.parametrize("case", SCORE_CASES)
async def test_a_score_post_is_answered_alike_either_way(app, client, world, case):
    actor_name, extra_headers, change = SCORE_CASES[case]
    actor = world.actor(actor_name) if actor_name else None

    def post(query: str = ""):
        headers = {**(actor.headers if actor else {}), "Content-Type": "application/json", **extra_headers}
        return client.post("/v1/me/scores" + query, content=json.dumps(body(**change)), headers=headers)

    await assert_alike(app, post)
    await assert_alike(app, lambda: post("?cursor=x"))


async def test_replays_and_conflicts_are_answered_alike_either_way(app, client, world):
    headers = world.patient_user.headers
    entry = body(note="first")

    def post(payload, **extra):
        return lambda: client.post("/v1/me/scores", json=payload, headers={**headers, **extra})

    created = await client.post("/v1/me/scores", json=entry, headers=headers)
    assert created.status_code == 201
    replayed = await assert_alike(app, post(entry))
    assert (replayed.status_code, replayed.json()) == (200, created.json())
    minimal = await assert_alike(app, post(entry, Prefer="return=minimal"))
    assert minimal.json() == {"id": entry["id"]}
    conflict = await assert_alike(app, post({**entry, "note": "changed"}))
    assert conflict.status_code == 409
    someone_else = await assert_alike(
        app, lambda: client.post("/v1/me/scores", json=entry, headers=world.other_patient_user.headers))
    assert someone_else.status_code == 409


CHART_CASES = {
    "weekly": ("clinician", "patient", {"instrument": "gad7"}, {}),
    "monthly, a range": ("clinician", "patient", {"instrument": "gad7", "bucket": "month", "from": "2026-01-01",
                                                   "to": "2026-11-30"}, {}),
    "daily": ("clinician", "patient", {"instrument": "gad7", "bucket": "day", "to": "2026-11-25"}, {}),
    "no scores of it": ("clinician", "patient", {"instrument": "phq9"}, {}),
    "stale tag": ("clinician", "patient", {"instrument": "gad7"}, {"If-None-Match": 'W/"stale"'}),
    "unknown instrument": ("clinician", "patient", {"instrument": "gad9"}, {}),
    "no instrument": ("clinician", "patient", {}, {}),
    "unknown bucket": ("clinician", "patient", {"instrument": "gad7", "bucket": "year"}, {}),
    "not a date": ("clinician", "patient", {"instrument": "gad7", "from": "2026-02-30"}, {}),
    "range backwards": ("clinician", "patient", {"instrument": "gad7", "from": "2026-11-01", "to": "2026-10-01"}, {}),
    "unknown parameter": ("clinician", "patient", {"instrument": "gad7", "buckets": "week"}, {}),
    "not an id": ("clinician", "not-a-uuid", {"instrument": "gad7"}, {}),
    "another organization's": ("clinician", "patient_b", {"instrument": "gad7"}, {}),
    "no token": (None, "patient", {"instrument": "gad7"}, {}),
    "bad token": (None, "patient", {"instrument": "gad7"}, {"Authorization": "Bearer x"}),
    "another patient's": ("other_patient_user", "patient", {"instrument": "gad7"}, {}),
    "api client": ("client_scores_read", "patient", {"instrument": "gad7"}, {}),
    "api client without the scope": ("client_patients_read", "patient", {"instrument": "gad7"}, {}),
    "own chart": ("patient_user", None, {"instrument": "gad7"}, {}),
    "own chart, staff": ("clinician", None, {"instrument": "gad7"}, {}),
    "own chart, no instrument": ("patient_user", None, {}, {}),
}


@pytest.mark.parametrize("case", CHART_CASES)
async def test_a_chart_is_answered_alike_either_way(app, client, world, case):
    actor_name, whose, params, extra_headers = CHART_CASES[case]
    for days in (3, 10, 40):
        entry = body(recorded_at=(dt.datetime.now(dt.UTC) - dt.timedelta(days=days)).isoformat())
        assert (await client.post("/v1/me/scores", json=entry, headers=world.patient_user.headers)).status_code == 201
    actor = world.actor(actor_name) if actor_name else None
    patient = getattr(world, whose, None) if whose else None
    path = "/v1/me/chart" if whose is None else f"/v1/patients/{patient.id if patient else whose}/chart"
    headers = {**(actor.headers if actor else {}), **extra_headers}
    answer = await assert_alike(app, lambda: client.get(path, params=params, headers=headers))
    if answer.status_code == 200:
        # The same request with the tag it answered: 304 either way.
        unchanged = await assert_alike(app, lambda: client.get(
            path, params=params, headers={**headers, "If-None-Match": answer.headers["etag"]}))
        assert unchanged.status_code == 304


DASHBOARD_CASES = {
    "by alerts": ("clinician", {}, 200),
    "by name, a short page": ("clinician", {"sort": "name", "limit": "1"}, 200),
    "by change": ("clinician", {"sort": "change"}, 200),
    "by last activity": ("clinician", {"sort": "last_activity"}, 200),
    "a name": ("clinician", {"q": "a"}, 200),
    "overdue": ("clinician", {"overdue": "true"}, 200),
    "a trend": ("clinician", {"trend": "stable"}, 200),
    "the organization": ("admin", {"sort": "name"}, 200),
    "unknown order": ("clinician", {"sort": "age"}, 422),
    "no limit": ("clinician", {"limit": "0"}, 422),
    "not a cursor": ("clinician", {"cursor": "x"}, 422),
    "unknown parameter": ("clinician", {"sorted": "name"}, 422),
    "patient": ("patient_user", {}, 403),
    "api client": ("client_patients_read", {}, 403),
    "no token": (None, {}, 401),
}


@pytest.mark.parametrize("case", DASHBOARD_CASES)
async def test_a_dashboard_page_is_answered_alike_either_way(app, client, world, case):
    for days in (3, 20):
        entry = body(recorded_at=(dt.datetime.now(dt.UTC) - dt.timedelta(days=days)).isoformat())
        assert (await client.post("/v1/me/scores", json=entry, headers=world.patient_user.headers)).status_code == 201
    actor_name, params, status = DASHBOARD_CASES[case]
    headers = world.actor(actor_name).headers if actor_name else {}
    page = await assert_alike(app, lambda: client.get("/v1/dashboard", params=params, headers=headers))
    assert page.status_code == status
    if page.status_code == 200 and page.json()["next_cursor"]:
        following = {**params, "cursor": page.json()["next_cursor"]}
        assert (await assert_alike(app, lambda: client.get("/v1/dashboard", params=following, headers=headers))
                ).status_code == 200


def _route(endpoint, **options):
    from fastapi import APIRouter

    from api.routing import CheckedRoute, fast_path

    APIRouter(route_class=CheckedRoute).post("/x", **options)(fast_path(endpoint))


async def _session():
    yield None


def _sync_dependency() -> int:
    return 1


async def _plain() -> dict:
    return {}


async def _with_session(session=Depends(_session)) -> dict:
    return {}


async def _with_sync_dependency(value=Depends(_sync_dependency)) -> dict:
    return {}


async def _with_embedded_body(body: dict = Body(embed=True)) -> dict:
    return {}


def _sync_endpoint() -> dict:
    return {}


class _Note(BaseModel):
    text: str


async def _with_two_bodies(first: _Note, second: _Note) -> dict:
    return {}


async def _with_connection(connection: HTTPConnection) -> dict:
    return {}


async def _with_background_tasks(tasks: BackgroundTasks) -> dict:
    return {}


@pytest.mark.parametrize(("endpoint", "options", "refusal"), [
    (_plain, {}, None),
    (_plain, {"response_model": None}, "response model"),
    (_sync_endpoint, {}, "async endpoint"),
    (_with_session, {}, "async functions"),
    (_with_sync_dependency, {}, "async functions"),
    (_with_embedded_body, {}, "one JSON body model"),
    (_with_two_bodies, {}, "one JSON body model"),
    (_with_connection, {}, "no background tasks, security scopes or connection"),
    (_with_background_tasks, {}, "no background tasks, security scopes or connection"),
])
def test_a_fast_path_refuses_what_it_cannot_solve_when_the_route_is_built(endpoint, options, refusal):
    if refusal is None:
        _route(endpoint, **options)
    else:
        with pytest.raises(TypeError, match=refusal):
            _route(endpoint, **options)


async def test_a_fast_route_of_an_included_router_runs_the_includes_dependencies(fastapi_handled):
    """FastAPI serves an included route with the include's dependencies: the fast path solves the route as served."""
    import httpx
    from fastapi import APIRouter, FastAPI, HTTPException, Request

    from api.routing import CheckedRoute, fast_path

    calls: list[str] = []

    async def gate(request: Request, key: str | None = None) -> None:
        calls.append(key or "")
        if key != "open":
            raise HTTPException(403)

    router = APIRouter(route_class=CheckedRoute)

    @router.get("/thing", response_model=dict)
    @fast_path
    async def thing() -> dict:
        return {"ok": True}

    app = FastAPI()
    app.include_router(router, dependencies=[Depends(gate)])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as http:
        assert (await http.get("/thing", params={"key": "open"})).json() == {"ok": True}
        assert (await http.get("/thing", params={"key": "shut"})).status_code == 403
    assert calls == ["open", "shut"]
    assert fastapi_handled == []


def _fast_parameters() -> list:
    """Every parameter (with where it is read from) of every fast route, as the app serves them."""
    from fastapi.routing import APIRoute

    from api.app import ROUTERS
    from api.routing import _FAST

    found = []
    for router in ROUTERS:
        for route in router.routes:
            if isinstance(route, APIRoute) and getattr(route.endpoint, _FAST, False):
                for dependant in (route.dependant, *route.dependant.dependencies):
                    for source in ("path_params", "query_params", "header_params"):
                        found.extend((route.path, source, field) for field in getattr(dependant, source))
    return found


PARAMETERS = _fast_parameters()
RAW_VALUES = st.sampled_from(["", "x", "1", "0", "-1", "201", "gad7", "week", "name", "true", "false", "2026-01-01",
                              'W/"a"', "return=minimal", "5b1c8a0e-1f2d-4c3b-9a8e-7d6c5b4a3921", "a" * 1100])


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(PARAMETERS), st.one_of(st.none(), RAW_VALUES), st.lists(RAW_VALUES, max_size=2))
def test_a_parameter_reads_as_fastapi_reads_it(parameter, value, others):
    """`_Parameter` against FastAPI's own `request_params_to_args`: the same value, or both invalid."""
    from fastapi.dependencies.utils import request_params_to_args
    from starlette.datastructures import Headers, QueryParams

    from api.routing import _Parameter

    path, source, field = parameter
    alias = field.alias
    pairs = [] if value is None else [(alias, value), *[(alias, other) for other in others]]
    received = {"path_params": lambda: dict(pairs[:1]), "query_params": lambda: QueryParams(pairs),
                "header_params": lambda: Headers(raw=[(k.lower().encode(), v.encode()) for k, v in pairs])}[source]()
    expected, errors = request_params_to_args([field], received)
    values: dict = {}
    assert _Parameter(field).read(received, values) is (not errors), (path, alias, value)
    if not errors:
        assert values == expected, (path, alias, value)


def test_every_fast_route_has_its_parameters_compared():
    assert {path for path, _, _ in PARAMETERS} >= {"/v1/me/scores", "/v1/me/chart", "/v1/patients/{patient_id}/chart",
                                                    "/v1/dashboard"}
