"""Conditional reads (api/conditional.py): the chart, the schedule and score lists answer an ETag, and If-None-Match
with the current tag answers 304 with no body, still authorised and audited; any change to what the answer is
computed from changes the tag."""

import pytest
from sqlalchemy import func, select

from models import AuditEvent
from tests.conftest import new_id, openapi_document
from tests.session_helpers import active_plan, new_session, sign

RECORDED = "2026-11-20T08:30:00+01:00"


def gad7(total_items: list[int] | None = None, recorded_at: str = RECORDED) -> dict:
    return {"id": new_id(), "instrument": "gad7", "items": total_items or [1] * 7, "recorded_at": recorded_at}


async def post(client, world, body: dict) -> dict:
    answer = await client.post("/v1/me/scores", json=body, headers=world.patient_user.headers)
    assert answer.status_code == 201, answer.text
    return answer.json()


def routes(world):
    """(path, params, actor) of every conditional read, as the phone and the clinic call them."""
    patient = world.patient.id
    return [
        (f"/v1/patients/{patient}/chart", {"instrument": "gad7", "bucket": "week"}, world.clinician),
        ("/v1/me/chart", {"instrument": "gad7"}, world.patient_user),
        (f"/v1/patients/{patient}/schedule", {}, world.clinician),
        ("/v1/me/schedule", {}, world.patient_user),
        (f"/v1/patients/{patient}/scores", {}, world.clinician),
        ("/v1/me/scores", {"instrument": "gad7"}, world.patient_user),
        ("/v1/me/scores", {"updated_since": "2026-01-01T00:00:00Z"}, world.patient_user),
    ]


async def get(client, path, params, actor, tag=None):
    headers = {**actor.headers, **({"If-None-Match": tag} if tag else {})}
    return await client.get(path, params=params, headers=headers)


async def test_a_current_tag_answers_304_and_a_change_a_new_tag(client, world):
    await active_plan(client, world, assessments=[{"instrument": "gad7", "every_days": 7}])
    await post(client, world, gad7())
    for path, params, actor in routes(world):
        first = await get(client, path, params, actor)
        assert first.status_code == 200, (path, first.text)
        tag = first.headers["etag"]
        assert tag.startswith('W/"'), path

        again = await get(client, path, params, actor, tag)
        assert again.status_code == 304, path
        assert again.content == b"" and again.headers["etag"] == tag
        # A list of tags, a strong form of the same tag, and * all match (RFC 9110 13.1.2: weak comparison).
        for header in (f'"other", {tag}', tag.removeprefix("W/"), "*"):
            assert (await get(client, path, params, actor, header)).status_code == 304, (path, header)
        assert (await get(client, path, params, actor, 'W/"stale"')).status_code == 200, path
    tags = {path + str(params): (await get(client, path, params, actor)).headers["etag"]
            for path, params, actor in routes(world)}

    await post(client, world, gad7([3] * 7, "2026-11-21T08:30:00+01:00"))
    for path, params, actor in routes(world):
        changed = await get(client, path, params, actor, tags[path + str(params)])
        assert changed.status_code == 200, path
        assert changed.headers["etag"] != tags[path + str(params)], path


async def test_a_retraction_and_a_signed_session_change_the_chart(client, world):
    await active_plan(client, world)
    score = await post(client, world, gad7())
    path, params, actor = routes(world)[0]
    tag = (await get(client, path, params, actor)).headers["etag"]

    signed = await new_session(client, world)
    assert (await sign(client, world.clinician, signed["id"], signed["etag"])).status_code == 200
    after_session = await get(client, path, params, actor, tag)
    assert after_session.status_code == 200 and after_session.headers["etag"] != tag

    tag = after_session.headers["etag"]
    deleted = await client.delete(f"/v1/me/scores/{score['id']}", headers=world.patient_user.headers)
    assert deleted.status_code == 204
    assert (await get(client, path, params, actor, tag)).status_code == 200


async def test_the_query_and_the_viewer_are_part_of_the_tag(client, world):
    await post(client, world, gad7())
    chart = f"/v1/patients/{world.patient.id}/chart"
    week = (await get(client, chart, {"instrument": "gad7", "bucket": "week"}, world.clinician)).headers["etag"]
    day = (await get(client, chart, {"instrument": "gad7", "bucket": "day"}, world.clinician)).headers["etag"]
    assert week != day
    scores = f"/v1/patients/{world.patient.id}/scores"
    # A patient never sees a clinician's notes, so their view of the same page is another representation.
    staff = (await get(client, scores, {}, world.clinician)).headers["etag"]
    own = (await get(client, scores, {}, world.patient_user)).headers["etag"]
    assert staff != own


async def test_a_304_is_authorised_and_audited_like_any_read(client, world, app):
    path, params, actor = routes(world)[0]
    tag = (await get(client, path, params, actor)).headers["etag"]
    assert (await get(client, path, params, world.other_clinician, tag)).status_code == 404
    assert (await get(client, path, params, world.clinician_b, "*")).status_code == 404
    assert (await get(client, path, params, actor, tag)).status_code == 304
    async with app.state.sessions() as session:
        reads = (await session.exec(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.action == "chart.read", AuditEvent.actor_id == world.clinician.id))).scalar_one()
    assert reads == 2


@pytest.mark.parametrize("path", ["/v1/patients/{patient_id}/chart", "/v1/me/chart", "/v1/patients/{patient_id}/schedule",
                                  "/v1/me/schedule", "/v1/patients/{patient_id}/scores", "/v1/me/scores"])
def test_the_openapi_document_declares_304_and_if_none_match(path):
    operation = openapi_document()["paths"][path]["get"]
    assert "304" in operation["responses"]
    assert "If-None-Match" in {parameter["name"] for parameter in operation["parameters"]}
