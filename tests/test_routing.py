"""The routes' class (api/routing.py): the score post's fast path answers exactly as FastAPI's own handler would.

Unknown query parameters are tested with the other errors (tests/test_errors.py)."""

import datetime as dt
import json

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from starlette.requests import Request

import fastapi.routing
from api.instruments.registry import INSTRUMENTS
from api.routing import json_body
from api.scores.schemas import SCORE_CREATE, ScoreCreate
from tests.test_scores import body

# FastAPI parses any `application/*+json` body as JSON; the fast path takes application/json alone. The same request
# with this type therefore takes FastAPI's handler, with the same meaning.
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


async def test_an_ordinary_score_post_takes_the_fast_path_and_anything_else_fastapis(client, world, fastapi_handled):
    headers = world.patient_user.headers
    for response in [
        await client.post("/v1/me/scores", json=body(), headers=headers),
        await client.post("/v1/me/scores", json=body(), headers={**headers, "Prefer": "return=minimal"}),
    ]:
        assert response.status_code == 201, response.text
    assert fastapi_handled == []
    refused = await client.post("/v1/me/scores", json=body(items=[9]), headers=headers)
    assert refused.status_code == 422
    assert fastapi_handled == ["/v1/me/scores"]


def _normalised(response) -> tuple:
    answer = {name: value for name, value in response.json().items() if name not in VARYING_FIELDS}
    headers = sorted((name, value) for name, value in response.headers.items() if name not in VARYING_HEADERS)
    return response.status_code, headers, answer


LONG_PREFER = "return=minimal, " + "x" * 1024
CASES = {
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
    "no token": (None, {}, {}),
    "no token, invalid body": (None, {}, {"items": []}),
    "bad token": (None, {"Authorization": "Bearer not-a-token"}, {}),
    "clinician": ("clinician", {}, {}),
    "api client": ("client_scores_write", {}, {}),
    "revoked api client": ("revoked_client", {}, {}),
}


@pytest.mark.parametrize("case", CASES)
async def test_the_fast_path_answers_as_fastapis_handler(client, world, case):
    actor_name, extra_headers, change = CASES[case]
    actor = world.actor(actor_name) if actor_name else None

    async def post(content_type: str, query: str = ""):
        headers = {**(actor.headers if actor else {}), **extra_headers, "Content-Type": content_type}
        return await client.post("/v1/me/scores" + query, content=json.dumps(body(**change)), headers=headers)

    fast, through_fastapi = await post("application/json"), await post(THROUGH_FASTAPI)
    assert _normalised(fast) == _normalised(through_fastapi)
    unknown_query = [await post(content_type, "?cursor=x") for content_type in ("application/json", THROUGH_FASTAPI)]
    assert _normalised(unknown_query[0]) == _normalised(unknown_query[1])


@pytest.mark.parametrize("first", ["application/json", THROUGH_FASTAPI])
async def test_replays_and_conflicts_answer_alike_on_either_path(client, world, first):
    headers = world.patient_user.headers
    entry = body(note="first")
    second = THROUGH_FASTAPI if first == "application/json" else "application/json"

    async def post(payload, content_type, **extra):
        return await client.post("/v1/me/scores", content=json.dumps(payload),
                                 headers={**headers, **extra, "Content-Type": content_type})

    created = await post(entry, first)
    assert created.status_code == 201
    replays = [await post(entry, content_type) for content_type in (first, second)]
    assert {response.status_code for response in replays} == {200}
    assert _normalised(replays[0]) == _normalised(replays[1])
    assert replays[0].json() == created.json()
    minimal = [await post(entry, content_type, Prefer="return=minimal") for content_type in (first, second)]
    assert _normalised(minimal[0]) == _normalised(minimal[1])
    assert minimal[0].json() == {"id": entry["id"]}
    conflicts = [await post({**entry, "note": "changed"}, content_type) for content_type in (first, second)]
    assert {response.status_code for response in conflicts} == {409}
    assert _normalised(conflicts[0]) == _normalised(conflicts[1])
    someone_else = await client.post("/v1/me/scores", json=entry, headers=world.other_patient_user.headers)
    assert someone_else.status_code == 409


def test_a_fast_path_without_a_response_model_is_refused_when_the_route_is_built():
    from fastapi import APIRouter

    from api.routing import CheckedRoute, solved_by

    async def solve(request):
        return {}

    async def endpoint(response: fastapi.Response) -> None:
        return None

    with pytest.raises(TypeError, match="response model"):
        APIRouter(route_class=CheckedRoute).post("/x", status_code=201)(solved_by(solve)(endpoint))
